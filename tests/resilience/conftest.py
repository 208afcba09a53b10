"""Outage fixtures: cuttable proxies in front of PostgreSQL and Redis, hubs served on real
ports with fake providers behind them, and the database read directly (never through the
hub under test) to see what was really stored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from channels.email.testing.sink import MailSink, start_sink
from channels.telegram.testing.fake_api import FakeTelegram, start_fake_telegram
from channels.twilio_sms.const import PATH_INBOUND
from channels.twilio_sms.testing.fake_api import FakeTwilio, start_fake_twilio
from channels.twilio_sms.testing.simulator import signed_inbound
from channels.webchat.testing.visitor import ChatVisitor
from contract.testing import free_port
from hub.services import Hub
from hub.web import keys
from server.app import create_app
from tests import factories
from tests.agent_console.test_gateway import Console
from tests.conftest import AUTH, PG_ADMIN_URL, REDIS_URL, make_settings
from tests.resilience.proxy import TcpProxy

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "resilience-twilio-auth-token"
OUR_NUMBER = "+15005550006"
TELEGRAM_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TELEGRAM_SECRET = "resilience-secret_0123456789"
SITE = "demo"
SITE_SECRET = "resilience-site-secret"
SUPPORT = "support@support.example.com"
# How long a request to the hub may take, even while its database is being taken away.
REQUEST_TIMEOUT_S = 30.0


# ---------------------------------------------------------------------- waiting


async def until(
    check: Callable[[], Awaitable[bool]], *, limit_s: float, what: str, every_s: float = 0.1
) -> float:
    """Poll ``check`` until it holds; the seconds it took. Fails the test after ``limit_s``."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(limit_s):
            while not await check():  # noqa: ASYNC110 - polling HTTP and storage, no event to wait on
                await asyncio.sleep(every_s)
    except TimeoutError:
        pytest.fail(f"not within {limit_s} s: {what}")
    return time.monotonic() - start


# ---------------------------------------------------------------------- the database, directly


def plain(url: str) -> str:
    """An SQLAlchemy URL as asyncpg takes it."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


def database_name(url: str) -> str:
    """The database a URL names."""
    return urlsplit(url).path.lstrip("/")


def through(url: str, proxy: TcpProxy) -> str:
    """``url`` with its host and port replaced by the proxy's (user and database kept)."""
    parts = urlsplit(url)
    user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))


async def db_value(url: str, sql: str, *args: Any) -> Any:
    """One value read from the hub's database on a connection of the test's own."""
    async with asyncio.timeout(10):
        conn = await asyncpg.connect(plain(url))
    try:
        async with asyncio.timeout(10):
            return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def stored_messages(url: str, provider_id: str) -> int:
    """How many messages the hub stored under this provider id (any channel)."""
    return int(
        await db_value(url, "SELECT count(*) FROM messages WHERE provider_id = $1", provider_id)
    )


async def stored_counts(url: str, provider_ids: Collection[str]) -> dict[str, int]:
    """How many stored messages carry each provider id, or its text ``message <id>`` (a
    copy stored under another id counts too); 0 for none."""
    async with asyncio.timeout(10):
        conn = await asyncpg.connect(plain(url))
    try:
        async with asyncio.timeout(30):
            rows = await conn.fetch(
                "SELECT provider_id, text FROM messages WHERE provider_id = ANY($1::text[]) "
                "OR text = ANY($2::text[])",
                list(provider_ids),
                [f"message {pid}" for pid in provider_ids],
            )
    finally:
        await conn.close()
    counts = dict.fromkeys(provider_ids, 0)
    for row in rows:
        # A row counts for its provider id and for the id its text names (once if both).
        for pid in {row["provider_id"], (row["text"] or "").removeprefix("message ")}:
            if pid in counts:
                counts[pid] += 1
    return counts


async def terminate_backends(database: str, *, seconds: float, every_s: float) -> int:
    """Terminate every connection to ``database`` again and again for ``seconds``, from an
    admin connection to another database (so it never terminates itself); how many it
    terminated."""
    async with asyncio.timeout(10):
        admin = await asyncpg.connect(plain(PG_ADMIN_URL))
    terminated = 0
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            async with asyncio.timeout(5):
                terminated += int(
                    await admin.fetchval(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                        "FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                        database,
                    )
                )
            await asyncio.sleep(every_s)
    finally:
        await admin.close()
    return terminated


# ---------------------------------------------------------------------- proxies


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


@pytest.fixture
async def redis_proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    """A cuttable proxy in front of the test Redis (``redis_url`` fails on CI without one)."""
    proxy = TcpProxy(*_host_port(redis_url, 6379))
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def pg_proxy(pg_url: str) -> AsyncIterator[TcpProxy]:
    """A cuttable proxy in front of the test PostgreSQL server. A test lists it (and
    ``redis_proxy``) before ``serve_hub``, so the hubs stop before their proxy does."""
    proxy = TcpProxy(*_host_port(pg_url, 5432))
    await proxy.start()
    yield proxy
    await proxy.close()


def redis_via(proxy: TcpProxy) -> str:
    """The test Redis's URL through the proxy."""
    return through(REDIS_URL, proxy)


# ---------------------------------------------------------------------- fake providers


