"""Factories for tests: the floor (teams, queues, agents) and customers' contacts.

Accounts go through ``hub.users`` (real password hashing, real sessions) and contacts
through ``hub.ingest`` (identity, threading, routing and events exactly as a channel
causes them), so a test stands on what production stores. Teams, queues and skills have
no service of their own yet and are written as rows. Every factory works on SQLite and
PostgreSQL alike (the hub's ``db_url`` decides).
"""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from contract.channel import EndpointKind, InboundMessage, IngestResult
from hub.services import Hub
from storage.models import Agent, AgentSkill, Queue, Skill, Team

PASSWORD = "correct horse battery"
_provider_ids = itertools.count(1)


async def team(hub: Hub, name: str) -> int:
    """A team (department); its id."""
    async with hub.sessions() as s, s.begin():
        row = Team(name=name)
        s.add(row)
        await s.flush()
        return row.id


async def queue(
    hub: Hub, name: str, *, team_id: int | None = None, expression: str = "", **fields: Any
) -> int:
    """A queue with one routing step (``expression``, empty: any agent); its id."""
    async with hub.sessions() as s, s.begin():
        row = Queue(
            name=name, team_id=team_id, steps=[{"expression": expression, "timeout_s": None}]
        )
        for key, value in fields.items():
            setattr(row, key, value)
        s.add(row)
        await s.flush()
        return row.id


async def agent(
    hub: Hub,
    username: str,
    *,
    role: str = "agent",
    team_id: int | None = None,
    skills: dict[str, float] | None = None,
    capacity: dict[str, int] | None = None,
) -> int:
    """An account (password ``PASSWORD``) in ``team_id`` with ``skills`` (name: proficiency)."""
    agent_id = await hub.users.create(
        username=username, password=PASSWORD, role=role, capacity=capacity
    )
    if team_id is None and not skills:
        return agent_id
    async with hub.sessions() as s, s.begin():
        (await s.get_one(Agent, agent_id)).team_id = team_id
        for name, proficiency in (skills or {}).items():
            skill = await s.scalar(select(Skill).where(Skill.name == name))
            if skill is None:
                skill = Skill(name=name)
                s.add(skill)
                await s.flush()
            s.add(AgentSkill(agent_id=agent_id, skill_id=skill.id, proficiency=proficiency))
    return agent_id


async def contact(
    hub: Hub,
    sender: str,
    text: str = "hello",
    *,
    channel: str = "api",
    sender_kind: EndpointKind = "phone",
    provider_id: str | None = None,
    **fields: Any,
) -> IngestResult:
    """One inbound contact as a channel hands it over: customer, conversation and message.

    ``fields`` are further ``InboundMessage`` fields (``queue``, ``display_name``, ...).
    """
    result = await hub.ingest(
        InboundMessage(
            channel=channel,
            sender_kind=sender_kind,
            sender=sender,
            provider_id=provider_id or f"factory-{next(_provider_ids)}",
            text=text,
            **fields,
        )
    )
    assert result.conversation_id is not None, "the contact opened no conversation"
    return result


async def two_team_floor(hub: Hub) -> dict[str, int]:
    """Teams A and B with a queue each, their agents, a supervisor of A, an agent of no
    team, an admin; one conversation waiting in each team's queue.

    Returns the ids by name: agents by username, ``conv_a``/``cust_a`` for team A's
    conversation and customer, ``conv_b``/``cust_b`` for team B's."""
    teams = {"A": await team(hub, "A"), "B": await team(hub, "B")}
    await queue(hub, "qa", team_id=teams["A"])
    await queue(hub, "qb", team_id=teams["B"])
    ids: dict[str, int] = {}
    for username, role, member_of in (
        ("ann", "agent", "A"),
        ("bob", "agent", "B"),
        ("nia", "agent", None),
        ("sam", "supervisor", "A"),
        ("ada", "admin", None),
    ):
        ids[username] = await agent(
            hub, username, role=role, team_id=teams[member_of] if member_of else None
        )
    for key, queue_name, sender in (
        ("conv_a", "qa", "+12025550101"),
        ("conv_b", "qb", "+12025550202"),
    ):
        result = await contact(
            hub, sender, f"secret of {queue_name}", provider_id=f"seed-{key}", queue=queue_name
        )
        assert result.conversation_id is not None
        assert result.customer_id is not None
        ids[key] = result.conversation_id
        ids[key.replace("conv", "cust")] = result.customer_id
    return ids


async def login(client: TestClient[Any, Any], username: str) -> aiohttp.CookieJar:
    """A browser-like cookie jar logged in as ``username`` through ``POST /login``."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        resp = await session.post(
            client.make_url("/login"), json={"username": username, "password": PASSWORD}
        )
        assert resp.status == 200, await resp.text()
    return jar
