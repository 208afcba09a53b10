"""Canned responses and dispositions in Chromium: a supervisor adds a team text on the admin
page; the agent types "/ref" in the reply box, picks one with the keyboard and gets it with
the customer's first name filled in; the close form insists on the queue's disposition."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from hub.web import keys
from storage.models import Conversation
from tests.browser.conftest import PageFactory
from tests.conftest import AUTH, ClientFactory

pytestmark = pytest.mark.browser

PASSWORD = "canned-pass-123"


async def _login(page: Page, base: str, username: str, landing: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(f"{landing}$"))


async def test_agent_types_slash_ref_and_inserts_a_canned_reply_with_the_customers_name(
    hub_client: ClientFactory, new_page: PageFactory, artifacts: Path
) -> None:
    client = await hub_client(offer_timeout_s=30)
    hub = client.app[keys.HUB]
    base = str(client.make_url("/")).rstrip("/")
    resp = await client.put(
        "/api/v1/queues/support",
        json={"team": "Care", "steps": [{"expression": ""}]},
        headers=AUTH,
    )
    assert resp.status == 200, await resp.text()
    for username, name, role in (("ann", "Ann Archer", "agent"), ("sue", "Sue Park", "supervisor")):
        body = {"username": username, "password": PASSWORD, "display_name": name}
        resp = await client.post(
            "/api/v1/agents", json={**body, "role": role, "team": "Care"}, headers=AUTH
        )
        assert resp.status == 201, await resp.text()

    # The supervisor adds a team text on the admin page and makes dispositions required.
    sue = await new_page()
    await _login(sue, base, "sue", "/supervisor")
    await sue.goto(f"{base}/admin/canned")
    await expect(sue.get_by_test_id("canned-row")).to_have_count(4)  # the seeded defaults
    await sue.get_by_test_id("canned-shortcut").fill("refund-late")
    await sue.get_by_test_id("canned-title").fill("Refund delayed")
    await sue.get_by_test_id("canned-text").fill(
        "Sorry {customer.first_name}, the refund takes 2 more days. <b>{agent.name}</b>"
    )
    await expect(sue.get_by_test_id("canned-team")).to_have_value("Care")
    await sue.get_by_test_id("canned-save").click()
    row = sue.locator('[data-testid="canned-row"][data-shortcut="refund-late"]')
    await expect(row).to_contain_text("Care")
    await expect(sue.get_by_test_id("canned-rows").locator("b")).to_have_count(0)
    await sue.locator('[data-testid="required-queue"][data-queue="support"] input').check()
    await expect(sue.get_by_test_id("admin-status")).to_have_text("Saved.")
    await sue.screenshot(path=artifacts / "canned-admin.png", animations="disabled", full_page=True)

    # A customer writes; the agent accepts.
    resp = await client.post(
        "/api/v1/inbound",
        json={
            "from": "+12025550177",
            "name": "Maria Gonzalez",
            "text": "Where is my refund?",
            "external_id": "canned-1",
        },
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    conversation_id = (await resp.json())["conversation_id"]
    ann = await new_page()
    await _login(ann, base, "ann", "/console")
    await expect(ann.get_by_test_id("conn-status")).to_have_attribute("data-state", "open")
    await ann.get_by_test_id("state-select").select_option("available|")
    await ann.evaluate("document.activeElement && document.activeElement.blur()")
    await expect(ann.get_by_test_id("offer")).to_be_visible()
    await ann.keyboard.press("a")
    await expect(ann.get_by_test_id("conversation-title")).to_have_text("Maria Gonzalez")

    # "/ref" lists the refund texts (shortcut prefix first); arrows and Enter insert one.
    box = ann.get_by_test_id("reply-input")
    await box.click()
    await box.press_sequentially("/ref")
    options = ann.get_by_test_id("canned-option")
    await expect(options).to_have_count(2)
    await expect(options.nth(0)).to_have_attribute("data-shortcut", "refund")
    await expect(options.nth(1)).to_have_attribute("data-shortcut", "refund-late")
    await expect(options.nth(1)).to_contain_text("Sorry Maria, the refund takes 2 more days.")
    await expect(ann.get_by_test_id("canned-menu").locator("b")).to_have_count(0)
    await box.press("ArrowDown")
    await expect(options.nth(1)).to_have_class(re.compile(r"\bactive\b"))
    await ann.screenshot(path=artifacts / "canned-1-slash-search.png", animations="disabled")
    await box.press("Enter")
    await expect(box).to_have_value("Sorry Maria, the refund takes 2 more days. <b>Ann Archer</b>")
    await expect(ann.get_by_test_id("canned-menu")).to_be_hidden()
    await ann.screenshot(path=artifacts / "canned-2-inserted.png", animations="disabled")

    # Escape closes the list and leaves what was typed.
    await box.fill("")
    await box.press_sequentially("/gre")
    await expect(options).to_have_count(1)
    await box.press("Escape")
    await expect(ann.get_by_test_id("canned-menu")).to_be_hidden()
    await expect(box).to_have_value("/gre")

    # The close form lists the queue's codes and will not close without one here.
    disposition = ann.get_by_test_id("disposition-select")
    await expect(disposition.locator("option")).to_have_count(7)
    await expect(disposition.locator("option").first).to_have_text(
        "Choose a disposition (required)"
    )
    await ann.get_by_test_id("close-button").click()
    await expect(ann.get_by_test_id("toast").filter(has_text="disposition")).to_be_visible()
    async with hub.sessions() as s:
        assert (await s.get_one(Conversation, conversation_id)).state != "closed"
    await disposition.select_option("resolved")
    await ann.get_by_test_id("close-button").click()
    await expect(ann.get_by_test_id("toast").filter(has_text="closed")).to_be_visible()
    async with hub.sessions() as s:
        closed = await s.get_one(Conversation, conversation_id)
        assert (closed.state, closed.disposition) == ("closed", "resolved")
