"""The supervisor dashboard's phone panel in Chromium: calls waiting, agents on a call and
today's phone figures follow calls made through the hub's real phone port (no Twilio)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect

from contract.voice import CallFact, EnqueueRequest
from hub.services import Hub
from hub.web import keys
from hub.web.api import reports as _reports  # noqa: F401 - registers the report routes
from server.app import create_app
from tests.browser.conftest import PageFactory, sign_in
from tests.browser.test_voice_screen_pop import ACCOUNT_SID, AGENT_LEG, OUR_NUMBER, fake_calls_api
from tests.conftest import AUTH, ClientFactory, make_settings

pytestmark = pytest.mark.browser
PASSWORD = "supervisor password"
# The figures refresh at most every 5 s after calls end: give them a little longer.
REFRESH_TIMEOUT_MS = 12000


async def place_call(hub: Hub, n: int) -> tuple[str, int]:
    """A caller goes through the menus and waits in support: (call sid, conversation id)."""
    sid = f"CA{n:032x}"
    caller = f"+4477009002{n:02d}"
    await hub.call_started(channel="voice", call_sid=sid, from_number=caller, to_number=OUR_NUMBER)
    view = await hub.call_enqueued(
        EnqueueRequest(
            channel="voice",
            call_sid=sid,
            from_number=caller,
            to_number=OUR_NUMBER,
            queue="support",
            language="en",
            choices=("English", "support"),
            callback_channel="callback",  # as the Twilio adapter asks
        )
    )
    assert view.conversation_id is not None
    return sid, view.conversation_id


async def log_in_supervisor(page: Page, client: TestClient[Any, Any]) -> None:
    base = str(client.make_url("")).rstrip("/")
    await sign_in(page, base, "sup", PASSWORD, landing="supervisor")
    await expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "open")


async def test_phone_panel_counts_waiting_calls_agents_on_calls_and_todays_figures(
    hub_client: ClientFactory, aiohttp_server: Any, new_page: PageFactory, artifacts: Path
) -> None:
    api_base, placed = await fake_calls_api(aiohttp_server)
    client = await hub_client(
        offer_timeout_s=600,
        channels={
            "twilio_voice": {
                "account_sid": ACCOUNT_SID,
                "auth_token": "t",
                "number": OUR_NUMBER,
                "api_base": api_base,
            }
        },
    )
    hub: Hub = client.app[keys.HUB]
    await hub.users.create(username="sup", password=PASSWORD, role="supervisor")
    ann = await hub.users.create(username="ann", password=PASSWORD, display_name="Ann Lee")
    resp = await client.patch(f"/api/v1/agents/{ann}", json={"phone": "+15005550100"}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    await hub.work.set_state(ann, "away", "Break")  # the router offers her nothing by itself

    page = await new_page()
    await log_in_supervisor(page, client)
    panel = page.get_by_test_id("phone-panel")
    await expect(panel).to_be_visible()
    await expect(page.get_by_test_id("phone-waiting")).to_have_text("0")
    await expect(page.get_by_test_id("phone-answered")).to_have_text("0")

    # Four callers wait; Ann takes the first, her phone rings and she picks up.
    (answered, first), (abandoned, _), _, _ = [await place_call(hub, n) for n in range(4)]
    await expect(page.get_by_test_id("phone-waiting")).to_have_text("4")
    await expect(page.get_by_test_id("phone-longest")).not_to_have_text("–")
    offer = await hub.work.create_offer(first, ann)
    assert offer is not None
    await hub.work.accept(offer, ann)
    for _ in range(100):  # the bridge rings her phone through the Calls API
        if placed:
            break
        await asyncio.sleep(0.05)
    assert [p["To"] for p in placed] == ["+15005550100"]
    await hub.call_fact(CallFact(channel="voice", call_sid=answered, kind="connecting", wait_s=12))
    await expect(page.get_by_test_id("phone-waiting")).to_have_text("3")
    await expect(page.get_by_test_id("phone-on-call")).to_have_text("1")

    # They talk 64 s (80 s in all); then the second caller hangs up after 35 s in the queue.
    for fact in (
        CallFact(
            channel="voice", call_sid=answered, kind="queue_result", result="bridged", wait_s=12
        ),
        CallFact(
            channel="voice",
            call_sid=answered,
            kind="dial_result",
            leg="agent",
            leg_sid=AGENT_LEG,
            result="completed",
            talk_s=64,
            bridged=True,
        ),
        CallFact(
            channel="voice", call_sid=answered, kind="status", status="completed", duration_s=80
        ),
    ):
        await hub.call_fact(fact)
    await expect(page.get_by_test_id("phone-on-call")).to_have_text("0")
    await hub.call_fact(
        CallFact(
            channel="voice", call_sid=abandoned, kind="queue_result", result="hangup", wait_s=35
        )
    )
    await expect(page.get_by_test_id("phone-waiting")).to_have_text("2")
    # The caller who hung up after 35 s is owed a callback: a task, not a caller waiting.
    await expect(page.get_by_test_id("phone-callbacks-due")).to_have_text("1")
    figures = {
        "phone-answered": "1",
        "phone-abandoned": "1",
        "phone-callbacks": "0",
        "phone-voicemails": "0",
        "phone-asa": "12s",
        "phone-abandon-rate": "50.0%",
        "phone-sl": "50.0%",  # the answered call left the queue within 20 s, the other did not
        "phone-aht": "1m 04s",
    }
    for testid, text in figures.items():
        await expect(page.get_by_test_id(testid)).to_have_text(text, timeout=REFRESH_TIMEOUT_MS)
    await expect(page.get_by_test_id("phone-sl-label")).to_have_text("SL (≤20s)")
    await page.screenshot(path=str(artifacts / "dashboard-phone.png"), full_page=False)

    await page.get_by_test_id("lang-select").select_option("zh-CN")
    await expect(panel.locator('[data-st="sup.phone"]')).to_have_text("电话")
    await expect(page.get_by_test_id("phone-sl-label")).to_have_text("服务水平（≤20秒）")
    await expect(page.get_by_test_id("phone-aht")).to_have_text("1分04秒")
    await expect(page.get_by_test_id("phone-waiting")).to_have_text("2")
    await page.screenshot(path=str(artifacts / "dashboard-phone-zh.png"), full_page=False)


async def test_phone_panel_stays_hidden_without_a_voice_channel(
    aiohttp_client: Any, sqlite_url: str, new_page: PageFactory
) -> None:
    settings = make_settings(sqlite_url)
    client: TestClient[Any, Any] = await aiohttp_client(
        create_app(settings, channels=("channels.api", "channels.twilio_sms"))
    )
    await client.app[keys.HUB].users.create(username="sup", password=PASSWORD, role="supervisor")
    page = await new_page()
    await log_in_supervisor(page, client)
    await expect(page.get_by_test_id("user-name")).to_have_text("sup")  # the welcome came
    await expect(page.get_by_test_id("phone-panel")).to_be_hidden()
