"""A phone call from the local Twilio to the agent's browser and back.

The fake Twilio walks the hub's TwiML like Twilio: the caller picks billing and waits; the
console rings with the screen pop (name, VIP, menu choice, the earlier SMS); the agent
accepts; the fake Calls API is asked to ring the agent's phone and bridges the two; the
caller hangs up; wrap-up; the history shows the call (wait and talk time) next to the SMS.
Then the same caller leaves a voicemail, whose transcription the agent answers by SMS
(delivered to the fake Messages API).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect
from sqlalchemy import update

from channels.twilio_sms.testing.fake_api import FakeTwilio, start_fake_twilio
from channels.twilio_voice.testing.engine import Caller, Leg, ManualClock, Script
from channels.twilio_voice.testing.fake_api import FakeTwilioVoice
from contract.testing import free_port
from hub.services import Hub
from hub.web import keys
from server.app import create_app
from storage.models import Agent
from tests import factories
from tests.browser.conftest import PageFactory, sign_in
from tests.channels.twilio_voice.conftest import ACCOUNT_SID, AUTH_TOKEN, NUMBER, voice_section
from tests.conftest import make_settings

pytestmark = pytest.mark.browser

CALLER = "+447700900777"
AGENT_PHONE = "+15550001001"
SMS_SID, SMS_TOKEN, SMS_NUMBER = "AC" + "5" * 32, "sms-test-token", "+15005550007"


class Line:
    """The hub on a real port with the local Twilio (voice and messaging) around it."""

    def __init__(self, client: TestClient[Any, Any], voice: FakeTwilioVoice, sms: FakeTwilio):
        self.client = client
        self.hub: Hub = client.app[keys.HUB]
        self.voice = voice
        self.sms = sms
        assert isinstance(voice.clock, ManualClock)
        self.clock: ManualClock = voice.clock
        self.base = str(client.make_url("")).rstrip("/")

    async def bridged(self, leg: Leg) -> None:
        await self.voice.wait_until(
            lambda: any(leg.sid in (b.a_sid, b.b_sid) for b in self.voice.bridges), timeout=10
        )


@pytest.fixture
async def line(aiohttp_client: Any, sqlite_url: str) -> AsyncIterator[Line]:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    voice = FakeTwilioVoice(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        voice_url=f"{public}/webhooks/twilio/voice/incoming",
        status_url=f"{public}/webhooks/twilio/voice/status",
        number=NUMBER,
        clock=ManualClock(),
    )
    await voice.start()
    sms, sms_base = await start_fake_twilio(
        account_sid=SMS_SID, auth_token=SMS_TOKEN, callbacks=False
    )
    settings = make_settings(
        sqlite_url,
        public_url=public,
        twilio_account_sid=SMS_SID,
        twilio_auth_token=SMS_TOKEN,
        twilio_api_base=sms_base,
        twilio_from=SMS_NUMBER,
        channels={"twilio_voice": voice_section(voice.base_url, languages=["en"])},
    )
    client: TestClient[Any, Any] = await aiohttp_client(
        create_app(settings), server_kwargs={"port": port}
    )
    yield Line(client, voice, sms)
    await voice.stop()
    await sms.close()


async def agent_at_console(line: Line, page: Page) -> None:
    agent_id = await factories.agent(line.hub, "ann")
    async with line.hub.sessions() as s, s.begin():
        await s.execute(
            update(Agent)
            .where(Agent.id == agent_id)
            .values(phone=AGENT_PHONE, display_name="Ann Archer")
        )
    await sign_in(page, line.base, "ann", factories.PASSWORD, landing="console")
    await page.get_by_test_id("state-select").select_option("available|")
    await expect(page.get_by_test_id("state-dot")).to_have_attribute("data-state", "available")


async def test_a_simulated_call_is_popped_bridged_wrapped_up_and_a_voicemail_answered_by_sms(
    line: Line, new_page: PageFactory, artifacts: Path
) -> None:
    # Vera texted last week; she is a VIP.
    earlier = await factories.contact(
        line.hub,
        CALLER,
        "My invoice shows a double charge",
        channel="sms",
        display_name="Vera Lynn",
        language="en",
    )
    assert earlier.conversation_id is not None
    assert earlier.customer_id is not None
    await line.hub.conversations.close(earlier.conversation_id, agent_id=None, disposition="")
    await line.hub.customers.update_profile(earlier.customer_id, {"segment": "vip"}, actor="test")
    page = await new_page()
    await agent_at_console(line, page)

    # She calls, presses 2 (billing) and waits: the console rings with the screen pop.
    leg = await line.voice.place_call(Caller(number=CALLER, script=Script(inputs=["2"], talk_s=64)))
    card = page.get_by_test_id("offer")
    await expect(card.get_by_test_id("offer-customer")).to_have_text("Vera Lynn")
    await expect(card.get_by_test_id("pop-vip")).to_be_visible()
    await expect(card.get_by_test_id("pop-ivr-choice")).to_have_text(["billing"])
    await expect(card.get_by_test_id("pop-contact").first).to_contain_text(
        "My invoice shows a double charge"
    )
    await page.screenshot(path=artifacts / "voice-e2e-1-screen-pop.png", animations="disabled")

    line.clock.advance(12)  # twelve seconds of hold music
    await card.get_by_test_id("offer-accept").click()
    await line.bridged(leg)
    # The fake Calls API was asked to ring Ann's phone with our number.
    assert [(c["To"], c["From"]) for c in line.voice.created] == [(AGENT_PHONE, NUMBER)]
    bar = page.get_by_test_id("call-bar")
    await expect(bar.get_by_test_id("call-timer")).to_be_visible()
    await page.screenshot(path=artifacts / "voice-e2e-2-on-call.png", animations="disabled")

    line.clock.advance(64)  # she hangs up after 64 s
    await expect(page.get_by_test_id("conversation-state")).to_have_attribute(
        "data-state", "wrap_up"
    )
    # The bar gives the talk time Twilio reported with the hang-up (not a browser timer).
    await expect(bar.get_by_test_id("call-bar-text")).to_contain_text("talked 01:04")
    entry = page.get_by_test_id("call-entry")
    await expect(entry.get_by_test_id("call-figures")).to_contain_text("waited 12s")
    await expect(entry.get_by_test_id("call-figures")).to_contain_text("talked 1m 04s")
    sms = page.get_by_test_id("timeline-item").filter(has_text="My invoice shows a double charge")
    await expect(sms).to_be_visible()
    await page.screenshot(path=artifacts / "voice-e2e-3-history.png", animations="disabled")
    await page.get_by_test_id("close-button").click()
    await expect(page.get_by_test_id("conversation-state")).to_have_attribute(
        "data-state", "closed"
    )

    # She calls again and, while waiting, presses 1 for voicemail.
    again = await line.voice.place_call(
        Caller(
            number=CALLER,
            script=Script(
                inputs=["2"],
                press_in_queue=(5, "1"),
                record_s=9,
                transcript="Please text me when the refund is done.",
            ),
        )
    )
    await expect(page.get_by_test_id("offer")).to_be_visible()
    await line.voice.wait_until(lambda: line.voice.queues.get("c" + again.sid) is not None)
    line.clock.advance(5)
    await line.voice.wait_until(lambda: any(v == "Record" for v, _ in again.log), timeout=10)
    line.clock.advance(9)
    await line.voice.wait_until(again.ended.is_set, timeout=10)
    offer = page.get_by_test_id("offer").filter(has_text="Voicemail")
    await expect(offer).to_be_visible()
    await offer.get_by_test_id("offer-accept").click()
    voicemail = page.get_by_test_id("timeline-item").filter(has_text="Voicemail")
    await expect(voicemail.get_by_test_id("message-text")).to_have_text(
        "Voicemail: Please text me when the refund is done."
    )
    await expect(voicemail.locator("audio")).to_have_count(1)
    # Answered by SMS: the picker offers SMS, never the phone channels.
    picker = page.get_by_test_id("channel-select")
    options = await picker.locator("option").evaluate_all("os => os.map(o => o.dataset.channel)")
    assert "sms" in options
    assert "voice" not in options
    assert "voicemail" not in options
    sms_value = await picker.locator("option[data-channel=sms]").first.get_attribute("value")
    assert sms_value is not None
    await picker.select_option(sms_value)
    await page.get_by_test_id("reply-input").fill("Hi Vera, the refund went out today.")
    await page.get_by_test_id("reply-send").click()
    await line.voice.wait_until(lambda: bool(line.sms.sent), timeout=10)
    sent = line.sms.sent[-1]
    assert (sent["To"], sent["Body"]) == (CALLER, "Hi Vera, the refund went out today.")
    await page.screenshot(path=artifacts / "voice-e2e-4-voicemail-sms.png", animations="disabled")