@pytest.fixture
async def fake_twilio() -> AsyncIterator[tuple[FakeTwilio, str]]:
    """The fake Twilio REST API (status callbacks off) and its base URL."""
    fake, base = await start_fake_twilio(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, callbacks=False
    )
    yield fake, base
    await fake.close()


@pytest.fixture
async def fake_telegram() -> AsyncIterator[tuple[FakeTelegram, str]]:
    """The fake Telegram Bot API of ``TELEGRAM_TOKEN`` and its base URL."""
    fake, base = await start_fake_telegram(TELEGRAM_TOKEN)
    yield fake, base
    await fake.stop()


@pytest.fixture
async def mail_sink() -> AsyncIterator[MailSink]:
    """The SMTP relay the hub sends mail to."""
    sink = await start_sink()
    yield sink
    await sink.stop()


def twilio_settings(api_base: str) -> dict[str, Any]:
    """The Twilio messaging settings of the fake's account."""
    return {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_api_base": api_base,
    }


# ---------------------------------------------------------------------- the agent's side


async def offer_for(console: Console, conversation_id: int, *, limit_s: float) -> dict[str, Any]:
    """The ``offer.created`` event of ``conversation_id`` on the agent's console; offers of
    other conversations that come first are rejected (the router offers them elsewhere)."""
    handled: set[int] = set()
    async with asyncio.timeout(limit_s):
        while True:
            others = []
            for event in console.events:
                if event["type"] != "offer.created":
                    continue
                if event["conversation_id"] == conversation_id:
                    return event
                if event["payload"]["offer_id"] not in handled:
                    others.append(event["payload"]["offer_id"])
            for offer_id in others:
                handled.add(offer_id)
                await console.cmd("reject", offer_id=offer_id)  # reads frames meanwhile
            if not others:
                await console.next_frame()


async def agent_console(served: Served, username: str) -> tuple[int, Console]:
    """A new agent (room for five conversations per channel), signed in with a console
    open on ``served`` and available."""
    agent_id = await factories.agent(
        served.hub, username, capacity={"sms": 5, "api": 5, "telegram": 5, "webchat": 5}
    )
    console, _, _ = await Console.connect(
        served.client, await factories.login(served.client, username)
    )
    ack = await console.cmd("set_state", state="available")
    assert ack["type"] == "ack", ack
    return agent_id, console


# ---------------------------------------------------------------------- a served hub


@dataclass
class Served:
    """A hub app listening on a real port, and a client session of the test's."""

    client: TestClient[Any, Any]
    base: str
    session: aiohttp.ClientSession

    @property
    def hub(self) -> Hub:
        hub: Hub = self.client.app[keys.HUB]
        return hub

    async def ready(self) -> tuple[int, dict[str, Any]]:
        """``GET /readyz``: status and body."""
        async with (
            asyncio.timeout(REQUEST_TIMEOUT_S),
            self.session.get(f"{self.base}/readyz") as resp,
        ):
            body: dict[str, Any] = await resp.json()
            return resp.status, body

    async def sms(self, *, sid: str, sender: str, text: str) -> tuple[int, str]:
        """A Twilio-signed inbound SMS webhook; (status, body)."""
        data, headers = signed_inbound(
            self.base,
            AUTH_TOKEN,
            ACCOUNT_SID,
            from_=sender,
            to=OUR_NUMBER,
            body=text,
            message_sid=sid,
        )
        async with (
            asyncio.timeout(REQUEST_TIMEOUT_S),
            self.session.post(self.base + PATH_INBOUND, data=data, headers=headers) as resp,
        ):
            return resp.status, await resp.text()

    async def api_inbound(self, *, external_id: str, sender: str, text: str) -> tuple[int, str]:
        """``POST /api/v1/inbound``; (status, body)."""
        async with (
            asyncio.timeout(REQUEST_TIMEOUT_S),
            self.session.post(
                f"{self.base}/api/v1/inbound",
                json={"from": sender, "text": text, "external_id": external_id},
                headers=AUTH,
            ) as resp,
        ):
            return resp.status, await resp.text()

    def visitor(self, **kwargs: Any) -> ChatVisitor:
        """A web chat visitor of site ``SITE`` (its page is on the hub's own origin)."""
        return ChatVisitor(self.session, self.base, site=SITE, origin=self.base, **kwargs)


ServeHub = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve_hub(aiohttp_client: Any) -> AsyncIterator[ServeHub]:
    """``await serve_hub(database_url, webchat=False, **settings)``: the hub app on a free
    port of 127.0.0.1, its public URL being that address (so Twilio signatures and the web
    chat origin are the ones a client there uses); ``webchat`` adds the chat site ``SITE``."""
    served: list[Served] = []

    async def factory(database_url: str, *, webchat: bool = False, **overrides: Any) -> Served:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        if webchat:
            overrides["channels"] = {
                **overrides.get("channels", {}),
                "webchat": {"sites": {SITE: {"origins": [base], "secret": SITE_SECRET}}},
            }
        settings = make_settings(database_url, public_url=base, **overrides)
        client: TestClient[Any, Any] = await aiohttp_client(
            create_app(settings), server_kwargs={"port": port}
        )
        one = Served(client=client, base=base, session=aiohttp.ClientSession())
        served.append(one)
        return one

    yield factory
    for one in served:
        await one.session.close()
