"""Demo data and simulated traffic for ``make run``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from sqlalchemy import delete, select, update

from channels import registry
from config.settings import Settings
from contract.channel import EndpointKind, InboundMessage
from contract.errors import ConfigError
from hub.accounts.users import set_agent_skills
from hub.services import Hub
from hub.web import keys
from storage.db import create_engine
from storage.models import Agent, Customer, Queue, Rule, Skill, SlaPolicy, Team, UserSession

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
# Workflow: satisfaction surveys on the support and billing queues, SLA targets in business
# hours, a complaint SLA, and two automation rules.
CSAT_QUEUES = ("support", "billing")
OPEN_HOURS = dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat"), "08:00-20:00")


def workflow_rows() -> list[SlaPolicy | Rule]:
    """Fresh rows (an ORM object belongs to one session)."""
    calendar = {"hours": OPEN_HOURS, "zone": "Europe/London"}
    return [
        SlaPolicy(
            name="standard",
            first_response_s=300,
            next_response_s=600,
            resolution_s=4 * 3600,
            calendar=calendar,
            escalation={"priority_boost": 10, "notify": True},
        ),
        SlaPolicy(
            name="complaints-high",
            kind="complaint",
            severity="high",
            first_response_s=1800,
            resolution_s=8 * 3600,
            calendar=calendar,
            escalation={"priority_boost": 20, "notify": True},
        ),
        Rule(
            name="Refunds go to billing",
            event="message.created",
            position=10,
            conditions={"text_contains": ["refund", "charged twice", "退款"], "queue": ["support"]},
            actions=[
                {"type": "set_queue", "queue": "billing"},
                {"type": "add_labels", "labels": ["refund"]},
            ],
        ),
        Rule(
            name="VIP close to an SLA miss",
            event="sla.warning",
            position=20,
            conditions={"segment": ["vip"]},
            actions=[
                {
                    "type": "escalate",
                    "priority_boost": 20,
                    "text": "A VIP is about to wait too long",
                }
            ],
        ),
    ]


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
    hub = Hub(settings, create_engine(settings.database_url), channels=registry.channels())
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
    hub = Hub(settings, create_engine(settings.database_url), channels=registry.channels())
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
                options = {"csat": True} if name in CSAT_QUEUES else {}
                s.add(
                    Queue(
                        name=name,
                        team_id=teams[team],
                        steps=steps,
                        selection=selection,
                        options=options,
                    )
                )
            s.add_all(workflow_rows())
        for i, (username, name, team, skills) in enumerate(AGENTS, start=1):
            agent_id = await hub.users.create(
                username=username, password=DEMO_PASSWORD, display_name=name, demo=True
            )
            await _set_skills(hub, agent_id, dict(skills), team)
            async with hub.sessions() as s, s.begin():
                # Where the demo's phone calls ring (the local Twilio answers for them).
                (await s.get_one(Agent, agent_id)).phone = f"+1555010{i:04d}"
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
    hub = Hub(settings, create_engine(settings.database_url), channels=registry.channels())
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
# Each channel's ``testing/demo.py`` (found through the registry) brings its fake provider
# (``overrides()`` settings and a ``provider(settings)`` context) and ``contact(...)``, one
# simulated contact; this module only runs them.


def provider_overrides() -> dict[str, object]:
    """Settings pointing every channel at its local provider fake (demo mode only)."""
    overrides: dict[str, object] = {}
    sections: dict[str, object] = {}
    for demo in registry.demos().values():
        mine = dict(demo.overrides())
        # Channel sections ([channels.<name>]) merge; every other setting is one channel's.
        sections.update(mine.pop("channels", None) or {})
        overrides.update(mine)
    if sections:
        overrides["channels"] = sections
    return overrides


async def providers_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run every channel's provider fake for as long as the demo runs."""
    settings = app[keys.SETTINGS]
    async with contextlib.AsyncExitStack() as stack:
        for package, demo in registry.demos().items():
            if hasattr(demo, "provider"):
                await stack.enter_async_context(demo.provider(settings))
                logger.info("demo provider of %s running", package)
        yield


def traffic_ctx(*, rate: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that sends demo contacts at ``rate`` per second on every channel."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[keys.SETTINGS]
        adapters = app[keys.ADAPTERS]
        running = set(adapters)
        sources = [
            demo
            for package, demo in registry.demos().items()
            if running & {info.name for info in registry.channels([package])}
        ]
        known = [address for address, _, _ in CUSTOMERS]
        rng = random.Random()  # noqa: S311 - demo traffic

        async def loop() -> None:
            await asyncio.sleep(2)
            async with aiohttp.ClientSession() as session:
                while True:
                    source = rng.choice(sources)
                    try:
                        await source.contact(session, settings, rng, known)
                    except Exception:
                        logger.exception("demo traffic of %s failed", source.__name__)
                    await asyncio.sleep(rng.expovariate(rate))

        task = asyncio.create_task(loop(), name="demo-traffic")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
