"""Email and Telegram end to end through the browser console."""

from __future__ import annotations

import asyncio
import re
from email import message_from_bytes, policy
from pathlib import Path

import aiohttp
from playwright.async_api import Page, expect

from channels.email.testing.simulator import send_mail
from channels.email.testing.sink import start_sink
from channels.telegram.testing.fake_api import start_fake_telegram
from channels.telegram.testing.simulator import post_update, text_update
from contract.testing import free_port
from tests.browser.conftest import PageFactory
from tests.conftest import AUTH, ClientFactory

PASSWORD = "password-ann"
MAILBOX = "support@support.example.com"
CUSTOMER = "dana@example.net"


async def console_agent(page: Page, client: object, base: str) -> None:
    resp = await client.post(  # type: ignore[attr-defined]
        "/api/v1/agents",
        json={"username": "ann", "password": PASSWORD, "display_name": "Ann Archer"},
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    await page.goto(f"{base}/login")
    await page.get_by_test_id("login-username").fill("ann")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(r"/console$"))
    await page.get_by_test_id("state-select").select_option("available|")
    await expect(page.get_by_test_id("state-dot")).to_have_attribute("data-state", "available")
    await page.evaluate("document.activeElement && document.activeElement.blur()")


async def accept_and_reply(page: Page, reply: str) -> None:
    await expect(page.get_by_test_id("offer")).to_be_visible()
    await page.get_by_test_id("offer-accept").first.click()
    await expect(page.get_by_test_id("conversation-item")).to_have_count(1)
    await page.get_by_test_id("reply-input").fill(reply)
    await page.get_by_test_id("reply-send").click()


def first_mail(subject: str) -> bytes:
    return (
        "From: Dana Reyes <dana@example.net>\r\n"
        f"To: {MAILBOX}\r\n"
        f"Subject: {subject}\r\n"
        "Message-ID: <first-1@example.net>\r\n"
        "Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "My invoice total looks wrong.\r\n"
    ).encode()


async def test_mail_reply_from_the_console_is_threaded_and_the_answer_threads_back(
    hub_client: ClientFactory, new_page: PageFactory, artifacts: Path
) -> None:
    sink = await start_sink()
    smtp_port = free_port()
    try:
        client = await hub_client(
            smtp_enabled=True,
            smtp_port=smtp_port,
            relay_port=sink.port,
            email_mailboxes={MAILBOX: "support"},
        )
        base = str(client.make_url("/")).rstrip("/")
        page = await new_page()
        await console_agent(page, client, base)

        answer = await send_mail(
            "127.0.0.1", smtp_port, first_mail("Invoice 2211"), CUSTOMER, MAILBOX
        )
        assert answer.startswith("2.")
        await accept_and_reply(page, "We corrected the invoice; a new copy is attached soon.")

        sent = await sink.next(wait_s=10)
        out = message_from_bytes(sent.raw, policy=policy.default)
        assert sent.rcpt_tos == (CUSTOMER,)
        assert out["In-Reply-To"] == "<first-1@example.net>"
        assert "<first-1@example.net>" in out["References"]
        assert out["Subject"] == "Re: Invoice 2211"
        reply_to = str(out["Reply-To"])
        assert reply_to.startswith("reply+")

        # The customer answers our mail: it threads back into the same conversation.
        customer_reply = (
            f"From: Dana Reyes <{CUSTOMER}>\r\nTo: {reply_to}\r\nSubject: Re: Invoice 2211\r\n"
            f"Message-ID: <second-2@example.net>\r\nIn-Reply-To: {out['Message-ID']}\r\n"
            f"References: <first-1@example.net> {out['Message-ID']}\r\n"
            "Date: Mon, 23 Nov 2026 09:30:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nThanks, that fixed it.\r\n"
        ).encode()
        assert (
            await send_mail("127.0.0.1", smtp_port, customer_reply, CUSTOMER, reply_to)
        ).startswith("2.")
        item = page.get_by_test_id("timeline-item").filter(
            has=page.get_by_test_id("message-text").get_by_text("Thanks, that fixed it.")
        )
        await expect(item).to_have_attribute("data-channel", "email")
        await expect(page.get_by_test_id("conversation-item")).to_have_count(1)
        await page.screenshot(path=artifacts / "console-12-email-thread.png", animations="disabled")
        convs = await (await client.get("/api/v1/customers?email=" + CUSTOMER, headers=AUTH)).json()
        cid = convs["items"][0]["id"]
        listing = await (
            await client.get(f"/api/v1/customers/{cid}/conversations", headers=AUTH)
        ).json()
        assert len(listing["items"]) == 1
    finally:
        await sink.stop()


async def test_telegram_message_reply_from_the_console_reaches_the_right_chat(
    hub_client: ClientFactory, new_page: PageFactory, artifacts: Path
) -> None:
    token, secret, chat = (
        "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        "hub-secret_0123",
        700100777,
    )
    fake, api_base = await start_fake_telegram(token)
    try:
        client = await hub_client(
            telegram_bot_token=token, telegram_secret_token=secret, telegram_api_base=api_base
        )
        base = str(client.make_url("/")).rstrip("/")
        page = await new_page()
        await console_agent(page, client, base)
        user = {"id": chat, "first_name": "Olivia", "last_name": "Ng", "language_code": "en"}
        async with aiohttp.ClientSession() as http:
            status = await post_update(
                http, base, secret, text_update(900001, user, "Is my parcel in Leeds yet?")
            )
        assert status == 200
        reply = "Yes, it reached the Leeds depot this morning."
        await accept_and_reply(page, reply)
        async with asyncio.timeout(10):
            while not [c for c in fake.calls_of("sendMessage") if c.get("text") == reply]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        call = next(c for c in fake.calls_of("sendMessage") if c.get("text") == reply)
        assert int(call["chat_id"]) == chat
        await expect(page.get_by_test_id("timeline-item").last).to_have_attribute(
            "data-channel", "telegram"
        )
        await page.screenshot(path=artifacts / "console-13-telegram.png", animations="disabled")
    finally:
        await fake.stop()
