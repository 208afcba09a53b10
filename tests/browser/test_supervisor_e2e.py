"""The supervisor dashboard in Chromium: tiles, agents and conversations follow live traffic."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect

from hub.web import keys
from hub.web.api import reports as _reports  # noqa: F401 - registers the report routes
from hub.work.offers import abandon_conversation
from tests.browser.conftest import PageFactory
from tests.conftest import AUTH, ClientFactory

pytestmark = pytest.mark.browser
PASSWORD = "supervisor password"


async def post_contact(client: TestClient[Any, Any], n: int) -> int:
    resp = await client.post(
        "/api/v1/inbound",
        json={
            "from": f"+1555200{n:04d}",
            "name": f"Caller {n}",
            "text": f"Hello, I need help with order {n}",
            "external_id": f"e2e-{n}",
        },
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    conversation_id: int = (await resp.json())["conversation_id"]
    return conversation_id


def tile(page: Page, kind: str, key: str, figure: str) -> Any:
    return page.locator(f'[data-testid="{kind}-tile"][data-key="{key}"] [data-testid="{figure}"]')


def row(page: Page, conversation_id: int) -> Any:
    return page.locator(f'[data-testid="conversation-row"][data-id="{conversation_id}"]')


async def test_dashboard_follows_live_traffic_without_reload(
    hub_client: ClientFactory, new_page: PageFactory, artifacts: Path
) -> None:
    # Offers the router makes to Bob must not expire (and turn him away) during the test.
    client = await hub_client(offer_timeout_s=600)
    hub = client.app[keys.HUB]
    await hub.users.create(username="sup", password=PASSWORD, role="supervisor")
    ann = await hub.users.create(username="ann", password=PASSWORD, display_name="Ann Lee")
    bob = await hub.users.create(username="bob", password=PASSWORD, display_name="Bob Ma")
    await hub.work.set_state(ann, "away", "Break")  # the router offers nothing to her
    page = await new_page()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    await page.goto(str(client.make_url("/login")))
    await page.get_by_test_id("login-username").fill("sup")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(r"/supervisor$"))
    await expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "open")
    await expect(page.get_by_test_id("agent-row")).to_have_count(2)
    loaded = len(navigations)

    # Traffic arrives while the page is open: tiles count it live.
    conversations = [await post_contact(client, n) for n in range(4)]
    await expect(tile(page, "queue", "support", "tile-waiting")).to_have_text("4")
    await expect(tile(page, "channel", "api", "tile-waiting")).to_have_text("4")
    await expect(page.get_by_test_id("conversation-row")).to_have_count(4)
    await expect(tile(page, "queue", "support", "tile-longest")).not_to_have_text("–")

    first, second, third, fourth = conversations
    offer = await hub.work.create_offer(first, ann)
    assert offer is not None
    await expect(tile(page, "queue", "support", "tile-offered")).to_have_text("1")
    await hub.work.accept(offer, ann)
    await hub.conversations.reply(first, text="Hi, Ann here. Checking your order.", author_id=ann)
    await expect(tile(page, "queue", "support", "tile-in-progress")).to_have_text("1")
    await expect(tile(page, "queue", "support", "tile-waiting")).to_have_text("3")
    await expect(tile(page, "queue", "support", "tile-sl")).to_have_text("100.0%")
    ann_row = page.locator(f'[data-testid="agent-row"][data-id="{ann}"]')
    await expect(ann_row.get_by_test_id("agent-load")).to_have_text(re.compile(r"API\s*1"))

    assert await abandon_conversation(hub.tx, fourth, "customer left")
    await expect(tile(page, "queue", "support", "tile-abandon")).to_have_text("50.0%")
    await expect(tile(page, "queue", "support", "tile-waiting")).to_have_text("2")

    # Supervisor actions over the websocket: priority, force state, reassign, monitor.
    await row(page, second).get_by_test_id("priority-input").fill("7")
    await row(page, second).get_by_test_id("priority-set").click()
    await expect(page.get_by_test_id("conversation-row").first).to_have_attribute(
        "data-id", str(second)
    )
    bob_row = page.locator(f'[data-testid="agent-row"][data-id="{bob}"]')
    await bob_row.get_by_test_id("force-state").select_option("available")
    await expect(bob_row.get_by_test_id("agent-state")).to_have_text("Available")
    await expect(page.get_by_test_id("staffing-available")).to_have_text("1")
    await row(page, first).get_by_test_id("reassign-select").select_option(str(bob))
    await row(page, first).get_by_test_id("reassign-button").click()
    await expect(row(page, first).locator(".cell-agent")).to_have_text("Bob Ma")
    await row(page, first).get_by_test_id("monitor-button").click()
    monitor = page.get_by_test_id("monitor")
    await expect(monitor).to_be_visible()
    await expect(page.get_by_test_id("monitor-item")).to_have_count(2)
    await hub.conversations.reply(first, text="Bob here, taking over.", author_id=bob)
    await expect(page.get_by_test_id("monitor-item")).to_have_count(3)
    await expect(page.get_by_test_id("monitor-item").last).to_contain_text("Bob here")
    await page.screenshot(path=str(artifacts / "supervisor-monitor.png"), full_page=False)
    await page.get_by_test_id("monitor-close").click()

    # Reports: charts, staffing and CSV exports from the REST API.
    await hub.work.wrap_up(first, agent_id=bob)
    await hub.conversations.close(first, agent_id=bob, disposition="resolved")
    await page.get_by_test_id("refresh").click()
    await expect(page.get_by_test_id("arrival-bar").first).to_be_visible()
    await expect(page.get_by_test_id("wait-bar").first).to_be_visible()
    await expect(page.get_by_test_id("occupancy-bar").first).to_be_visible()
    await page.get_by_test_id("staffing-arrivals").fill("200")
    await page.get_by_test_id("staffing-aht").fill("180")
    await page.get_by_test_id("staffing-target").fill("80")
    await page.get_by_test_id("staffing-threshold").fill("20")
    await page.get_by_test_id("staffing-calc").click()
    await expect(page.get_by_test_id("staffing-needed")).to_have_text("14")
    await expect(page.get_by_test_id("staffing-gap")).to_have_text("13 short")
    for export in ("summary", "queues", "timeseries", "waits", "agents"):
        href = await page.get_by_test_id(f"export-{export}").get_attribute("href")
        assert href is not None
        resp = await page.request.get(str(client.make_url(href)))
        assert resp.status == 200, href
        assert resp.headers["content-type"].startswith("text/csv")
    await expect(tile(page, "queue", "support", "tile-waiting")).to_have_text("2")
    assert third in conversations
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(artifacts / "supervisor-dashboard.png"), full_page=True)

    await page.get_by_test_id("lang-select").select_option("zh-CN")
    await expect(page.locator('[data-st="sup.queues"]')).to_have_text("队列")
    await expect(page.get_by_test_id("conn-status")).to_have_text("已连接")
    await expect(
        tile(page, "queue", "support", "tile-waiting").locator("xpath=..")
    ).to_contain_text("等待中")
    await expect(page.get_by_test_id("conversation-row")).to_have_count(2)
    await page.screenshot(path=str(artifacts / "supervisor-dashboard-zh.png"), full_page=False)
    assert len(navigations) == loaded, "the dashboard reloaded"


async def test_supervisor_page_needs_a_supervisor_session(
    hub_client: ClientFactory, new_page: PageFactory
) -> None:
    client = await hub_client()
    await client.app[keys.HUB].users.create(username="ann", password=PASSWORD)
    page = await new_page()
    await page.goto(str(client.make_url("/supervisor")))
    await page.wait_for_url(re.compile(r"/login$"))
    resp = await page.request.post(
        str(client.make_url("/login")), data={"username": "ann", "password": PASSWORD}
    )
    assert resp.status == 200
    await page.goto(str(client.make_url("/supervisor")))
    await page.wait_for_url(re.compile(r"/console$"))
