"""The throwaway dummy channel (``tests/channels/dummy/``) in the browser console: its badge
is drawn from what the folder declares, and a reply reaches its provider."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from hub.web import keys
from tests import factories
from tests.browser.conftest import PageFactory
from tests.channels.dummy.test_dummy_channel import DummyHub, dummy_hub  # noqa: F401 - fixture

pytestmark = pytest.mark.browser


async def test_the_console_shows_the_dummy_badge_and_the_reply_goes_out(
    dummy_hub: DummyHub,  # noqa: F811 - the fixture imported above
    new_page: PageFactory,
    artifacts: Path,
) -> None:
    client, fake = await dummy_hub()
    hub = client.app[keys.HUB]
    await factories.agent(hub, "ann")
    page = await new_page()
    base = str(client.make_url("")).rstrip("/")
    await page.goto(f"{base}/login")
    await page.get_by_test_id("login-username").fill("ann")
    await page.get_by_test_id("login-password").fill(factories.PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(r"/console$"))
    await page.get_by_test_id("state-select").select_option("available|")
    await expect(page.get_by_test_id("state-dot")).to_have_attribute("data-state", "available")

    status, _ = await fake.post("/webhooks/dummy", {"id": "in-9", "sender": "u-9", "text": "ping"})
    assert status == 200
    await expect(page.get_by_test_id("offer")).to_be_visible()
    await page.get_by_test_id("offer-accept").first.click()
    item = page.get_by_test_id("conversation-item")
    await expect(item).to_have_count(1)
    badge = item.get_by_test_id("channel-badge")
    await expect(badge).to_have_text("DMY")
    await expect(badge).to_have_attribute("title", "Dummy")
    await expect(badge).to_have_css("background-color", "rgb(179, 92, 0)")
    await page.get_by_test_id("reply-input").fill("Pong from the console")
    await page.get_by_test_id("reply-send").click()
    sent = await fake.sent.get()
    assert sent["text"] == "Pong from the console"
    status, _ = await fake.post("/webhooks/dummy/status", {"id": sent["id"], "status": "delivered"})
    assert status == 200
    mine = page.get_by_test_id("timeline-item").filter(has_text="Pong from the console")
    await expect(mine.get_by_test_id("delivery-status")).to_have_attribute(
        "data-status", "delivered"
    )
    await page.screenshot(path=artifacts / "console-20-dummy-channel.png", animations="disabled")
