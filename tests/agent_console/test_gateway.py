"""The console websocket protocol: auth, welcome/snapshot, commands, resume with no loss."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from hub.web import keys
from tests.conftest import AUTH, ClientFactory

PASSWORD = "correct horse battery"
_ids = itertools.count(1)


async def make_agent(client: TestClient[Any, Any], username: str, role: str = "agent") -> int:
    hub = client.app[keys.HUB]
    agent_id: int = await hub.users.create(username=username, password=PASSWORD, role=role)
    return agent_id


async def login(client: TestClient[Any, Any], username: str) -> aiohttp.CookieJar:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        resp = await session.post(
            client.make_url("/login"), json={"username": username, "password": PASSWORD}
        )
        assert resp.status == 200, await resp.text()
        assert "httponly" in resp.headers["Set-Cookie"].lower()
        assert "samesite=lax" in resp.headers["Set-Cookie"].lower()
    return jar


class Console:
    """A minimal protocol client for tests."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: aiohttp.ClientSession) -> None:
        self.ws = ws
        self.session = session
        self.events: list[dict[str, Any]] = []
        # Events read while ``cmd`` waited for its answer, for ``until_event`` to look at.
        self.skipped: list[dict[str, Any]] = []
        self.last_seq: int | None = None

    @classmethod
    async def connect(
        cls,
        client: TestClient[Any, Any],
        jar: aiohttp.CookieJar,
        resume_from: int | None = None,
        path: str = "/ws/agent",
    ) -> tuple[Console, dict[str, Any], dict[str, Any]]:
        session = aiohttp.ClientSession(cookie_jar=jar)
        ws = await session.ws_connect(client.make_url(path))
        await ws.send_json({"v": 1, "type": "hello", "data": {"resume_from": resume_from}})
        welcome = await ws.receive_json(timeout=5)
        snapshot = await ws.receive_json(timeout=5)
        assert welcome["type"] == "welcome"
        assert snapshot["type"] == "snapshot"
        console = cls(ws, session)
        console.last_seq = resume_from if resume_from is not None else welcome["data"]["head"]
        return console, welcome, snapshot

    async def next_frame(self) -> dict[str, Any]:
        f: dict[str, Any] = await self.ws.receive_json(timeout=5)
        if f["type"] == "event":
            assert self.last_seq is None or f["seq"] > self.last_seq, "duplicate or out of order"
            self.last_seq = f["seq"]
            self.events.append(f["data"])
        return f

    async def until_event(self, type_: str) -> dict[str, Any]:
        """The next event of this type; one that came while a command waited for its ack
        (the router can offer before the state change is acknowledged) counts too."""
        for i, data in enumerate(self.skipped):
            if data["type"] == type_:
                del self.skipped[: i + 1]
                return data
        self.skipped.clear()
        while True:
            f = await self.next_frame()
            if f["type"] == "event" and f["data"]["type"] == type_:
                found: dict[str, Any] = f["data"]
                return found

    async def cmd(self, name: str, **args: Any) -> dict[str, Any]:
        cmid = f"c{next(_ids)}"
        await self.ws.send_json(
            {"v": 1, "type": "cmd", "data": {"client_msg_id": cmid, "name": name, "args": args}}
        )
        while True:
            f = await self.next_frame()
            if f["type"] in ("ack", "error") and f["data"]["client_msg_id"] == cmid:
                return f
            if f["type"] == "event":
                self.skipped.append(f["data"])

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


async def inbound(client: TestClient[Any, Any], frm: str, text: str, ext: str) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/inbound", json={"from": frm, "text": text, "external_id": ext}, headers=AUTH
    )
    assert resp.status == 201
    data: dict[str, Any] = await resp.json()
    return data


async def test_websocket_requires_a_session_and_same_origin(hub_client: ClientFactory) -> None:
    client = await hub_client()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(client.make_url("/ws/agent"))
        assert err.value.status == 401
    await make_agent(client, "ann")
    jar = await login(client, "ann")
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(
                client.make_url("/ws/agent"), headers={"Origin": "https://evil.example"}
            )
        assert err.value.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(client.make_url("/ws/supervisor"))
        assert err.value.status == 403
    bad = await client.post("/login", json={"username": "ann", "password": "nope"})
    assert bad.status == 401


