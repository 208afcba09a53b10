"""In Chromium: the offer of a returning customer's conversation tells their last agent it is
"Your customer"; an offer of someone else's customer does not."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from hub.web import keys
from tests.browser.conftest import PageFactory
from tests.conftest import AUTH, ClientFactory
from tests.hub.test_dispatch import pending_offer

pytestmark = pytest.mark.browser

PASSWORD = "console-pass-123"


async def test_the_offer_of_a_returning_customer_says_your_customer(
    hub_client: ClientFactory, new_page: PageFactory
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    resp = await client.post(
        "/api/v1/agents",
        json={"username": "alice", "password": PASSWORD, "display_name": "Alice Ames"},
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    alice = int((await resp.json())["id"])
    await hub.work.set_state(alice, "available")

    async def inbound(frm: str, ext: str) -> int:
        resp = await client.post(
            "/api/v1/inbound",
            json={"from": frm, "text": f"hi {ext}", "external_id": ext},
            headers=AUTH,
        )
        assert resp.status == 201, await resp.text()
        return int((await resp.json())["conversation_id"])

    # Alice served this customer before; they come back while her console is open.
    first = await inbound("+12025550190", "first")
    offer_id, _ = await pending_offer(client, first)
    await hub.work.accept(offer_id, alice)
    await hub.conversations.reply(first, text="Done.", author_id=alice)
    await hub.conversations.close(first, agent_id=alice)

    page = await new_page()
    base = str(client.make_url("/")).rstrip("/")
    await page.goto(f"{base}/login")
    await page.get_by_test_id("login-username").fill("alice")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(r"/console$"))
    await expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "open")

    await inbound("+12025550190", "again")
    await expect(page.get_by_test_id("offer")).to_be_visible()
    yours = page.get_by_test_id("offer-yours")
    await expect(yours).to_have_text("Your customer")
    await expect(yours).to_have_attribute("title", re.compile("You served this customer last"))
    await page.get_by_test_id("offer-accept").click()
    await expect(page.get_by_test_id("offer")).to_have_count(0)

    # A stranger's conversation rings without the pill.
    await inbound("+12025550191", "stranger")
    await expect(page.get_by_test_id("offer")).to_be_visible()
    await expect(page.get_by_test_id("offer-yours")).to_have_count(0)
