"""The agent console end to end in Chromium: two agents, a routed offer, cross-channel
history, a reply that reaches the (fake) provider, a transfer, and a cut websocket whose
missed events appear exactly once after the console resumes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, WebSocketRoute, expect

from agent_console.pages import STATIC
from channels.twilio_sms.testing.fake_api import (
    DEMO_ACCOUNT_SID,
    DEMO_AUTH_TOKEN,
    FakeTwilio,
    start_fake_twilio,
)
from channels.twilio_sms.testing.simulator import post_inbound
from hub.web import keys
from tests.browser.conftest import PageFactory
from tests.conftest import AUTH, ClientFactory

pytestmark = pytest.mark.browser

PASSWORD = "console-pass-123"
CUSTOMER_PHONE = "+12025550143"
OUR_NUMBER = "+14155550100"
PUBLIC_URL = "http://127.0.0.1:8080"  # what Twilio signs; the test server's port differs


@dataclass
class Stage:
    """The hub under test, its fake Twilio and an HTTP session to post webhooks with."""

    client: TestClient[Any, Any]
    fake: FakeTwilio
    http: aiohttp.ClientSession
    base: str
    agents: dict[str, int] = field(default_factory=dict)
    sms_count: int = 0

    async def sms_from_customer(self, text: str) -> None:
        """A real-shaped, signed Twilio inbound SMS from the customer."""
        self.sms_count += 1
        status, body = await post_inbound(
            self.http,
            self.base,
            PUBLIC_URL,
            DEMO_AUTH_TOKEN,
            DEMO_ACCOUNT_SID,
            from_=CUSTOMER_PHONE,
            to=OUR_NUMBER,
            body=text,
            message_sid=f"SM{self.sms_count:032d}",
        )
        assert status == 200, body

    async def provider_received(self, text: str) -> dict[str, Any]:
        """The message the fake Twilio API was asked to send with this body (within 5 s)."""
        async with asyncio.timeout(5):
            while True:
                for record in self.fake.sent:
                    if record.get("Body") == text:
                        return record
                await asyncio.sleep(0.05)


@pytest.fixture
async def stage(hub_client: ClientFactory) -> AsyncIterator[Stage]:
    """A hub with Twilio SMS pointed at a local fake, agents ann (billing) and ben."""
    fake, fake_base = await start_fake_twilio(callback_delay=0.05)
    client = await hub_client(
        offer_timeout_s=20,
        twilio_account_sid=DEMO_ACCOUNT_SID,
        twilio_auth_token=DEMO_AUTH_TOKEN,
        twilio_api_base=fake_base,
        public_url=PUBLIC_URL,
    )
    base = str(client.make_url("/")).rstrip("/")
    fake.callback_base = base  # status callbacks reach the test server, signed for PUBLIC_URL
    async with aiohttp.ClientSession() as http:
        stage = Stage(client=client, fake=fake, http=http, base=base)
        # Only billing-skilled agents may take "support" work, so the offer has one right target.
        resp = await client.put(
            "/api/v1/queues/support", json={"steps": [{"expression": "billing >= 3"}]}, headers=AUTH
        )
        assert resp.status == 200, await resp.text()
        for username, name, skills in (
            ("ann", "Ann Archer", [{"name": "billing", "proficiency": 5}]),
            ("ben", "Ben Brooks", []),
        ):
            body = {"username": username, "password": PASSWORD, "display_name": name}
            resp = await client.post(
                "/api/v1/agents", json={**body, "skills": skills}, headers=AUTH
            )
            assert resp.status == 201, await resp.text()
            stage.agents[username] = (await resp.json())["id"]
        yield stage
    await fake.close()


async def login(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(r"/console$"))
    await expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "open")


async def go_available(page: Page) -> None:
    await page.get_by_test_id("state-select").select_option("available|")
    await expect(page.get_by_test_id("state-dot")).to_have_attribute("data-state", "available")
    # Keyboard shortcuts are ignored while a form field has the focus.
    await page.evaluate("document.activeElement && document.activeElement.blur()")


class Cable:
    """Routes a page's console websocket through the test so it can be cut and restored."""

    def __init__(self) -> None:
        self.up = True
        self.live: list[tuple[WebSocketRoute, WebSocketRoute]] = []

    async def attach(self, page: Page) -> None:
        await page.route_web_socket(re.compile(r"/ws/agent$"), self._route)

    async def _route(self, ws: WebSocketRoute) -> None:
        if not self.up:
            await ws.close(code=1006)  # like a refused connection: the page must retry
            return
        self.live.append((ws, ws.connect_to_server()))

    async def cut(self) -> None:
        self.up = False
        for page_side, server_side in self.live:
            await server_side.close()
            await page_side.close(code=1006)
        self.live.clear()

    def restore(self) -> None:
        self.up = True


