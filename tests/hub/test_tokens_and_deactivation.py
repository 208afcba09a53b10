"""Integration tokens end when revoked; a deactivated person's consoles close at once."""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contract.testing import free_port
from hub.web import keys
from storage.models import AuditEntry, UserSession, utcnow
from tests.agent_console.test_gateway import PASSWORD, Console, login, make_agent
from tests.conftest import AUTH, ClientFactory
from tests.hub.test_cli_serve import HUB, hub_env


async def test_a_revoked_token_gets_401_on_its_next_call(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    made = await client.post(
        "/api/v1/tokens", json={"name": "crm", "scopes": ["inbound", "read"]}, headers=AUTH
    )
    assert made.status == 201
    created = await made.json()
    secret = created["token"]
    bearer = {"Authorization": f"Bearer {secret}"}
    body = {"from": "+12025550171", "text": "from the CRM", "external_id": "crm-1"}
    assert (await client.post("/api/v1/inbound", json=body, headers=bearer)).status == 201
    listed = (await (await client.get("/api/v1/tokens", headers=AUTH)).json())["items"]
    assert [(t["name"], t["scopes"]) for t in listed] == [("crm", ["inbound", "read"])]
    assert listed[0]["last_used_at"] is not None
    assert all("token" not in t for t in listed)  # the secret is never shown again
    revoked = await client.delete(f"/api/v1/tokens/{created['id']}", headers=AUTH)
    assert revoked.status == 200
    again = {**body, "external_id": "crm-2"}
    assert (await client.post("/api/v1/inbound", json=again, headers=bearer)).status == 401
    assert (await client.get("/api/v1/customers", headers=bearer)).status == 401
    audit = [
        (e.action, e.actor)
        for e in await client.app[keys.HUB].tx.read(_audit_rows)
        if e.action.startswith("token.")
    ]
    assert audit == [("token.create", "admin-token"), ("token.revoke", "admin-token")]


async def _audit_rows(s: AsyncSession) -> list[AuditEntry]:
    return list((await s.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())


async def test_deactivation_closes_the_users_console_within_a_second(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    ann = await make_agent(client, "ann")
    jar = await login(client, "ann")
    console, _, _ = await Console.connect(client, jar)
    started = time.monotonic()
    resp = await client.patch(f"/api/v1/agents/{ann}", json={"active": False}, headers=AUTH)
    assert resp.status == 200
    async with asyncio.timeout(1.0):
        while True:
            msg = await console.ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
    assert time.monotonic() - started < 1.0
    assert console.ws.close_code == 4401
    await console.session.close()
    # The cookie opens nothing any more.
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.get(client.make_url("/api/v1/me")) as me:
            assert me.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(client.make_url("/ws/agent"))


async def test_a_supervisor_cannot_deactivate_an_admin(hub_client: ClientFactory) -> None:
    client = await hub_client()
    admin = await make_agent(client, "ada", role="admin")
    await make_agent(client, "sue", role="supervisor")
    agent = await make_agent(client, "ann")
    jar = await login(client, "sue")
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        refused = await session.patch(
            client.make_url(f"/api/v1/agents/{admin}"), json={"active": False}
        )
        assert refused.status == 403
        allowed = await session.patch(
            client.make_url(f"/api/v1/agents/{agent}"), json={"active": False}
        )
        assert allowed.status == 200


def test_hub_token_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    env = hub_env(f"sqlite+aiosqlite:///{tmp_path}/hub.db", free_port())

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*HUB, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    assert run("migrate").returncode == 0
    made = run("token", "create", "zapier", "--scope", "inbound")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.splitlines()[1]
    assert secret.startswith("hub_")
    assert "not shown again" in made.stdout
    listed = run("token", "list")
    assert "zapier\tinbound\tactive\tused never" in listed.stdout
    assert secret not in listed.stdout
    assert run("token", "revoke", "1").returncode == 0
    assert "revoked" in run("token", "list").stdout
    bad = run("token", "create", "x")
    assert bad.returncode == 2
    assert "--scope" in bad.stderr


async def _ends(console: Console) -> int | None:
    async with asyncio.timeout(1.0):
        while not console.ws.closed:
            await console.ws.receive()
    await console.session.close()
    return console.ws.close_code


async def _me(client: Any, jar: aiohttp.CookieJar) -> int:
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as session,
        session.get(client.make_url("/api/v1/me")) as resp,
    ):
        return resp.status


async def test_password_change_ends_the_other_sessions_and_keeps_this_one(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    await make_agent(client, "ann")
    laptop, phone = await login(client, "ann"), await login(client, "ann")
    other, _, _ = await Console.connect(client, phone)
    async with aiohttp.ClientSession(cookie_jar=laptop) as session:
        wrong = await session.post(
            client.make_url("/api/v1/me/password"),
            json={"current": "guessing", "new": "a brand new secret"},
        )
        assert wrong.status == 403
        changed = await session.post(
            client.make_url("/api/v1/me/password"),
            json={"current": PASSWORD, "new": "a brand new secret"},
        )
        assert changed.status == 204
    assert await _ends(other) == 4401
    assert await _me(client, phone) == 401
    assert await _me(client, laptop) == 200
    old = await client.post("/login", json={"username": "ann", "password": PASSWORD})
    assert old.status == 401
    new = await client.post("/login", json={"username": "ann", "password": "a brand new secret"})
    assert new.status == 200


async def test_logout_everywhere_and_the_idle_timeout(hub_client: ClientFactory) -> None:
    client = await hub_client(session_idle_s=60)
    ann = await make_agent(client, "ann")
    one, two = await login(client, "ann"), await login(client, "ann")
    console, _, _ = await Console.connect(client, two)
    async with aiohttp.ClientSession(cookie_jar=one) as session:
        done = await session.post(client.make_url("/api/v1/me/logout-everywhere"))
        assert done.status == 204
    assert await _ends(console) == 4401
    assert await _me(client, one) == 401
    assert await _me(client, two) == 401
    # A session unused for longer than the idle limit ends, though its 12 hours are not up.
    idle = await login(client, "ann")
    assert await _me(client, idle) == 200
    hub = client.app[keys.HUB]
    async with hub.sessions() as s, s.begin():
        await s.execute(
            update(UserSession)
            .where(UserSession.agent_id == ann)
            .values(last_seen_at=utcnow() - timedelta(seconds=61))
        )
    assert await _me(client, idle) == 401