async def test_offer_accept_reply_and_resume_without_loss_or_duplicates(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    ann = await make_agent(client, "ann")
    jar = await login(client, "ann")
    console, welcome, snapshot = await Console.connect(client, jar)
    assert welcome["data"]["protocol"] == 1
    assert welcome["data"]["user"]["username"] == "ann"
    assert welcome["data"]["user"]["id"] == ann
    assert snapshot["data"]["offers"] == []

    ack = await console.cmd("set_state", state="available")
    assert ack["type"] == "ack"
    ids = await inbound(client, "+12025550111", "my card was charged twice", "w1")
    offer = await console.until_event("offer.created")  # the router offers it to ann
    offer_id = offer["payload"]["offer_id"]
    assert offer["conversation_id"] == ids["conversation_id"]
    assert offer["payload"]["preview"] == "my card was charged twice"

    ack = await console.cmd("accept", offer_id=offer_id)
    assert ack["data"]["result"] == {"conversation_id": ids["conversation_id"]}
    again = await console.cmd("accept", offer_id=offer_id)  # retry with a new id: refused
    assert again["type"] == "error"
    assert again["data"]["code"] == "conflict"

    opened = await console.cmd("open", conversation_id=ids["conversation_id"])
    history = opened["data"]["result"]["history"]["items"]
    assert [m["text"] for m in history] == ["my card was charged twice"]

    reply = await console.cmd("reply", conversation_id=ids["conversation_id"], text="Looking now")
    assert reply["data"]["result"]["message"]["status"] == "pending"
    # Away, so the other customer's contact below is not offered to ann.
    assert (await console.cmd("set_state", state="away", reason="break"))["type"] == "ack"

    # Drop the connection; things happen while the agent is away.
    seen_before = console.last_seq
    assert seen_before is not None
    await console.close()
    await inbound(client, "+12025550111", "hello?", "w2")
    await inbound(client, "+12025550111", "are you there", "w3")
    await inbound(client, "+19995550000", "someone else", "w4")  # not visible to ann

    console2, welcome2, _ = await Console.connect(client, jar, resume_from=seen_before)
    assert welcome2["data"]["resumed"] is True
    texts: list[str] = []
    while len(texts) < 2:
        f = await console2.next_frame()
        if f["type"] == "event" and f["data"]["type"] == "message.received":
            texts.append(f["data"]["payload"]["text"])
    assert texts == ["hello?", "are you there"]
    await inbound(client, "+12025550111", "live again", "w5")
    live = await console2.until_event("message.received")
    assert live["payload"]["text"] == "live again"
    seqs = [e["seq"] for e in console2.events]
    assert seqs == sorted(set(seqs))
    assert all(e["conversation_id"] == ids["conversation_id"] for e in console2.events)
    await console2.close()


async def test_repeated_client_msg_id_is_applied_once(hub_client: ClientFactory) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    ann = await make_agent(client, "ann")
    ids = await inbound(client, "+12025550122", "hi", "r1")
    offer_id = await hub.work.create_offer(ids["conversation_id"], ann)
    assert offer_id is not None
    await hub.work.accept(offer_id, ann)
    console, _, _ = await Console.connect(client, await login(client, "ann"))
    frame_ = {
        "v": 1,
        "type": "cmd",
        "data": {
            "client_msg_id": "same-id",
            "name": "reply",
            "args": {"conversation_id": ids["conversation_id"], "text": "once"},
        },
    }
    results = []
    for _ in range(2):
        await console.ws.send_json(frame_)
        while True:
            f = await console.next_frame()
            if f["type"] == "ack":
                results.append(f["data"]["result"]["message"]["id"])
                break
    assert results[0] == results[1]
    page = await (
        await client.get(f"/api/v1/conversations/{ids['conversation_id']}/messages", headers=AUTH)
    ).json()
    assert [m["text"] for m in page["items"] if m["direction"] == "out"] == ["once"]
    await console.close()


async def test_resume_point_too_old_or_unknown_asks_for_resync(hub_client: ClientFactory) -> None:
    client = await hub_client()
    await make_agent(client, "ann")
    console, welcome, _ = await Console.connect(
        client, await login(client, "ann"), resume_from=10**9
    )
    assert welcome["data"]["resumed"] is False
    f = await console.ws.receive_json(timeout=5)
    assert f["type"] == "resync_required"
    await console.close()


async def test_closing_every_tab_marks_the_agent_offline_after_grace_and_reroutes_offers(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client(offline_grace_s=0.3, offer_timeout_s=30)
    hub = client.app[keys.HUB]
    ann = await make_agent(client, "ann")
    await asyncio.sleep(0.01)
    ben = await make_agent(client, "ben")
    tab1, _, _ = await Console.connect(client, await login(client, "ann"))
    tab2, _, _ = await Console.connect(client, await login(client, "ann"))
    await tab1.cmd("set_state", state="available")
    ids = await inbound(client, "+12025550133", "anyone?", "o1")
    offer = await tab1.until_event("offer.created")
    assert offer["agent_id"] == ann
    await hub.work.set_state(ben, "available")
    await tab1.close()
    await asyncio.sleep(0.5)  # one tab still open: ann stays
    agent_states = {
        a["id"]: a["state"]
        for a in (await (await client.get("/api/v1/agents", headers=AUTH)).json())["items"]
    }
    assert agent_states[ann] == "available"
    await tab2.close()

    async def rerouted() -> bool:
        page = await (await client.get("/api/v1/events?after=0&limit=1000", headers=AUTH)).json()
        return any(
            e["type"] == "offer.created"
            and e["agent_id"] == ben
            and e["conversation_id"] == ids["conversation_id"]
            for e in page["items"]
        )

    async with asyncio.timeout(5):
        while not await rerouted():  # noqa: ASYNC110 - polls storage
            await asyncio.sleep(0.05)
    agents = (await (await client.get("/api/v1/agents", headers=AUTH)).json())["items"]
    assert next(a for a in agents if a["id"] == ann)["state"] == "offline"


async def test_console_merge_and_undo_is_for_supervisors(hub_client: ClientFactory) -> None:
    client = await hub_client()
    await make_agent(client, "ann")
    await make_agent(client, "sue", role="supervisor")
    a = await inbound(client, "+12025550144", "sms side", "m1")
    b = await inbound(client, "pat@example.org", "mail side", "m2")
    agent, _, _ = await Console.connect(client, await login(client, "ann"))
    refused = await agent.cmd(
        "merge_customer", customer_id=a["customer_id"], other_id=b["customer_id"]
    )
    assert (refused["type"], refused["data"]["code"]) == ("error", "forbidden")
    await agent.close()
    console, _, _ = await Console.connect(client, await login(client, "sue"))
    merged = await console.cmd(
        "merge_customer", customer_id=a["customer_id"], other_id=b["customer_id"]
    )
    assert merged["type"] == "ack"
    result = merged["data"]["result"]
    kinds = sorted(e["kind"] for e in result["customer"]["endpoints"])
    assert kinds == ["email", "phone"]
    undone = await console.cmd("unmerge_customer", audit_id=result["audit_id"])
    assert [e["kind"] for e in undone["data"]["result"]["customer"]["endpoints"]] == ["phone"]
    await console.close()


async def test_supervisors_get_the_floor_and_the_content_they_monitor(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    await make_agent(client, "sue", role="supervisor")
    sup, _, _ = await Console.connect(client, await login(client, "sue"), path="/ws/supervisor")
    first = await inbound(client, "+12025550111", "hello", "f1")
    conv = first["conversation_id"]
    assert (await sup.until_event("conversation.created"))["conversation_id"] == conv
    await inbound(client, "+12025550111", "more words", "f2")  # content of the same one
    other = await inbound(client, "+12025550122", "other", "f3")  # a new one: the floor
    created = await sup.until_event("conversation.created")
    assert created["conversation_id"] == other["conversation_id"]
    assert not [e for e in sup.events if e["type"].startswith("message.")]

    assert (await sup.cmd("monitor", conversation_id=conv))["type"] == "ack"
    await inbound(client, "+12025550111", "while monitored", "f4")
    assert (await sup.until_event("message.received"))["payload"]["text"] == "while monitored"
    assert (await sup.cmd("close_view", conversation_id=conv))["type"] == "ack"
    await inbound(client, "+12025550111", "after closing", "f5")
    marker = await inbound(client, "+12025550133", "marker", "f6")
    assert (await sup.until_event("conversation.created"))["conversation_id"] == marker[
        "conversation_id"
    ]
    texts = [e["payload"]["text"] for e in sup.events if e["type"] == "message.received"]
    assert texts == ["while monitored"]
    await sup.close()


async def test_a_preferred_offer_still_says_so_in_the_snapshot_after_a_reload(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    ann = await make_agent(client, "ann")
    conv = (await inbound(client, "+12025550177", "back again", "p1"))["conversation_id"]
    hub = client.app[keys.HUB]
    offer = await hub.work.create_offer(conv, ann, preferred="last_agent")
    assert offer is not None
    console, _, snapshot = await Console.connect(client, await login(client, "ann"))
    await console.close()
    [listed] = snapshot["data"]["offers"]
    assert (listed["offer_id"], listed["preferred"]) == (offer, "last_agent")
