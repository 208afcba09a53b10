"""Hostile markup sent inbound on every channel renders as inert text in the console and the
supervisor dashboard.

Each payload of an XSS corpus goes in every field a customer controls on each channel
(message text, display name, subject, the HTML part of a mail, attachment file names, the
Telegram group title, caption and username). The agent then takes every conversation from an
offer, with the customer's whole history on screen, and a supervisor watches the floor and
monitors each conversation. Nothing may run (no dialog, no ``window.__xss``), no element the
payloads carry may exist, no page may navigate away, and each payload must be on screen as
text, so the test knows it rendered what it sent.

The pages run with their Content-Security-Policy bypassed: the CSP is the second wall, and
this test is about the first one, the console's own rendering. A check of the header itself
keeps the second wall in place.
"""

from __future__ import annotations

import asyncio
import base64
import html
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Dialog, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from channels.email.testing.simulator import send_mail
from channels.email.testing.sink import MailSink, start_sink
from channels.telegram.testing.fake_api import FakeTelegram, start_fake_telegram
from channels.telegram.testing.simulator import post_update, text_update
from channels.twilio_sms.testing.fake_api import (
    DEMO_ACCOUNT_SID,
    DEMO_AUTH_TOKEN,
    start_fake_twilio,
)
from channels.twilio_sms.testing.simulator import post_inbound
from contract.testing import free_port
from hub.web import keys
from tests.browser.conftest import ContextPageFactory, PageFactory
from tests.conftest import AUTH, ClientFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "xss-corpus-password"
PUBLIC_URL = "http://127.0.0.1:8080"  # what Twilio signs; the test server's port differs
OUR_NUMBER = "+14155550100"
OUR_WHATSAPP = "whatsapp:+14155238886"
MAILBOX = "support@support.example.com"
TG_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TG_SECRET = "xss-secret_0123"

# Markers: an element these payloads would create carries an id starting with "xss", the class
# "xss-marker" or a data-xss attribute; script that runs sets window.__xss or opens a dialog.
CORPUS: tuple[str, ...] = (
    "<script>alert(1)</script>",
    "<script data-xss>window.__xss=1</script>",
    "<img src=x onerror=alert(1)>",
    '<img id=xss-img src=x onerror="window.__xss=1">',
    "<svg onload=alert(1)>",
    '<svg id=xss-svg onload="window.__xss=1"><b class=xss-marker>svg</b></svg>',
    "<svg><script data-xss>alert(1)</script></svg>",
    '<a id=xss-js href="javascript:alert(1)">x</a>',
    '<iframe id=xss-frame src="javascript:alert(1)"></iframe>',
    '"><img id=xss-break src=x onerror="window.__xss=1">',
    "'><b class=xss-marker onmouseover=alert(1)>quoted</b>",
    "{{constructor.constructor('window.__xss=1;alert(1)')()}}",
    '<details id=xss-details open ontoggle="window.__xss=1">d</details>',
    "<math><mtext><table><mglyph><style><img id=xss-mxss src=x onerror=alert(1)>",
    '<a id=xss-tab href="jav&#x09;ascript:alert(1)">click</a>',
    "<form id=xss-form action=javascript:alert(1)><button>go</button></form>",
    '<div id=xss-style style="background:url(javascript:alert(1))">styled</div>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<input id=xss-focus autofocus onfocus="window.__xss=1">',
    "javascript:alert(1)",
)

SHOWCASE = CORPUS[3]  # the payload the screenshots show

