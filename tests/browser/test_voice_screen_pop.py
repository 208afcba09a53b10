"""A phone call in the agent console: the screen pop before Accept (who, VIP, IVR choices,
their earlier SMS), the call bar through ringing, talking and wrap-up, the call's history
entry next to the SMS, and a voicemail answered by SMS.

The hub is driven through its real phone port (``contract.voice.CallPort``); the phone
adapter is on, and its Calls API is a tiny local app that accepts every call it is asked to
place, so accepting rings the agent's phone as in production."""

from __future__ import annotations

import io
import math
import re
import struct
import wave
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Page, expect
from sqlalchemy import select

from contract.channel import Attachment, InboundMessage
from contract.voice import CallFact, EnqueueRequest
from hub.services import Hub
from hub.web import keys
from storage.models import Message
from tests import factories
from tests.browser.conftest import PageFactory, sign_in
from tests.conftest import AUTH, ClientFactory

pytestmark = pytest.mark.browser

ACCOUNT_SID = "AC" + "a" * 32
OUR_NUMBER = "+15005550006"
CALLER = "+447700900123"
CALL_SID = "CA" + "0123456789abcdef" * 2
AGENT_LEG = "CA" + "fedcba9876543210" * 2
PASSWORD = "password-ann"


def wav_tone(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A short 440 Hz mono WAV (a real recording the browser can decode)."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


async def fake_calls_api(aiohttp_server: Any) -> tuple[str, list[dict[str, str]]]:
    """Twilio's Calls API as far as ringing an agent goes: every call is queued."""
    placed: list[dict[str, str]] = []

    async def create_call(request: web.Request) -> web.Response:
        placed.append(dict(await request.post()))  # type: ignore[arg-type]
        return web.json_response({"sid": AGENT_LEG, "status": "queued"}, status=201)

    app = web.Application()
    app.router.add_post(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json", create_call)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), placed


async def log_in(page: Page, base: str) -> None:
    await sign_in(page, base, "ann", PASSWORD, landing="console")


async def earlier_sms(hub: Hub) -> int:
    """Vera wrote by SMS last week (closed since) and is a VIP; her customer id."""
    result = await factories.contact(
        hub, CALLER, "My invoice shows a double charge", channel="sms", display_name="Vera Lynn"
    )
    assert result.conversation_id is not None
    assert result.customer_id is not None
    await hub.conversations.close(result.conversation_id, agent_id=None, disposition="resolved")
    await hub.customers.update_profile(result.customer_id, {"segment": "vip"}, actor="test")
    return result.customer_id


async def voice_hub(
    hub_client: ClientFactory, aiohttp_server: Any
) -> tuple[Any, list[dict[str, str]]]:
    """The hub with the phone channel on (its Calls API local) and one user with a phone."""
    api_base, placed = await fake_calls_api(aiohttp_server)
    client = await hub_client(
        channels={
            "twilio_voice": {
                "account_sid": ACCOUNT_SID,
                "auth_token": "t",
                "number": OUR_NUMBER,
                "api_base": api_base,
            }
        }
    )
    resp = await client.post(
        "/api/v1/agents",
        json={"username": "ann", "password": PASSWORD, "display_name": "Ann Archer"},
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    user_id = (await resp.json())["id"]
    resp = await client.patch(
        f"/api/v1/agents/{user_id}", json={"phone": "+15005550100"}, headers=AUTH
    )
    assert resp.status == 200, await resp.text()
    return client, placed


async def test_a_call_pops_the_caller_then_the_call_bar_history_and_a_voicemail_answered_by_sms(
    hub_client: ClientFactory, aiohttp_server: Any, new_page: PageFactory, artifacts: Path
) -> None:
    client, placed = await voice_hub(hub_client, aiohttp_server)
    hub: Hub = client.app[keys.HUB]
    customer_id = await earlier_sms(hub)

    base = str(client.make_url("")).rstrip("/")
    page = await new_page()
    await log_in(page, base)
    await page.get_by_test_id("state-select").select_option("available|")
    await expect(page.get_by_test_id("state-dot")).to_have_attribute("data-state", "available")

    # The caller goes through the menus and waits: the agent's console rings.
    info = await hub.call_started(
        channel="voice", call_sid=CALL_SID, from_number=CALLER, to_number=OUR_NUMBER
    )
    assert info.known
    assert info.customer_id == customer_id
    await hub.call_enqueued(
        EnqueueRequest(
            channel="voice",
            call_sid=CALL_SID,
            from_number=CALLER,
            to_number=OUR_NUMBER,
            queue="support",
            language="en",
            choices=("English", "billing"),
        )
    )
    card = page.get_by_test_id("offer")
    await expect(card.get_by_test_id("offer-title")).to_have_text("Incoming call")
    await expect(card.get_by_test_id("offer-customer")).to_have_text("Vera Lynn")
    await expect(card.get_by_test_id("pop-number")).to_have_text(CALLER)
    await expect(card.get_by_test_id("pop-vip")).to_be_visible()
    await expect(card.get_by_test_id("pop-new-caller")).to_have_count(0)
    await expect(card.get_by_test_id("pop-ivr-choice")).to_have_text(["English", "billing"])
    contacts = card.get_by_test_id("pop-contact")
    await expect(contacts).to_have_count(1)
    await expect(contacts).to_have_attribute("data-channel", "sms")
    await expect(contacts).to_contain_text("My invoice shows a double charge")
    await expect(card.get_by_test_id("offer-accept")).to_be_enabled()  # read before Accept
    await page.screenshot(path=artifacts / "voice-screen-pop.png", animations="disabled")

    # Accept: the hub rings the agent's phone through the Calls API.
    await card.get_by_test_id("offer-accept").click()
    bar = page.get_by_test_id("call-bar")
    await expect(bar).to_have_attribute("data-state", "ringing")
    await expect(bar).to_contain_text("Ringing your phone…")
    assert [p["To"] for p in placed] == ["+15005550100"]

    # The agent picks up; the caller is connected after 12 s in the queue.
    await hub.call_fact(CallFact(channel="voice", call_sid=CALL_SID, kind="connecting", wait_s=12))
    await expect(bar).to_have_attribute("data-state", "talking")
    await expect(bar).to_contain_text("On call with Vera Lynn")
    timer = bar.get_by_test_id("call-timer")
    await expect(timer).to_have_text(re.compile(r"^00:0\d$"))
    first = await timer.text_content()
    await expect(timer).not_to_have_text(first or "", timeout=3000)  # it ticks
    # The channel picker answers a call in writing by SMS, never on the call itself.
    picker = page.get_by_test_id("channel-select")
    await expect(picker.locator("option:checked")).to_have_attribute("data-channel", "sms")
    assert await picker.locator("option[data-channel=voice]").count() == 0
    assert await picker.locator("option[data-channel=voicemail]").count() == 0
    await page.screenshot(path=artifacts / "voice-on-call.png", animations="disabled")

    # A reload while talking finds the call again (the `open` read model's call).
    await page.reload()
    await page.get_by_test_id("conversation-item").first.click()
    await expect(bar).to_have_attribute("data-state", "talking")
    await expect(bar).to_contain_text("On call with Vera Lynn")

    # They talk 64 s; the caller's leg ends after 80 s in all: wrap-up.
    await hub.call_fact(
        CallFact(
            channel="voice",
            call_sid=CALL_SID,
            kind="dial_result",
            leg="agent",
            leg_sid=AGENT_LEG,
            result="completed",
            talk_s=64,
            bridged=True,
        )
    )
    await hub.call_fact(
        CallFact(
            channel="voice", call_sid=CALL_SID, kind="status", status="completed", duration_s=80
        )
    )
    await expect(bar).to_have_attribute("data-state", "ended")
    await expect(bar.get_by_test_id("call-bar-text")).to_have_text(
        "Call ended · talked 01:04 — wrap up"
    )
    await expect(page.get_by_test_id("conversation-state")).to_have_attribute(
        "data-state", "wrap_up"
    )
    entry = page.get_by_test_id("call-entry")
    await expect(entry).to_have_attribute("data-outcome", "answered")
    await expect(entry.get_by_test_id("call-outcome")).to_have_text("Call answered by Ann Archer")
    await expect(entry.get_by_test_id("call-figures")).to_have_text(
        "waited 12s · talked 1m 04s · 1m 20s in all"
    )
    sms = page.get_by_test_id("timeline-item").filter(has_text="My invoice shows a double charge")
    await expect(sms).to_have_attribute("data-channel", "sms")
    await page.screenshot(path=artifacts / "voice-history.png", animations="disabled")

    # The same after a reload: the bar from the stored call, the entry from the history.
    await page.reload()
    await page.get_by_test_id("conversation-item").first.click()
    await expect(bar.get_by_test_id("call-bar-text")).to_have_text(
        "Call ended · talked 01:04 — wrap up"
    )
    await expect(entry.get_by_test_id("call-figures")).to_have_text(
        "waited 12s · talked 1m 04s · 1m 20s in all"
    )
    await page.get_by_test_id("close-button").click()
    await expect(page.get_by_test_id("conversation-state")).to_have_attribute(
        "data-state", "closed"
    )
    await expect(bar).to_be_hidden()

    # Later she leaves a voicemail; its transcription arrives after the recording.
    recording = "RE" + "ab" * 16
    await hub.ingest(
        InboundMessage(
            channel="voicemail",
            sender_kind="phone",
            sender=CALLER,
            provider_id=recording,
            text="Voicemail, 1 s (transcribing…)",
            recipient=OUR_NUMBER,
            threading="explicit",
            queue="support",
            attachments=(
                Attachment(
                    filename=f"voicemail-{recording}.wav", content_type="audio/wav", data=wav_tone()
                ),
            ),
            metadata={"call": {"sid": "CA" + "1" * 32, "recording_duration_s": 1}},
        )
    )
    await expect(page.get_by_test_id("offer")).to_be_visible()
    await page.get_by_test_id("offer-accept").click()
    voicemail = page.get_by_test_id("timeline-item").filter(has_text="Voicemail")
    await expect(voicemail).to_have_attribute("data-channel", "voicemail")
    player = voicemail.get_by_test_id("audio-player")
    await expect(player).to_have_attribute("controls", "")
    await page.wait_for_function(
        "el => el.readyState >= 1 && el.duration > 0.9", arg=await player.element_handle()
    )
    await hub.ingest(
        InboundMessage(
            channel="voicemail",
            sender_kind="phone",
            sender=CALLER,
            provider_id=recording,
            text="Voicemail: please call me back about the refund",
            kind="edit",
        )
    )
    await expect(voicemail.get_by_test_id("message-text")).to_have_text(
        "Voicemail: please call me back about the refund"
    )
    await expect(page.get_by_test_id("conversation-item")).to_contain_text(
        "please call me back about the refund"
    )
    await expect(picker.locator("option:checked")).to_have_attribute("data-channel", "sms")
    assert await picker.locator("option[data-channel=voice]").count() == 0
    assert await picker.locator("option[data-channel=voicemail]").count() == 0
    await page.screenshot(path=artifacts / "voicemail.png", animations="disabled")

    # Answered by SMS: stored as an outbound SMS on the voicemail's conversation.
    await page.get_by_test_id("reply-input").fill("Hi Vera, your refund went out today.")
    await page.get_by_test_id("reply-send").click()
    mine = page.get_by_test_id("timeline-item").filter(has_text="your refund went out today")
    await expect(mine).to_have_attribute("data-direction", "out")
    await expect(mine).to_have_attribute("data-channel", "sms")
    async with hub.sessions() as s:
        row = await s.scalar(select(Message).where(Message.text.like("%refund went out%")))
    assert row is not None
    assert (row.direction, row.channel, row.customer_id) == ("out", "sms", customer_id)


async def test_an_unknown_caller_shows_the_number_as_a_new_caller(
    hub_client: ClientFactory, aiohttp_server: Any, new_page: PageFactory, artifacts: Path
) -> None:
    client, _ = await voice_hub(hub_client, aiohttp_server)
    hub: Hub = client.app[keys.HUB]
    await earlier_sms(hub)
    page = await new_page()
    await log_in(page, str(client.make_url("")).rstrip("/"))
    await page.get_by_test_id("state-select").select_option("available|")
    await expect(page.get_by_test_id("state-dot")).to_have_attribute("data-state", "available")

    # Vera calls from another phone: the hub does not know the number.
    other_phone = "+447700900456"
    info = await hub.call_started(
        channel="voice", call_sid=CALL_SID, from_number=other_phone, to_number=OUR_NUMBER
    )
    assert not info.known
    await hub.call_enqueued(
        EnqueueRequest(
            channel="voice",
            call_sid=CALL_SID,
            from_number=other_phone,
            to_number=OUR_NUMBER,
            queue="support",
            language="en",
            choices=("English", "technical support"),
        )
    )
    card = page.get_by_test_id("offer")
    await expect(card.get_by_test_id("offer-title")).to_have_text("Incoming call")
    await expect(card.get_by_test_id("offer-customer")).to_have_text(other_phone)
    await expect(card.get_by_test_id("pop-new-caller")).to_have_text("New caller")
    await expect(page.get_by_test_id("offer-item")).to_contain_text(other_phone)
    await expect(card.get_by_test_id("pop-ivr-choice")).to_have_text(
        ["English", "technical support"]
    )
    await expect(card.get_by_test_id("pop-no-contacts")).to_have_text("No earlier contacts.")
    await expect(card.get_by_test_id("pop-vip")).to_have_count(0)
    await page.screenshot(path=artifacts / "voice-screen-pop-new-caller.png", animations="disabled")
