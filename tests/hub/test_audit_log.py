"""The audit log: logins, failures and logouts with their origin, read by admins only."""

from __future__ import annotations

import asyncio

import aiohttp

from hub.web import keys
from tests.agent_console.test_gateway import Console, login, make_agent
from tests.conftest import AUTH, ClientFactory


async def test_logins_failures_and_logouts_are_audited_and_admins_read_them(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    ann = await make_agent(client, "ann")
    await make_agent(client, "sue", role="supervisor")
    bad = await client.post("/login", json={"username": "ann", "password": "not it at all"})
    assert bad.status == 401
    jar = await login(client, "ann")
    console, _, _ = await Console.connect(client, jar)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        out = await session.post(client.make_url("/logout"))
        assert out.status == 200
    # That browser's console closes with its session.
    async with asyncio.timeout(1.0):
        while not console.ws.closed:
            await console.ws.receive()
    assert console.ws.close_code == 4401
    await console.session.close()

    page = await (await client.get("/api/v1/audit?target_type=agent", headers=AUTH)).json()
    rows = [(e["action"], e["actor"], e["target_id"], e["ip"]) for e in page["items"]]
    assert rows == [
        ("logout", "ann", ann, "127.0.0.1"),
        ("login", "ann", ann, "127.0.0.1"),
        ("login.failed", "ann", None, "127.0.0.1"),
    ]
    assert all("not it at all" not in str(e) for e in page["items"])
    only = await (await client.get("/api/v1/audit?action=login.failed", headers=AUTH)).json()
    assert [e["action"] for e in only["items"]] == ["login.failed"]
    first = await (await client.get("/api/v1/audit?limit=1", headers=AUTH)).json()
    older = await (
        await client.get(f"/api/v1/audit?limit=5&before={first['next']}", headers=AUTH)
    ).json()
    assert [e["id"] for e in older["items"]] == sorted(
        (e["id"] for e in older["items"]), reverse=True
    )
    assert first["items"][0]["id"] > older["items"][0]["id"]
    # A supervisor may not read it.
    sue = await login(client, "sue")
    async with (
        aiohttp.ClientSession(cookie_jar=sue) as session,
        session.get(client.make_url("/api/v1/audit")) as resp,
    ):
        assert resp.status == 403


async def test_transfers_and_queue_settings_are_audited(hub_client: ClientFactory) -> None:
    client = await hub_client()
    ann = await make_agent(client, "ann")
    queue = await client.put(
        "/api/v1/queues/vip", json={"team": "Care", "steps": [{"expression": ""}]}, headers=AUTH
    )
    assert queue.status == 200, await queue.text()
    made = await client.post(
        "/api/v1/inbound",
        json={"from": "+12025550190", "text": "hi", "external_id": "t-1"},
        headers=AUTH,
    )
    conv = (await made.json())["conversation_id"]
    hub = client.app[keys.HUB]
    await hub.work.transfer(conv, by=ann, to_queue="vip")
    page = await (await client.get("/api/v1/audit", headers=AUTH)).json()
    actions = {(e["action"], e["actor"]) for e in page["items"]}
    assert ("queue.settings", "admin-token") in actions
    assert ("conversation.transfer", "ann") in actions
    [moved] = [e for e in page["items"] if e["action"] == "conversation.transfer"]
    assert (moved["target_id"], moved["details"]["to_queue"]) == (conv, "vip")