# Everything a payload could leave behind, checked on the final page and, through a
# MutationObserver installed before any page script, on every element ever inserted (an
# injected node the list redraws away a moment later still counts).
BAD_ELEMENT = r"""
(el) => {
  const tag = el.tagName.toLowerCase();
  return (
    /^xss/i.test(el.id || "") ||
    el.classList.contains("xss-marker") ||
    el.hasAttribute("data-xss") ||
    ["iframe", "object", "embed", "frame", "base"].includes(tag) ||
    (tag === "script" && el.closest("body") !== null) ||
    (tag === "meta" && el.hasAttribute("http-equiv") && el.closest("body") !== null) ||
    [...el.attributes].some(
      (a) => /^on/i.test(a.name) || /^\s*javascript:/i.test(a.value.replace(/[\t\n\r]/g, "")),
    ) ||
    (tag === "a" && el.href !== "" && !["http:", "https:", "mailto:"].includes(el.protocol))
  );
}
"""
FINDER = f"""
(root) => {{
  const bad = {BAD_ELEMENT};
  const all = root.nodeType === 1 ? [root, ...root.querySelectorAll("*")] : [];
  if (root.nodeType === 9) all.push(...root.querySelectorAll("*"));
  return all.filter(bad).map((el) => el.outerHTML.slice(0, 200));
}}
"""
WATCHER = f"""
(() => {{
  const find = {FINDER};
  const bad = {BAD_ELEMENT};
  window.__xssSeen = [];
  new MutationObserver((records) => {{
    for (const r of records) {{
      for (const node of r.addedNodes) window.__xssSeen.push(...find(node));
      if (r.type === "attributes" && bad(r.target)) window.__xssSeen.push(r.target.outerHTML);
    }}
  }}).observe(document, {{ childList: true, subtree: true, attributes: true }});
}})();
"""
SHOWS_TEXT = """
([selector, text, exact]) => [...document.querySelectorAll(selector)].some(
  (el) => exact ? el.textContent === text : el.textContent.includes(text))
"""


@dataclass
class Contact:
    """One customer who sent a payload; ``fields`` names where it was put."""

    channel: str
    payload: str
    lookup: dict[str, str]
    name: str
    fields: tuple[str, ...]
    customer_id: int = 0
    conversations: list[int] = field(default_factory=list)


@dataclass
class Floor:
    """The hub with every channel pointed at a local fake, an agent and a supervisor."""

    client: TestClient[Any, Any]
    base: str
    http: aiohttp.ClientSession
    telegram: FakeTelegram
    smtp_port: int
    agent_id: int
    contacts: list[Contact] = field(default_factory=list)
    sent: int = 0

    async def json(self, path: str) -> Any:
        resp = await self.client.get(path, headers=AUTH)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    def next_id(self) -> int:
        self.sent += 1
        return self.sent


@pytest.fixture
async def floor(hub_client: ClientFactory) -> AsyncIterator[Floor]:
    twilio, twilio_base = await start_fake_twilio(callback_delay=0.05)
    telegram, telegram_base = await start_fake_telegram(TG_TOKEN)
    sink: MailSink = await start_sink()
    smtp_port = free_port()
    try:
        client = await hub_client(
            offer_timeout_s=600,
            twilio_account_sid=DEMO_ACCOUNT_SID,
            twilio_auth_token=DEMO_AUTH_TOKEN,
            twilio_api_base=twilio_base,
            public_url=PUBLIC_URL,
            telegram_bot_token=TG_TOKEN,
            telegram_secret_token=TG_SECRET,
            telegram_api_base=telegram_base,
            smtp_enabled=True,
            smtp_port=smtp_port,
            relay_port=sink.port,
            email_mailboxes={MAILBOX: "support"},
        )
        hub = client.app[keys.HUB]
        await hub.users.create(username="sup", password=PASSWORD, role="supervisor")
        agent_id = await hub.users.create(username="ann", password=PASSWORD, display_name="Ann")
        # Away: the router offers her nothing; the test makes each offer itself.
        await hub.work.set_state(agent_id, "away", "Break")
        async with aiohttp.ClientSession() as http:
            yield Floor(
                client=client,
                base=str(client.make_url("/")).rstrip("/"),
                http=http,
                telegram=telegram,
                smtp_port=smtp_port,
                agent_id=agent_id,
            )
    finally:
        await sink.stop()
        await telegram.stop()
        await twilio.close()


