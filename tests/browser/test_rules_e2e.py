"""An admin writes an automation rule in the admin page; an SMS that matches it arrives; the
rule fires (the conversation gets its label and priority) and the page counts the firing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from hub.web import keys
from storage.models import Conversation
from tests import factories
from tests.browser.conftest import PageFactory
from tests.conftest import AUTH, ClientFactory

pytestmark = pytest.mark.browser

PASSWORD = "admin-pass-123"


async def _login(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile("/supervisor$"))


async def test_a_rule_written_in_the_admin_page_fires_on_the_next_matching_message(
    hub_client: ClientFactory, new_page: PageFactory, artifacts: Path
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    await factories.queue(hub, "support")
    resp = await client.post(
        "/api/v1/agents",
        json={"username": "ada", "password": PASSWORD, "role": "admin"},
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    base = str(client.make_url("/")).rstrip("/")
    page = await new_page()
    await _login(page, base, "ada")
    await page.goto(f"{base}/admin#rules")
    await expect(page.get_by_test_id("rules-panel")).to_be_visible()

    await page.get_by_test_id("rule-name").fill("Refunds are urgent")
    await page.get_by_test_id("rule-event").select_option("message.created")
    await page.get_by_test_id("rule-channel").fill("sms")
    await page.get_by_test_id("rule-contains").fill("refund, 退款")
    actions = page.get_by_test_id("rule-action")
    await actions.nth(0).get_by_test_id("rule-action-type").select_option("add_labels")
    await actions.nth(0).get_by_test_id("rule-action-value").fill("refund")
    await page.get_by_test_id("rule-add-action").click()
    await actions.nth(1).get_by_test_id("rule-action-type").select_option("set_priority")
    await actions.nth(1).get_by_test_id("rule-action-value").fill("9")
    await page.get_by_test_id("rule-save").click()
    row = page.locator('[data-testid="rule-row"][data-rule="Refunds are urgent"]')
    await expect(row).to_be_visible()
    await expect(row).to_contain_text("add_labels (labels: refund) → set_priority (priority: 9)")
    await expect(row.get_by_test_id("rule-fired")).to_have_text("0")

    other = await factories.contact(hub, "+14155550190", "hello there", channel="sms")
    match = await factories.contact(hub, "+14155550191", "我要退款 please", channel="sms")
    # The engine works in the background; reloading the tab shows the firing.
    for _ in range(50):
        await page.reload()
        await expect(page.get_by_test_id("rules-panel")).to_be_visible()
        if await row.get_by_test_id("rule-fired").text_content() == "1":
            break
        await page.wait_for_timeout(100)
    await expect(row.get_by_test_id("rule-fired")).to_have_text("1")
    await page.screenshot(path=str(artifacts / "admin-rules.png"), full_page=True)
    async with hub.sessions() as s:
        fired = await s.get_one(Conversation, match.conversation_id)
        untouched = await s.get_one(Conversation, other.conversation_id)
    assert (fired.labels, fired.priority) == (["refund"], 9)
    assert (untouched.labels, untouched.priority) == ([], 0)
