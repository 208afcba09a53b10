"""Demo data and simulated traffic for ``make run``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import delete, select, update

from config.settings import Settings
from contract.channel import EndpointKind, InboundMessage
from contract.errors import ConfigError
from hub.accounts.users import set_agent_skills
from hub.services import Hub
from hub.web import keys
from storage.db import create_engine
from storage.models import Agent, Customer, Queue, Skill, Team, UserSession

logger = logging.getLogger(__name__)
DEMO_PASSWORD = "demo-pass"  # noqa: S105 - documented demo login, demo mode only

TEAMS = ("Support", "Billing", "Technical")
SKILLS = ("billing", "tech", "sales", "lang:en", "lang:zh", "lang:es")
QUEUES = (
    # name, team, steps (relax over time), selection
    ("support", "Support", [{"expression": "", "timeout_s": None}], "longest_idle"),
    (
        "billing",
        "Billing",
        [
            {"expression": "billing >= 3", "timeout_s": 30},
            {"expression": "billing >= 1", "timeout_s": 60},
            {"expression": "", "timeout_s": None},
        ],
        "longest_idle",
    ),
    (
        "tech",
        "Technical",
        [{"expression": "tech >= 3", "timeout_s": 45}, {"expression": "", "timeout_s": None}],
        "best_proficiency",
    ),
)
AGENTS = (
    ("agent1", "Ana Silva", "Support", {"billing": 2, "lang:en": 5, "lang:es": 5}),
    ("agent2", "Ben Carter", "Billing", {"billing": 5, "lang:en": 5}),
    ("agent3", "Chen Wei", "Technical", {"tech": 5, "lang:zh": 5, "lang:en": 4}),
    ("agent4", "Dara Okafor", "Support", {"sales": 4, "lang:en": 5}),
    ("agent5", "Eva Novak", "Billing", {"billing": 3, "tech": 2, "lang:en": 4}),
    ("agent6", "Farid Haddad", "Technical", {"tech": 4, "lang:en": 4}),
)
CUSTOMERS = (
    ("+447700900123", "Alice Morgan", "Hi, my order #48213 hasn't arrived yet."),
    ("bob@example.org", "Bob Lee", "Can I change the billing address on my account?"),
    ("+12025550143", "Carla Díaz", "¿Tienen soporte en español?"),
    ("li.na@example.cn", "李娜", "我的发票在哪里可以下载？"),
)


async def create_user(
    settings: Settings,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str,
    skills: dict[str, float] | None = None,
    team: str | None = None,
) -> int:
    """Create one account (and its skills) in the configured database."""
    hub = Hub(settings, create_engine(settings.database_url))
    try:
        agent_id = await hub.users.create(
            username=username, password=password, role=role, display_name=display_name
        )
        await _set_skills(hub, agent_id, skills or {}, team)
        return agent_id
    finally:
        await hub.engine.dispose()


async def _set_skills(hub: Hub, agent_id: int, skills: dict[str, float], team: str | None) -> None:
    async with hub.sessions() as s, s.begin():
        agent = await s.get_one(Agent, agent_id)
        if team:
            agent.team_id = await s.scalar(select(Team.id).where(Team.name == team))
        await set_agent_skills(s, agent_id, skills)


async def seed(settings: Settings) -> str:
    """Seed teams, skills, queues, demo users and customers with history (idempotent)."""
    if not settings.demo:
        raise ConfigError(
            "hub demo creates logins with the published password 'demo-pass': "
            "it runs only with HUB_DEMO=true (use `hub create-user` for real accounts)"
        )
    hub = Hub(settings, create_engine(settings.database_url))
    try:
        await hub.start()
        async with hub.sessions() as s:
            if await s.scalar(select(Agent.id).where(Agent.username == "admin")):
                return "demo data already present"
        async with hub.sessions() as s, s.begin():
            s.add_all(Team(name=t) for t in TEAMS)
            s.add_all(Skill(name=k) for k in SKILLS)
            await s.flush()
            teams = {t.name: t.id for t in (await s.scalars(select(Team))).all()}
            for name, team, steps, selection in QUEUES:
                s.add(Queue(name=name, team_id=teams[team], steps=steps, selection=selection))
        for username, name, team, skills in AGENTS:
            agent_id = await hub.users.create(
                username=username, password=DEMO_PASSWORD, display_name=name, demo=True
            )
            await _set_skills(hub, agent_id, dict(skills), team)
        await hub.users.create(
            username="supervisor",
            password=DEMO_PASSWORD,
            role="supervisor",
            display_name="Sam Supervisor",
            demo=True,
        )
        await hub.users.create(
            username="admin", password=DEMO_PASSWORD, role="admin", display_name="Admin", demo=True
        )
        for i, (address, name, text) in enumerate(CUSTOMERS):
            kind: EndpointKind = "email" if "@" in address else "phone"
            await hub.ingest(
                InboundMessage(
                    channel="api",
                    sender_kind=kind,
                    sender=address,
                    provider_id=f"demo-seed-{i}",
                    text=text,
                    display_name=name,
                )
            )
        async with hub.sessions() as s, s.begin():
            first = await s.scalar(select(Customer).order_by(Customer.id).limit(1))
            if first is not None:
                first.segment = "vip"
        return (
            f"seeded {len(TEAMS)} teams, {len(QUEUES)} queues, {len(AGENTS)} agents, "
            f"supervisor, admin (password {DEMO_PASSWORD!r}) and {len(CUSTOMERS)} customers"
        )
    finally:
        await hub.engine.dispose()


async def deactivate_demo_accounts(settings: Settings) -> list[str]:
    """Deactivate every account ``hub demo`` created and end its sessions; their usernames."""
    hub = Hub(settings, create_engine(settings.database_url))
    try:
        async with hub.sessions() as s, s.begin():
            rows = (
                await s.execute(
                    update(Agent)
                    .where(Agent.demo.is_(True), Agent.active.is_(True))
                    .values(active=False)
                    .returning(Agent.id, Agent.username)
                )
            ).all()
            if rows:
                await s.execute(
                    delete(UserSession).where(UserSession.agent_id.in_([r.id for r in rows]))
                )
        return sorted(r.username for r in rows)
    finally:
        await hub.engine.dispose()


# ---------------------------------------------------------------------------- traffic
TrafficSource = Callable[[aiohttp.ClientSession, Settings, random.Random], "asyncio.Future[None]"]

API_TEXTS = (
    "Where is my refund?",
    "The app crashes when I open settings.",
    "I'd like to upgrade my plan.",
    "Can someone call me back today?",
    "请问你们的营业时间是什么时候？",
    "Mi pedido llegó dañado.",
)


async def api_inbound(
    session: aiohttp.ClientSession, settings: Settings, rng: random.Random
) -> None:
    """One contact through the generic API channel."""
    who = rng.choice(CUSTOMERS)[0] if rng.random() < 0.3 else f"+1202555{rng.randint(1000, 9999)}"
    async with session.post(
        f"http://127.0.0.1:{settings.http_port}/api/v1/inbound",
        json={
            "from": who,
            "text": rng.choice(API_TEXTS),
            "external_id": f"demo-{rng.getrandbits(64):x}",
        },
        headers={"Authorization": f"Bearer {settings.api_token_value()}"},
    ) as resp:
        await resp.read()


async def email_inbound(
    session: aiohttp.ClientSession, settings: Settings, rng: random.Random
) -> None:
    """One real-shaped customer mail over SMTP to the hub's listener."""
    from channels.email.testing.simulator import random_customer_mail, send_mail

    mailbox = rng.choice(sorted(settings.email_mailboxes) or ["support@localhost"])
    raw = random_customer_mail(rng, mailbox)
    sender = raw.split(b"\r\nFrom:", 1)[-1].split(b"\r\n", 1)[0].decode("utf-8", "replace")
    address = sender[sender.rfind("<") + 1 : sender.rfind(">")] if "<" in sender else sender
    await send_mail(settings.smtp_host, settings.smtp_port, raw, address.strip(), mailbox)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DEMO_TELEGRAM_TOKEN = "123456789:DEMO-bot-token"  # noqa: S105 - local fake only