# ---------------------------------------------------------------------------- senders
async def send_api(floor: Floor, i: int, payload: str, *, phone: str | None = None) -> int:
    """Text and name through ``/api/v1/inbound``; returns the conversation id."""
    resp = await floor.client.post(
        "/api/v1/inbound",
        json={
            "from": phone or f"+1303555{300 + i:04d}",
            "name": payload,
            "text": payload,
            "external_id": f"xss-api-{floor.next_id()}",
        },
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    conversation_id: int = (await resp.json())["conversation_id"]
    return conversation_id


async def send_sms(floor: Floor, i: int, payload: str) -> Contact:
    """The SMS body; the customer's name comes from an earlier (closed) API contact, so the
    SMS conversation also shows cross-channel history."""
    phone = f"+1202555{100 + i:04d}"
    earlier = await send_api(floor, i, payload, phone=phone)
    await floor.client.app[keys.HUB].conversations.close(
        earlier, agent_id=None, disposition="resolved"
    )
    status, body = await post_inbound(
        floor.http,
        floor.base,
        PUBLIC_URL,
        DEMO_AUTH_TOKEN,
        DEMO_ACCOUNT_SID,
        from_=phone,
        to=OUR_NUMBER,
        body=payload,
        message_sid=f"SM{floor.next_id():032x}",
    )
    assert status == 200, body
    return Contact("sms", payload, {"phone": phone}, payload, ("sms.body", "api.name", "api.text"))


async def send_whatsapp(floor: Floor, i: int, payload: str) -> Contact:
    phone = f"+1415555{200 + i:04d}"
    status, body = await post_inbound(
        floor.http,
        floor.base,
        PUBLIC_URL,
        DEMO_AUTH_TOKEN,
        DEMO_ACCOUNT_SID,
        from_=phone,
        to=OUR_WHATSAPP,
        body=payload,
        whatsapp=True,
        profile_name=payload,
        message_sid=f"SM{floor.next_id():032x}",
    )
    assert status == 200, body
    return Contact(
        "whatsapp", payload, {"phone": phone}, payload, ("whatsapp.body", "whatsapp.profile_name")
    )


def encoded_word(text: str) -> str:
    return "=?utf-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def mail(i: int, n: int, payload: str, subject: str, content: list[str], body: str) -> bytes:
    head = [
        f"From: {encoded_word(payload)} <c{i}@example.net>",
        f"To: {MAILBOX}",
        f"Subject: {subject}",
        f"Message-ID: <xss-{i}-{n}@example.net>",
        "Date: Mon, 23 Nov 2026 09:00:00 +0000",
        "MIME-Version: 1.0",
        *content,
    ]
    return ("\r\n".join(head) + "\r\n\r\n" + body + "\r\n").encode()


async def send_email(floor: Floor, i: int, payload: str) -> Contact:
    """Three mails from one customer: plain text, HTML only, and an attachment alone (no
    text, so the conversation list shows the subject)."""
    address = f"c{i}@example.net"
    plain = mail(i, 1, payload, payload, ["Content-Type: text/plain; charset=utf-8"], payload)
    # The payload as markup, and escaped once so its text must survive as text.
    markup = (
        "<html><head><title>t</title></head><body>"
        f"<p>{html.escape(payload)}</p><div>{payload}</div></body></html>"
    )
    rich = mail(i, 2, payload, "html", ["Content-Type: text/html; charset=utf-8"], markup)
    pdf = base64.encodebytes(b"%PDF-1.4\n% hostile name\n%%EOF\n").decode()
    boundary = f"xss-{i}"
    parts = (
        f"--{boundary}\r\nContent-Type: application/pdf\r\n"
        f"Content-Disposition: attachment; filename*=utf-8''{quote(payload, safe='')}\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--{boundary}--"
    )
    attached = mail(
        i,
        3,
        payload,
        payload,
        [f'Content-Type: multipart/mixed; boundary="{boundary}"'],
        parts,
    )
    for raw in (plain, rich, attached):
        answer = await send_mail("127.0.0.1", floor.smtp_port, raw, address, MAILBOX)
        assert answer.startswith("2."), answer
    return Contact(
        "email",
        payload,
        {"email": address},
        payload,
        ("email.text", "email.subject", "email.display_name", "email.html", "email.filename"),
    )


async def send_telegram(floor: Floor, i: int, payload: str) -> Contact:
    """A private text, then a document with a caption in a group the customer titled."""
    user = {
        "id": 700200000 + i,
        "first_name": payload,
        "last_name": payload,
        "username": payload,
        "language_code": "en",
    }
    uid = 900000 + floor.next_id()
    status = await post_update(floor.http, floor.base, TG_SECRET, text_update(uid, user, payload))
    assert status == 200
    file_id = f"BQACAgQAAxkBAAIXss{i:04d}"
    data = b"%PDF-1.4\n% hostile name\n%%EOF\n"
    floor.telegram.add_file(file_id, data, file_path=f"documents/file_{i}.pdf")
    sender = {k: user[k] for k in ("id", "first_name", "last_name", "username", "language_code")}
    group = {
        "update_id": 900000 + floor.next_id(),
        "message": {
            "message_id": 50 + i,
            "from": {**sender, "is_bot": False},
            "chat": {"id": -4_000_000 - i, "title": payload, "type": "group"},
            "date": int(time.time()),
            "document": {
                "file_name": payload,
                "mime_type": "application/pdf",
                "file_id": file_id,
                "file_unique_id": f"AgADxss{i:04d}",
                "file_size": len(data),
            },
            "caption": payload,
        },
    }
    assert await post_update(floor.http, floor.base, TG_SECRET, group) == 200
    return Contact(
        "telegram",
        payload,
        {"telegram_user_id": str(user["id"])},
        f"{payload} {payload}",
        (
            "telegram.text",
            "telegram.first_name",
            "telegram.last_name",
            "telegram.username",
            "telegram.document_file_name",
            "telegram.caption",
            "telegram.chat_title",
        ),
    )


async def send_api_contact(floor: Floor, i: int, payload: str) -> Contact:
    phone = f"+1303555{300 + i:04d}"
    await send_api(floor, i, payload, phone=phone)
    return Contact("api", payload, {"phone": phone}, payload, ("api.text", "api.name"))


SENDERS: dict[str, Callable[[Floor, int, str], Awaitable[Contact]]] = {
    "sms": send_sms,
    "whatsapp": send_whatsapp,
    "email": send_email,
    "telegram": send_telegram,
    "api": send_api_contact,
}


# ---------------------------------------------------------------------------- pages
@dataclass
class Watched:
    """A page with its dialogs and main-frame navigations recorded."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    navigations: list[str] = field(default_factory=list)


async def open_watched(new_page_with: ContextPageFactory, base: str, username: str) -> Watched:
    page = await new_page_with(bypass_csp=True)
    watched = Watched(page)

    async def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on(
        "framenavigated",
        lambda frame: watched.navigations.append(frame.url) if frame == page.main_frame else None,
    )
    await page.add_init_script(WATCHER)
    await page.goto(f"{base}/login")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(r"/(console|supervisor)$"))
    await expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "open")
    watched.navigations.clear()
    return watched


async def assert_inert(watched: Watched, *, settle_ms: int = 300) -> None:
    """No dialog, no navigation, no script ran, no payload element was ever inserted."""
    page = watched.page
    await page.wait_for_timeout(settle_ms)  # let any queued onerror/onload handler run
    assert await page.evaluate("window.__xssSeen") == [], "payload elements were inserted"
    assert watched.dialogs == [], watched.dialogs
    assert watched.navigations == [], watched.navigations
    assert await page.evaluate("window.__xss") is None
    assert await page.evaluate(f"({FINDER})(document)") == []
    assert (
        await page.evaluate("document.querySelector('[id^=xss], .xss-marker, script[data-xss]')")
        is None
    )


async def shows(page: Page, selector: str, text: str, *, exact: bool = True) -> None:
    """Wait until an element matching ``selector`` carries ``text`` as its text."""
    try:
        await page.wait_for_function(SHOWS_TEXT, arg=[selector, text, exact])
    except PlaywrightTimeoutError:
        found = await page.eval_on_selector_all(selector, "els => els.map(e => e.textContent)")
        pytest.fail(f"{text!r} is not the text of any {selector}; they hold {found!r}")


async def resolve(floor: Floor, contact: Contact) -> dict[int, list[dict[str, Any]]]:
    """The customer's open conversations and their stored messages; checks the hostile
    fields were stored as sent (nothing here is expected to clean them)."""
    query = urlencode(contact.lookup)
    found = (await floor.json(f"/api/v1/customers?{query}"))["items"]
    assert len(found) == 1, (contact.lookup, found)
    customer = found[0]
    if customer["display_name"] != contact.name:
        # A mail's display name loses the quotes around it (RFC 5322 quoted-string): the
        # markup stays, and the console must show what was stored.
        assert contact.channel == "email", (contact.name, customer["display_name"])
        assert customer["display_name"] == contact.name.strip("\"'"), customer["display_name"]
        contact.name = customer["display_name"]
    contact.customer_id = customer["id"]
    listing = await floor.json(f"/api/v1/customers/{customer['id']}/conversations")
    messages: dict[int, list[dict[str, Any]]] = {}
    for conv in listing["items"]:
        if conv["state"] in ("closed", "abandoned"):
            continue
        page = await floor.json(f"/api/v1/conversations/{conv['id']}/messages?limit=50")
        messages[conv["id"]] = page["items"]
    contact.conversations = sorted(messages)
    return messages


async def wait_for_attachments(floor: Floor, contact: Contact) -> None:
    """Telegram files are fetched after the webhook answers: wait until they are stored."""
    async with asyncio.timeout(10):
        while True:
            convs = await resolve(floor, contact)
            atts = [a for items in convs.values() for m in items for a in m["attachments"]]
            if atts and all(a["url"] for a in atts):
                return
            await asyncio.sleep(0.1)


# ---------------------------------------------------------------------------- the test
@pytest.mark.parametrize("channel", list(SENDERS))
async def test_hostile_markup_inbound_renders_inert_in_console_and_dashboard(
    channel: str, floor: Floor, new_page_with: ContextPageFactory, artifacts: Path
) -> None:
    hub = floor.client.app[keys.HUB]
    supervisor = await open_watched(new_page_with, floor.base, "sup")
    console = await open_watched(new_page_with, floor.base, "ann")
    # The second wall stays up in production: a script-src without 'unsafe-inline'.
    for watched, path in ((console, "/console"), (supervisor, "/supervisor")):
        resp = await watched.page.request.get(floor.base + path, max_redirects=0)
        assert resp.status == 200, path
        csp = resp.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp, (path, csp)
        assert "script-src" not in csp or "unsafe-inline" not in csp.split("script-src")[1]

    send = SENDERS[channel]
    for i, payload in enumerate(CORPUS):
        floor.contacts.append(await send(floor, i, payload))

    stored: dict[int, list[dict[str, Any]]] = {}
    owner: dict[int, Contact] = {}
    for contact in floor.contacts:
        if channel == "telegram":
            await wait_for_attachments(floor, contact)
        convs = await resolve(floor, contact)
        # Every hostile field was kept as sent (so the browser really gets the markup).
        texts = [m["text"] for items in convs.values() for m in items]
        names = [a["filename"] for items in convs.values() for m in items for a in m["attachments"]]
        assert any(contact.payload in text for text in texts), (contact.payload, texts)
        if {"email.filename", "telegram.document_file_name"} & set(contact.fields):
            assert names, contact
            assert all(n for n in names)
        for conv_id, items in convs.items():
            stored[conv_id] = items
            owner[conv_id] = contact

    # A dashboard opened now (its snapshot) lists every waiting conversation under the hostile
    # name, and the monitor shows the hostile texts; the one open all along learns the names
    # from the offers below.
    snapshot = await open_watched(new_page_with, floor.base, "sup")
    sup = snapshot.page
    await expect(sup.get_by_test_id("conversation-row")).to_have_count(len(stored))
    await assert_inert(snapshot, settle_ms=0)
    for conv_id in stored:
        row = sup.locator(f'[data-testid="conversation-row"][data-id="{conv_id}"]')
        await expect(row.locator(".cell-customer")).to_have_text(owner[conv_id].name)
    await sup.screenshot(path=artifacts / f"xss-{channel}-supervisor.png", full_page=True)
    for conv_id, items in stored.items():
        row = sup.locator(f'[data-testid="conversation-row"][data-id="{conv_id}"]')
        await row.get_by_test_id("monitor-button").click()
        await expect(sup.get_by_test_id("monitor")).to_be_visible()
        await expect(sup.get_by_test_id("monitor-sub")).to_contain_text(owner[conv_id].name)
        for m in items:
            if m["text"]:
                await shows(sup, '[data-testid="monitor-item"] .mon-text', m["text"])
        if owner[conv_id].payload == SHOWCASE and any(m["text"] for m in items):
            await sup.screenshot(path=artifacts / f"xss-{channel}-monitor.png")
        await sup.get_by_test_id("monitor-close").click()
    await assert_inert(snapshot)

    # The agent is offered each conversation, accepts it, and reads the customer's history.
    page = console.page
    for conv_id, items in stored.items():
        contact = owner[conv_id]
        assert await hub.work.create_offer(conv_id, floor.agent_id) is not None
        await expect(page.get_by_test_id("offer-customer")).to_have_text(contact.name)
        preview = next((m["text"] for m in reversed(items) if m["direction"] == "in"), "")
        if preview:
            await expect(page.get_by_test_id("offer-preview")).to_contain_text(preview[:40])
        await shows(page, '[data-testid="offer-item"] .offer-item-name', contact.name)
        await page.get_by_test_id("offer-accept").click()
        await expect(page.get_by_test_id("offer")).to_have_count(0)
        await page.wait_for_function(
            "id => window.hubConsole.app.current && window.hubConsole.app.current.id === id",
            arg=conv_id,
        )
        await expect(page.get_by_test_id("conversation-title")).to_have_text(contact.name)
        await expect(page.get_by_test_id("profile-name")).to_have_value(contact.name)
        await assert_inert(console, settle_ms=0)
        # The whole history of the customer: this conversation and the others.
        for other in contact.conversations:
            for m in stored[other]:
                if m["text"]:
                    await shows(page, '[data-testid="message-text"]', m["text"])
                for att in m["attachments"]:
                    await shows(page, '[data-testid="attachment"]', att["filename"], exact=False)
        await expect(page.get_by_test_id("customer-conversation")).to_have_count(
            len(
                (await floor.json(f"/api/v1/customers/{contact.customer_id}/conversations"))[
                    "items"
                ]
            )
        )
        item = page.locator(f'[data-testid="conversation-item"][data-conversation-id="{conv_id}"]')
        await expect(item.locator(".conv-item-name")).to_have_text(contact.name)
        if "email.subject" in contact.fields and not preview:
            await expect(item.locator(".conv-item-preview")).to_have_text(contact.payload)
        if contact.payload == SHOWCASE:
            await page.screenshot(path=artifacts / f"xss-{channel}-console.png")

    # Open the first conversation again from the list: the rendering from a fresh `open`.
    first = next(iter(stored))
    await page.locator(f'[data-testid="conversation-item"][data-conversation-id="{first}"]').click()
    await expect(page.get_by_test_id("conversation-title")).to_have_text(owner[first].name)
    await page.screenshot(path=artifacts / f"xss-{channel}-console-first.png")

    live = supervisor.page
    await expect(live.get_by_test_id("conversation-row")).to_have_count(len(stored))
    for conv_id, contact in owner.items():
        row = live.locator(f'[data-testid="conversation-row"][data-id="{conv_id}"]')
        await expect(row.locator(".cell-customer")).to_have_text(contact.name)
        await expect(row.locator(".cell-agent")).to_have_text("Ann")
    await live.screenshot(path=artifacts / f"xss-{channel}-supervisor-live.png", full_page=True)

    # None of it came alive on any page, from the first frame to the last.
    for watched in (console, supervisor, snapshot):
        await assert_inert(watched)


HOSTILE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)" width="40" height="40">'
    '<script>window.__xss=1;alert(2)</script><rect width="40" height="40" fill="red"/></svg>'
)
HOSTILE_HTML = "<html><body><script>alert(3)</script><img src=x onerror=alert(4)></body></html>"


async def test_hostile_svg_and_html_attachments_never_run_when_shown_or_opened(
    floor: Floor, new_page: PageFactory, artifacts: Path
) -> None:
    # With the CSP on, as agents get it: the attachment's own page must be inert too.
    boundary = "xss-files"
    parts = [f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nTwo files.\r\n"]
    for ctype, name, body in (
        ("image/svg+xml", "chart.svg", HOSTILE_SVG),
        ("text/html", "invoice.html", HOSTILE_HTML),
    ):
        parts.append(
            f"--{boundary}\r\nContent-Type: {ctype}\r\n"
            f'Content-Disposition: attachment; filename="{name}"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
            f"{base64.encodebytes(body.encode()).decode()}\r\n"
        )
    parts.append(f"--{boundary}--")
    content = [f'Content-Type: multipart/mixed; boundary="{boundary}"']
    raw = mail(1, 1, "Dana", "files", content, "".join(parts))
    answer = await send_mail("127.0.0.1", floor.smtp_port, raw, "c1@example.net", MAILBOX)
    assert answer.startswith("2."), answer
    contact = Contact("email", "Dana", {"email": "c1@example.net"}, "Dana", ())
    convs = await resolve(floor, contact)
    ((conv_id, items),) = convs.items()
    atts = {a["filename"]: a for m in items for a in m["attachments"]}
    assert set(atts) == {"chart.svg", "invoice.html"}, atts

    page = await new_page()
    dialogs: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.context.on("dialog", on_dialog)
    await page.goto(f"{floor.base}/login")
    await page.get_by_test_id("login-username").fill("ann")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(r"/console$"))
    assert await floor.client.app[keys.HUB].work.create_offer(conv_id, floor.agent_id)
    await page.get_by_test_id("offer-accept").click()
    # The SVG is shown as an image (an <img> never runs a document's scripts).
    image = page.locator('[data-testid="attachment"] img')
    await expect(image).to_have_count(1)
    await page.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=attachment] img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    await page.screenshot(path=artifacts / "xss-attachments-console.png")

    # Opened on its own (the link's new tab), the SVG is a sandboxed document: nothing runs.
    async with page.context.expect_page() as opened:
        await page.locator(f'[data-testid="attachment"][href="{atts["chart.svg"]["url"]}"]').click()
    tab = await opened.value
    await tab.wait_for_load_state()
    assert tab.url == f"{floor.base}{atts['chart.svg']['url']}"
    await tab.wait_for_timeout(300)
    assert await tab.evaluate("window.__xss") is None
    # The HTML file is never shown in the browser: a download, sandboxed even if forced.
    resp = await page.request.get(f"{floor.base}{atts['invoice.html']['url']}")
    assert resp.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in resp.headers["content-security-policy"]
    assert dialogs == []
    assert await page.evaluate("window.__xss") is None