async def shot(page: Page, artifacts: Path, name: str) -> None:
    """A screenshot for people to look at (animations finished, so nothing is half-faded)."""
    await page.screenshot(path=artifacts / name, animations="disabled")


def timeline_item(page: Page, text: str) -> Any:
    return page.get_by_test_id("timeline-item").filter(
        has=page.get_by_test_id("message-text").get_by_text(text, exact=True)
    )


async def test_offer_accept_history_reply_transfer_and_resume_without_loss(
    stage: Stage, new_page: PageFactory, artifacts: Path
) -> None:
    hub = stage.client.app[keys.HUB]
    # Earlier contact on another channel (the API), closed before anyone is available.
    resp = await stage.client.post(
        "/api/v1/inbound",
        json={
            "from": CUSTOMER_PHONE,
            "name": "Carla Díaz",
            "text": "Earlier question through the app",
            "external_id": "app-1",
        },
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    earlier = await resp.json()
    await hub.conversations.close(earlier["conversation_id"], agent_id=None, disposition="resolved")

    ann, ben = await new_page(), await new_page()
    cable = Cable()
    await cable.attach(ben)
    await login(ann, stage.base, "ann")
    await login(ben, stage.base, "ben")
    await go_available(ann)
    await go_available(ben)

    # An inbound SMS rings at the agent who has the skill, and only there.
    await stage.sms_from_customer("I was charged <b>twice</b> for March")
    offer = ann.get_by_test_id("offer")
    await expect(offer).to_be_visible()
    await expect(ann.get_by_test_id("offer-customer")).to_have_text("Carla Díaz")
    await expect(ann.get_by_test_id("offer-preview")).to_have_text(
        "I was charged <b>twice</b> for March"
    )
    await expect(ann.get_by_test_id("offer-countdown")).to_have_text(re.compile(r"^\d+ s$"))
    await expect(ben.get_by_test_id("offer")).to_have_count(0)
    await shot(ann, artifacts, "console-01-offer-ringing.png")

    # Accept with the keyboard; the conversation opens with the customer's whole history.
    await ann.keyboard.press("a")
    await expect(offer).to_have_count(0)
    await expect(ann.get_by_test_id("conversation-title")).to_have_text("Carla Díaz")
    earlier_item = timeline_item(ann, "Earlier question through the app")
    await expect(earlier_item).to_have_attribute("data-channel", "api")
    inbound_item = timeline_item(ann, "I was charged <b>twice</b> for March")
    await expect(inbound_item).to_have_attribute("data-channel", "sms")
    # Message content is text, never markup.
    await expect(ann.get_by_test_id("timeline").locator("b")).to_have_count(0)
    conversation = ann.get_by_test_id("conversation-item")
    await expect(conversation).to_have_count(1)
    conversation_id = await conversation.get_attribute("data-conversation-id")
    assert conversation_id is not None
    await shot(ann, artifacts, "console-02-accepted-history.png")

    # Reply with Ctrl+Enter: it reaches Twilio (the fake) and the ticks follow its callbacks.
    reply = "Sorry about that, Carla. I have refunded the second charge."
    await ann.get_by_test_id("reply-input").fill(reply)
    await ann.get_by_test_id("reply-input").press("Control+Enter")
    sent = await stage.provider_received(reply)
    assert sent["To"] == CUSTOMER_PHONE
    assert sent["From"] == OUR_NUMBER
    reply_item = timeline_item(ann, reply)
    await expect(reply_item).to_have_attribute("data-direction", "out")
    await expect(reply_item.get_by_test_id("delivery-status")).to_have_attribute(
        "data-status", "delivered"
    )
    await expect(ann.get_by_test_id("reply-input")).to_have_value("")
    await shot(ann, artifacts, "console-03-replied.png")

    # Transfer to Ben with a note: it leaves Ann's list and lands in Ben's.
    await ann.get_by_test_id("transfer-button").click()
    await ann.get_by_test_id("transfer-agent").select_option(str(stage.agents["ben"]))
    await ann.get_by_test_id("transfer-note").fill("Refund done; please confirm the new invoice.")
    await shot(ann, artifacts, "console-04-transfer-dialog.png")
    await ann.get_by_test_id("transfer-confirm").click()
    await expect(ann.get_by_test_id("transfer-dialog")).to_be_hidden()
    await expect(ann.get_by_test_id("conversation-item")).to_have_count(0)
    await expect(ann.get_by_test_id("readonly-banner")).to_be_visible()
    ben_item = ben.locator(
        f'[data-testid="conversation-item"][data-conversation-id="{conversation_id}"]'
    )
    await expect(ben_item).to_be_visible()
    await ben_item.click()
    await expect(ben.get_by_test_id("conversation-title")).to_have_text("Carla Díaz")
    await expect(
        ben.get_by_test_id("timeline-item").filter(
            has_text="Refund done; please confirm the new invoice."
        )
    ).to_be_visible()
    await expect(timeline_item(ben, reply)).to_have_count(1)
    await shot(ann, artifacts, "console-05-ann-after-transfer.png")
    await shot(ben, artifacts, "console-06-ben-after-transfer.png")

    # Cut Ben's websocket; the customer writes twice meanwhile; restore it.
    await cable.cut()
    await expect(ben.get_by_test_id("conn-status")).to_have_attribute("data-state", "reconnecting")
    missed = ["Are you still there?", "Hello? I need the invoice today."]
    for text in missed:
        await stage.sms_from_customer(text)
    await expect(timeline_item(ann, missed[0])).to_have_count(0)  # Ann no longer follows it
    await expect(timeline_item(ben, missed[0])).to_have_count(0)
    await shot(ben, artifacts, "console-07-ben-reconnecting.png")
    cable.restore()
    await expect(ben.get_by_test_id("conn-status")).to_have_attribute(
        "data-state", "open", timeout=15000
    )
    for text in missed:
        await expect(timeline_item(ben, text)).to_have_count(1)
    # Each stored event was processed once: seqs on the timeline are unique, and the list's
    # unread count comes from the snapshot without the replay adding to it.
    seqs = await ben.eval_on_selector_all(
        '[data-testid="timeline-item"][data-seq]:not([data-seq=""])',
        "items => items.map(i => i.dataset.seq)",
    )
    assert len(seqs) == len(set(seqs)), seqs
    await expect(ben_item.get_by_test_id("unread-count")).to_have_text("2")
    stats = await ben.evaluate("window.hubConsole.client.stats")
    assert stats["connects"] >= 2, stats
    for text in missed:
        await expect(timeline_item(ben, text)).to_have_count(1)
    await shot(ben, artifacts, "console-08-ben-resumed.png")

    # An internal note that @mentions Ann (picked from the completion menu) notifies her.
    await ben.get_by_test_id("note-toggle").click()
    await ben.get_by_test_id("reply-input").press_sequentially("@an")
    await expect(ben.get_by_test_id("mention-option")).to_have_attribute("data-username", "ann")
    await ben.get_by_test_id("reply-input").press("Enter")
    await ben.get_by_test_id("reply-input").press_sequentially("can you resend the invoice?")
    await expect(ben.get_by_test_id("reply-input")).to_have_value(
        "@ann can you resend the invoice?"
    )
    await ben.get_by_test_id("reply-input").press("Control+Enter")
    note = ben.get_by_test_id("timeline-item").filter(has_text="@ann can you resend the invoice?")
    await expect(note).to_have_attribute("data-direction", "note")
    await expect(ann.get_by_test_id("toast").filter(has_text="Ben")).to_be_visible()
    await shot(ann, artifacts, "console-09-ann-mentioned.png")

    # Another customer rings at Ann; R rejects the offer and the ring stops.
    status, body = await post_inbound(
        stage.http,
        stage.base,
        PUBLIC_URL,
        DEMO_AUTH_TOKEN,
        DEMO_ACCOUNT_SID,
        from_="+12025550199",
        to=OUR_NUMBER,
        body="Second customer here",
    )
    assert status == 200, body
    await expect(ann.get_by_test_id("offer-preview")).to_have_text("Second customer here")
    await ann.evaluate("document.activeElement && document.activeElement.blur()")
    await ann.keyboard.press("r")
    await expect(ann.get_by_test_id("offer")).to_have_count(0)
    await expect(ann.get_by_test_id("offer-item")).to_have_count(0)
    assert not await ann.evaluate("window.hubConsole.app.offers.size")


async def test_login_rejects_a_wrong_password_and_remembers_the_language(
    hub_client: ClientFactory, new_page: PageFactory, artifacts: Path
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    await hub.users.create(username="cai", password=PASSWORD, display_name="Cai Lun")
    base = str(client.make_url("/")).rstrip("/")
    page = await new_page()
    await page.goto(f"{base}/console")
    await page.wait_for_url(re.compile(r"/login$"))  # no session: the console sends us here
    await page.get_by_test_id("lang-select").select_option("zh-CN")
    await expect(page.get_by_test_id("login-submit")).to_have_text("登录")
    await page.get_by_test_id("login-username").fill("cai")
    await page.get_by_test_id("login-password").fill("not-the-password")
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误。")
    await shot(page, artifacts, "console-10-login-error-zh.png")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(r"/console$"))
    await expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "open")
    await expect(page.get_by_test_id("convs-title")).to_have_text("我的会话")
    await expect(page.get_by_test_id("user-name")).to_have_text("Cai Lun")
    await shot(page, artifacts, "console-11-empty-zh.png")
    await page.get_by_test_id("logout").click()
    await page.wait_for_url(re.compile(r"/login$"))
    await page.goto(f"{base}/console")
    await page.wait_for_url(re.compile(r"/login$"))