DEMO_TELEGRAM_SECRET = "demo-telegram-secret"  # noqa: S105 - local fake only


def provider_overrides() -> dict[str, object]:
    """Settings pointing every channel at local provider fakes (demo mode only)."""
    from channels.twilio_sms.testing.fake_api import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN

    return {
        "twilio_account_sid": DEMO_ACCOUNT_SID,
        "twilio_auth_token": DEMO_AUTH_TOKEN,
        "twilio_api_base": f"http://127.0.0.1:{_free_port()}",
        "telegram_bot_token": DEMO_TELEGRAM_TOKEN,
        "telegram_secret_token": DEMO_TELEGRAM_SECRET,
        "telegram_api_base": f"http://127.0.0.1:{_free_port()}",
        "relay_port": _free_port(),
    }


async def providers_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the fake Twilio and Telegram APIs and a mail relay sink for the demo."""
    from urllib.parse import urlsplit

    from channels.email.testing.sink import start_sink
    from channels.telegram.testing.fake_api import start_fake_telegram
    from channels.telegram.testing.simulator import seed_fake
    from channels.twilio_sms.testing.fake_api import start_fake_twilio

    settings = app[keys.SETTINGS]
    twilio, _ = await start_fake_twilio(
        port=urlsplit(settings.twilio_api_base).port or 0,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
    )
    telegram, _ = await start_fake_telegram(
        settings.telegram_bot_token.get_secret_value(),
        port=urlsplit(settings.telegram_api_base).port or 0,
    )
    seed_fake(telegram)
    sink = await start_sink(port=settings.relay_port)
    logger.info("demo providers: fake Twilio, fake Telegram, mail sink on %s", settings.relay_port)
    yield
    await sink.stop()
    await telegram.stop()
    await twilio.close()


def traffic_ctx(*, rate: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that sends demo contacts at ``rate`` per second on every channel."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[keys.SETTINGS]
        sources: list[Any] = [api_inbound]
        adapters = app[keys.ADAPTERS]
        if "sms" in adapters:
            from channels.twilio_sms.testing.simulator import demo_traffic

            sources.append(demo_traffic)
        if "telegram" in adapters:
            from channels.telegram.testing.simulator import telegram_inbound

            sources.append(telegram_inbound)
        if "email" in adapters and settings.smtp_enabled:
            sources.append(email_inbound)
        rng = random.Random()  # noqa: S311 - demo traffic

        async def loop() -> None:
            await asyncio.sleep(2)
            async with aiohttp.ClientSession() as session:
                while True:
                    source = rng.choice(sources)
                    try:
                        await source(session, settings, rng)
                    except Exception:
                        logger.exception("demo traffic source %s failed", source.__name__)
                    await asyncio.sleep(rng.expovariate(rate))

        task = asyncio.create_task(loop(), name="demo-traffic")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
