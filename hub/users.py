"""Accounts and sessions: argon2 password hashes, opaque session tokens."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.auth import Principal, token_hash
from hub.errors import Conflict, InvalidInput
from hub.uow import Transactor, UnitOfWork
from storage.models import Agent, AgentSkill, Skill, UserSession, utcnow

ROLES = ("agent", "supervisor", "admin")
SESSION_TTL = timedelta(hours=12)
_hasher = PasswordHasher()
# Verifying against a dummy hash keeps "no such user" as slow as "wrong password".
_DUMMY_HASH = _hasher.hash("not-a-password")


class Users:
    """Create users, log in and out, resolve sessions."""

    def __init__(self, tx: Transactor) -> None:
        self.tx = tx

    async def create(
        self,
        *,
        username: str,
        password: str,
        role: str = "agent",
        display_name: str = "",
        capacity: dict[str, int] | None = None,
    ) -> int:
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise InvalidInput("password must be at least 8 characters")
        # argon2 is deliberately slow (tens of ms): keep it off the event loop.
        pw_hash = await asyncio.to_thread(_hasher.hash, password)

        async def work(uow: UnitOfWork) -> int:
            if await uow.session.scalar(select(Agent.id).where(Agent.username == username)):
                raise Conflict(f"user {username!r} exists")
            agent = Agent(
                username=username,
                display_name=display_name or username,
                role=role,
                password_hash=pw_hash,
                capacity=capacity
                or {
                    "voice": 1,
                    "sms": 3,
                    "whatsapp": 3,
                    "telegram": 3,
                    "webchat": 3,
                    "email": 5,
                    "api": 3,
                },
            )
            uow.session.add(agent)
            await uow.session.flush()
            uow.emit("agent.created", agent_id=agent.id, username=username, role=role)
            return agent.id

        return await self.tx.run(work)

    async def login(self, username: str, password: str) -> tuple[str, Agent] | None:
        """A new session token for good credentials, else None."""

        async def find(session: AsyncSession) -> Agent | None:
            return await session.scalar(
                select(Agent).where(Agent.username == username, Agent.active.is_(True))
            )

        agent = await self.tx.read(find)
        try:
            await asyncio.to_thread(
                _hasher.verify, agent.password_hash if agent else _DUMMY_HASH, password
            )
        except (VerifyMismatchError, InvalidHashError):
            return None
        if agent is None:
            return None
        token = secrets.token_urlsafe(32)

        async def work(uow: UnitOfWork) -> None:
            now = utcnow()
            await uow.session.execute(delete(UserSession).where(UserSession.expires_at < now))
            uow.session.add(
                UserSession(
                    token_hash=token_hash(token),
                    agent_id=agent.id,
                    created_at=now,
                    expires_at=now + SESSION_TTL,
                )
            )

        await self.tx.run(work)
        return token, agent

    async def logout(self, token: str) -> None:
        async def work(uow: UnitOfWork) -> None:
            await uow.session.execute(
                delete(UserSession).where(UserSession.token_hash == token_hash(token))
            )

        await self.tx.run(work)

    async def principal_for(self, hashed: str) -> Principal | None:
        async def work(session: AsyncSession) -> Principal | None:
            row = (
                await session.execute(
                    select(Agent.id, Agent.role, Agent.username, Agent.display_name)
                    .join(UserSession, UserSession.agent_id == Agent.id)
                    .where(UserSession.token_hash == hashed, UserSession.expires_at > utcnow())
                )
            ).first()
            if row is None:
                return None
            return Principal(
                role=row.role, agent_id=row.id, name=row.username, display_name=row.display_name
            )

        return await self.tx.read(work)


async def set_agent_skills(s: AsyncSession, agent_id: int, levels: Mapping[str, float]) -> None:
    """Replace an agent's skills (proficiency 0-5), creating skills named for the first time."""
    await s.execute(delete(AgentSkill).where(AgentSkill.agent_id == agent_id))
    for name, level in levels.items():
        skill_id = await s.scalar(select(Skill.id).where(Skill.name == name))
        if skill_id is None:
            skill = Skill(name=name)
            s.add(skill)
            await s.flush()
            skill_id = skill.id
        s.add(AgentSkill(agent_id=agent_id, skill_id=skill_id, proficiency=float(level)))
