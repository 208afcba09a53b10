"""The web chat from a visitor's browser to an agent's console and back.

A visitor on the demo shop page (``/chat/demo``) opens the widget, fills in the pre-chat
form and writes; the agent (a second browser context) gets the offer, accepts and
replies; the visitor sees the answer, reloads and sees the whole conversation; their
connection is cut while both sides write, and once it is back nothing is lost or doubled;
an identity with a forged HMAC is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect
from sqlalchemy import func, select

from contract.testing import free_port
from hub.services import Hub
from hub.web import keys
from server.app import create_app
from storage.models import Message
from tests import factories
from tests.browser.conftest import sign_in
from tests.channels.webchat.conftest import webchat_section
from tests.conftest import make_settings

pytestmark = pytest.mark.browser


@pytest.fixture
async def shop(aiohttp_client: Any, sqlite_url: str) -> TestClient[Any, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(
        sqlite_url, public_url=base, channels={"webchat": webchat_section("self")}
    )
    client: TestClient[Any, Any] = await aiohttp_client(
        create_app(settings), server_kwargs={"port": port}
    )
    return client


async def agent_console(browser: Browser, base: str) -> Page:
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    await sign_in(page, base, "ann", factories.PASSWORD, landing="console")
    await page.get_by_test_id("state-select").select_option("available|")
    await expect(page.get_by_test_id("state-dot")).to_have_attribute("data-state", "available")
    return page


async def stored_texts(hub: Hub, text: str) -> int:
    async with hub.sessions() as s:
        return int(await s.scalar(select(func.count()).where(Message.text == text)) or 0)


async def test_a_visitor_chats_with_an_agent_across_a_reload_and_a_cut_connection(
    shop: TestClient[Any, Any], browser: Browser, artifacts: Path
) -> None:
    hub: Hub = shop.app[keys.HUB]
    base = str(shop.make_url("")).rstrip("/")
    await factories.agent(hub, "ann")
    agent = await agent_console(browser, base)

    visitor_ctx = await browser.new_context(viewport={"width": 1280, "height": 860})
    visitor = await visitor_ctx.new_page()
    await visitor.goto(f"{base}/chat/demo")
    await visitor.get_by_test_id("chat-launcher").click()
    await expect(visitor.get_by_test_id("chat-window")).to_be_visible()
    await visitor.get_by_test_id("prechat-name").fill("Vic Visitor")
    await visitor.get_by_test_id("prechat-submit").click()
    await visitor.get_by_test_id("chat-input").fill("Hello, where is my order 1234?")
    await visitor.get_by_test_id("chat-send").click()
    messages = visitor.get_by_test_id("chat-message")
    await expect(messages.filter(has_text="where is my order 1234")).to_have_count(1)

    # The agent gets the offer, accepts and answers.
    await expect(agent.get_by_test_id("offer")).to_be_visible()
    await agent.get_by_test_id("offer-accept").first.click()
    await expect(
        agent.get_by_test_id("timeline-item").filter(has_text="where is my order 1234")
    ).to_be_visible()
    await agent.get_by_test_id("reply-input").fill("Hi Vic, it ships today.")
    await agent.get_by_test_id("reply-send").click()
    await expect(messages.filter(has_text="it ships today")).to_have_count(1)
    await visitor.screenshot(path=artifacts / "webchat-1-visitor.png", animations="disabled")
    await agent.screenshot(path=artifacts / "webchat-2-agent.png", animations="disabled")

    # A reload resumes the same conversation with its whole history.
    await visitor.reload()
    await visitor.get_by_test_id("chat-launcher").click()
    await expect(messages.filter(has_text="where is my order 1234")).to_have_count(1)
    await expect(messages.filter(has_text="it ships today")).to_have_count(1)
    await visitor.screenshot(path=artifacts / "webchat-3-after-reload.png", animations="disabled")

    # The connection is cut: the visitor writes while offline, the agent answers meanwhile.
    await visitor_ctx.set_offline(True)
    adapter = shop.app[keys.ADAPTERS]["webchat"]
    for tabs in list(adapter.visitors.by_address.values()):  # the network drops the socket
        for tab in list(tabs):
            await tab.ws.close()
    await visitor.get_by_test_id("chat-input").fill("Can you send the tracking link?")
    await visitor.get_by_test_id("chat-send").click()
    await agent.get_by_test_id("reply-input").fill("Tracking: KC-1234-XYZ")
    await agent.get_by_test_id("reply-send").click()
    await expect(
        agent.get_by_test_id("timeline-item").filter(has_text="Tracking: KC-1234-XYZ")
    ).to_be_visible()
    assert await stored_texts(hub, "Can you send the tracking link?") == 0  # not sent yet
    await visitor_ctx.set_offline(False)
    # Back online: the queued message goes out once, the missed reply arrives once.
    await expect(messages.filter(has_text="Tracking: KC-1234-XYZ")).to_have_count(1, timeout=20_000)
    await expect(messages.filter(has_text="send the tracking link")).to_have_count(1)
    await expect(
        agent.get_by_test_id("timeline-item").filter(has_text="send the tracking link")
    ).to_have_count(1)
    for text in ("Can you send the tracking link?", "Tracking: KC-1234-XYZ"):
        assert await stored_texts(hub, text) == 1
    await expect(messages).to_have_count(4)
    await visitor.screenshot(path=artifacts / "webchat-4-after-cut.png", animations="disabled")

    # A forged identity (no valid HMAC under the site's secret) is refused.
    await visitor.evaluate("window.HubChat.identify('user-42', 'ab'.repeat(32))")
    await expect(visitor.get_by_test_id("chat-error")).to_contain_text("could not verify")
    await visitor_ctx.close()
    await agent.context.close()


async def test_a_bot_answers_first_and_the_visitor_asks_for_a_person(
    aiohttp_client: Any, sqlite_url: str, browser: Browser, artifacts: Path
) -> None:
    from tests.channels.webchat.test_visitor_protocol import BOT

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(
        sqlite_url, public_url=base, channels={"webchat": webchat_section("self", bot=BOT)}
    )
    shop: TestClient[Any, Any] = await aiohttp_client(
        create_app(settings), server_kwargs={"port": port}
    )
    hub: Hub = shop.app[keys.HUB]
    await factories.agent(hub, "ann")
    agent = await agent_console(browser, base)
    visitor_ctx = await browser.new_context(viewport={"width": 1280, "height": 860})
    visitor = await visitor_ctx.new_page()
    await visitor.goto(f"{base}/chat/demo")
    await visitor.get_by_test_id("chat-launcher").click()
    await visitor.get_by_test_id("prechat-name").fill("Bea")
    await visitor.get_by_test_id("prechat-submit").click()
    await visitor.get_by_test_id("chat-input").fill("How long does delivery take?")
    await visitor.get_by_test_id("chat-send").click()
    answer = visitor.get_by_test_id("chat-message").filter(has_text="We ship within two days.")
    await expect(answer).to_contain_text("Kettlebot")
    await expect(visitor.get_by_test_id("chat-status-text")).to_contain_text("Kettlebot")
    await expect(agent.get_by_test_id("offer")).to_have_count(0)  # the bot holds it
    await visitor.screenshot(path=artifacts / "webchat-5-bot.png", animations="disabled")
    await visitor.get_by_test_id("chat-handoff").click()
    await expect(agent.get_by_test_id("offer")).to_be_visible()
    await agent.get_by_test_id("offer-accept").first.click()
    bot_line = agent.get_by_test_id("timeline-item").filter(has_text="We ship within two days.")
    await expect(bot_line).to_contain_text("Bot (first line)")
    await expect(visitor.get_by_test_id("chat-handoff")).to_be_hidden()
    await agent.screenshot(path=artifacts / "webchat-6-bot-handoff.png", animations="disabled")
    await visitor_ctx.close()
    await agent.context.close()