PROTOCOL_CLIENT_CHECK = """
async () => {
  const { ProtocolClient } = await import("/static/ws.js");
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url; this.readyState = 0; this.sent = []; sockets.push(this);
      setTimeout(() => { this.readyState = 1; this.onopen && this.onopen(); }, 0);
    }
    send(text) { this.sent.push(JSON.parse(text)); }
    close() { this.readyState = 3; }
    deliver(frame) { this.onmessage && this.onmessage({ data: JSON.stringify(frame) }); }
    drop() { this.readyState = 3; this.onclose && this.onclose({}); }
  }
  const settle = (ms = 30) => new Promise((r) => setTimeout(r, ms));
  const ev = (seq) => ({ v: 1, type: "event", seq, data: { seq, type: "message.received" } });
  const welcome = (head) => ({ v: 1, type: "welcome", data: { head, user: { id: 1 } } });
  const cmds = (s) => s.sent.filter((f) => f.type === "cmd");
  const client = new ProtocolClient("ws://hub/ws/agent", {
    WebSocketImpl: FakeSocket, baseDelay: 10, maxDelay: 20,
  });
  const seen = [];
  client.addEventListener("event", (e) => seen.push([e.detail.seq, e.detail.replayed]));
  client.start();
  await settle();
  const first = sockets[0];
  first.deliver(welcome(5));
  first.deliver(ev(6)); first.deliver(ev(6)); first.deliver(ev(7));
  const opened = client.send("open", { conversation_id: 3 });
  first.deliver({ v: 1, type: "ack", data: { client_msg_id: cmds(first)[0].data.client_msg_id,
    result: { conversation: { id: 3 } } } });
  const refused = client.send("close", { conversation_id: 3 })
    .catch((err) => [err.code, err.detail]);
  first.deliver({ v: 1, type: "error", data: { client_msg_id: cmds(first)[1].data.client_msg_id,
    code: "conflict", detail: "not yours" } });
  const inFlight = client.send("reply", { conversation_id: 3, text: "hi" });
  const inFlightId = cmds(first)[2].data.client_msg_id;
  first.drop();
  await settle(80);
  const second = sockets[1];
  const resumeFrom = second.sent[0].data.resume_from;
  const beforeWelcome = cmds(second).length;
  second.deliver(welcome(9));
  const resent = cmds(second).map((f) => f.data.client_msg_id);
  second.deliver(ev(7)); second.deliver(ev(8)); second.deliver(ev(9)); second.deliver(ev(10));
  second.deliver({ v: 1, type: "ack", data: { client_msg_id: inFlightId,
    result: { message: { id: 1 } } } });
  return {
    firstHello: first.sent[0], seen, opened: await opened, refused: await refused,
    resumeFrom, beforeWelcome, resent, inFlightId, reply: await inFlight,
    lastSeq: client.lastSeq, stats: client.stats,
  };
}
"""


