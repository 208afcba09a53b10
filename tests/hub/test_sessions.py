"""Login sessions end when they should: deactivation, password change, logout (here or
everywhere) and idleness; each end is one ``agent.sessions_ended`` event that closes the
user's consoles."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import load_settings
from contract.errors import ConfigError
from hub.accounts.principal import token_hash
from hub.web import keys
from hub.web.auth import SESSION_COOKIE
from storage.models import AuditEntry, Event, UserSession, utcnow
from tests.agent_console.test_gateway import PASSWORD, Console, login, make_agent
from tests.conftest import AUTH, ClientFactory

SESSION_ENDED_CODE = 4401  # agent_console/PROTOCOL.md


def _hash(client: Any, jar: aiohttp.CookieJar) -> str:
    return token_hash(jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value)


async def _me(client: Any, jar: aiohttp.CookieJar) -> int:
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as session,
        session.get(client.make_url("/api/v1/me")) as resp,
    ):
        return resp.status


async def _post(client: Any, jar: aiohttp.CookieJar, path: str, body: Any = None) -> int:
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as session,
        session.post(client.make_url(path), json=body) as resp,
    ):
        return resp.status


async def _ended_events(s: AsyncSession) -> list[dict[str, Any]]:
    rows = await s.scalars(
        select(Event).where(Event.type == "agent.sessions_ended").order_by(Event.seq)
    )
    return [{"agent_id": e.agent_id, **e.payload} for e in rows]


async def _closed_within(console: Console, seconds: float) -> int | None:
    """The code of the server's close frame (``ws.close_code`` may read 1006 when the server
    drops the connection before our reply to its close frame gets out: a race, not the code)."""
    code = None
    async with asyncio.timeout(seconds):
        while not console.ws.closed:
            msg = await console.ws.receive()
            if msg.type == aiohttp.WSMsgType.CLOSE:
                code = msg.data
    await console.session.close()
    return code


# Needs the console gateway to close a user's websockets on agent.sessions_ended (the lead's
# agent_console/gateway.py change, landed in 2cb9bb0); it fails if that handling goes away.
async def test_deactivation_closes_that_users_open_console_within_a_second(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    ann = await make_agent(client, "ann")
    await make_agent(client, "ben")
    jar = await login(client, "ann")
    console, _, _ = await Console.connect(client, jar)
    bystander, _, _ = await Console.connect(client, await login(client, "ben"))

    started = time.monotonic()
    resp = await client.patch(f"/api/v1/agents/{ann}", json={"active": False}, headers=AUTH)
    assert resp.status == 200
    assert await _closed_within(console, 1.0) == SESSION_ENDED_CODE
    assert time.monotonic() - started < 1.0

    assert not bystander.ws.closed  # only that user's consoles close
    await bystander.ws.close()
    await bystander.session.close()
    assert await _me(client, jar) == 401
    hub = client.app[keys.HUB]
    assert await hub.tx.read(_ended_events) == [{"agent_id": ann, "all": True}]

    async def sessions_left(s: AsyncSession) -> list[str]:
        return list((await s.scalars(select(UserSession.token_hash))).all())

    assert _hash(client, jar) not in await hub.tx.read(sessions_left)


async def test_each_way_of_ending_sessions_says_which_ended(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    ann = await make_agent(client, "ann")
    laptop, phone, tablet = [await login(client, "ann") for _ in range(3)]
    hashes = {name: _hash(client, jar) for name, jar in (("phone", phone), ("tablet", tablet))}

    # Logout: this browser only.
    assert await _post(client, tablet, "/logout") == 200
    # Password change: every other session; this one stays.
    assert (
        await _post(
            client, laptop, "/api/v1/me/password", {"current": PASSWORD, "new": "long new secret"}
        )
        == 204
    )
    assert (await _me(client, laptop), await _me(client, phone)) == (200, 401)
    # Log out everywhere: all of them, this one too.
    new = await client.post("/login", json={"username": "ann", "password": "long new secret"})
    assert new.status == 200
    assert await _post(client, laptop, "/api/v1/me/logout-everywhere") == 204
    assert await _me(client, laptop) == 401

    events = await client.app[keys.HUB].tx.read(_ended_events)
    assert events == [
        {"agent_id": ann, "session_hashes": [hashes["tablet"]]},
        {"agent_id": ann, "session_hashes": [hashes["phone"]]},
        {"agent_id": ann, "all": True},
    ]

    async def actions(s: AsyncSession) -> list[str]:
        rows = await s.scalars(
            select(AuditEntry.action).where(AuditEntry.target_id == ann).order_by(AuditEntry.id)
        )
        return [a for a in rows if not a.startswith("login")]

    assert await client.app[keys.HUB].tx.read(actions) == [
        "logout",
        "password.change",
        "logout.everywhere",
    ]


async def test_a_wrong_current_password_changes_nothing_and_ends_nothing(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    await make_agent(client, "ann")
    one, two = await login(client, "ann"), await login(client, "ann")
    wrong = {"current": "not my password", "new": "long new secret"}
    assert await _post(client, one, "/api/v1/me/password", wrong) == 403
    short = {"current": PASSWORD, "new": "short"}
    assert await _post(client, one, "/api/v1/me/password", short) == 400
    assert (await _me(client, one), await _me(client, two)) == (200, 200)
    assert await _post(client, aiohttp.CookieJar(unsafe=True), "/api/v1/me/password") == 401
    assert (await login(client, "ann")) is not None  # the old password still works
    # No session, no account: the admin token has no sessions to end.
    token = await client.post("/api/v1/me/logout-everywhere", headers=AUTH)
    assert token.status == 403


async def test_last_use_is_written_at_most_once_a_minute_and_an_idle_session_ends(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url, session_idle_s=300)
    hub = client.app[keys.HUB]
    await make_agent(client, "ann")
    jar = await login(client, "ann")
    hashed = _hash(client, jar)

    async def seen(s: AsyncSession) -> Any:
        return await s.scalar(
            select(UserSession.last_seen_at).where(UserSession.token_hash == hashed)
        )

    async def set_times(ago_s: float, *, seen_too: bool = True) -> None:
        at = utcnow() - timedelta(seconds=ago_s)
        async with hub.sessions() as s, s.begin():
            await s.execute(
                update(UserSession)
                .where(UserSession.token_hash == hashed)
                .values(created_at=at, last_seen_at=at if seen_too else None)
            )

    # A fresh session is not written on every request.
    for _ in range(3):
        assert await _me(client, jar) == 200
    assert await hub.tx.read(seen) is None
    # Used again after more than a minute: written once, then left alone.
    await set_times(90)
    assert await _me(client, jar) == 200
    first = await hub.tx.read(seen)
    assert utcnow() - first < timedelta(seconds=5)
    assert await _me(client, jar) == 200
    assert await hub.tx.read(seen) == first
    # Within the idle limit it lives (and counts as used); past it, it is over.
    await set_times(290)
    assert await _me(client, jar) == 200
    await set_times(301)
    assert await _me(client, jar) == 401
    # A session never used since login is idle from its creation.
    other = await login(client, "ann")
    hashed = _hash(client, other)
    await set_times(301, seen_too=False)
    assert await _me(client, other) == 401


def test_the_idle_limit_is_a_setting_of_eight_hours_by_default() -> None:
    assert load_settings(require_api_token=False).session_idle_s == 8 * 3600
    assert load_settings(require_api_token=False, session_idle_s=60).session_idle_s == 60
    with pytest.raises(ConfigError, match="HUB_SESSION_IDLE_S"):
        load_settings(require_api_token=False, session_idle_s=0)


async def test_console_commands_keep_a_login_alive_and_an_idle_one_closes_the_console(
    hub_client: ClientFactory, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Check the login on every command (the console checks it once a minute).
    monkeypatch.setattr("agent_console.commanding.SESSION_CHECK_S", 0.0)
    client = await hub_client(database_url=db_url, session_idle_s=300)
    hub = client.app[keys.HUB]
    await make_agent(client, "ann")
    jar = await login(client, "ann")
    hashed = _hash(client, jar)
    console, _, _ = await Console.connect(client, jar)

    async def seen_at(ago_s: float | None = None) -> Any:
        async with hub.sessions() as s, s.begin():
            if ago_s is not None:
                await s.execute(
                    update(UserSession)
                    .where(UserSession.token_hash == hashed)
                    .values(last_seen_at=utcnow() - timedelta(seconds=ago_s))
                )
            return await s.scalar(
                select(UserSession.last_seen_at).where(UserSession.token_hash == hashed)
            )

    # Working only in the console (no page loads) counts as using the login.
    await seen_at(200)
    assert (await console.cmd("agents"))["type"] == "ack"
    assert utcnow() - await seen_at() < timedelta(seconds=5)
    # Idle past the limit with the socket still open: the next command is not run and the
    # console is closed as a logout closes it.
    await seen_at(301)
    await console.ws.send_json(
        {"v": 1, "type": "cmd", "data": {"client_msg_id": "late", "name": "agents", "args": {}}}
    )
    assert await _closed_within(console, 2.0) == SESSION_ENDED_CODE