async def test_protocol_client_dedupes_by_seq_resumes_and_answers_commands(
    aiohttp_server: Any, new_page: PageFactory
) -> None:
    # Only the static files are needed: the socket is a fake inside the page.
    app = web.Application()
    app.router.add_static("/static", STATIC)
    server = await aiohttp_server(app)
    page = await new_page()
    await page.goto(str(server.make_url("/static/login.html")))
    result = await page.evaluate(PROTOCOL_CLIENT_CHECK)
    assert result["firstHello"] == {"v": 1, "type": "hello", "data": {"resume_from": None}}
    # Seq 6 came twice and 7 again after the resume: each was processed once, in order;
    # 7-9 were at or below the new welcome's head (replayed), 10 was live.
    assert result["seen"] == [[6, False], [7, False], [8, True], [9, True], [10, False]]
    assert result["stats"]["duplicatesDropped"] == 2
    assert result["lastSeq"] == 10
    assert result["resumeFrom"] == 7
    assert result["opened"] == {"conversation": {"id": 3}}
    assert result["refused"] == ["conflict", "not yours"]
    # The command in flight when the socket dropped is re-sent, same id, only after welcome.
    assert result["beforeWelcome"] == 0
    assert result["resent"] == [result["inFlightId"]]
    assert result["reply"] == {"message": {"id": 1}}
