"""Accounts and sessions: argon2 password hashes, opaque session tokens."""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contract.errors import Conflict, Forbidden, InvalidInput, Throttled
from hub import events
from hub.accounts.principal import Principal, token_hash
from hub.audit import record
from hub.uow import Transactor, UnitOfWork
from hub.web.throttle import LoginThrottle
from storage.models import Agent, AgentSkill, Skill, UserSession, utcnow

logger = logging.getLogger(__name__)
T = TypeVar("T")

ROLES = ("agent", "supervisor", "admin")
SESSION_TTL = timedelta(hours=12)
SEEN_EVERY = timedelta(minutes=1)
_hasher = PasswordHasher()
# Verifying against a dummy hash keeps "no such user" as slow as "wrong password".
_DUMMY_HASH = _hasher.hash("not-a-password")
# argon2 takes tens of ms and 64 MiB a hash: two threads of its own, so a burst of logins
# neither queues behind nor starves the default executor (WAL checkpoints, DNS), and at most
# HASH_QUEUE hashes wait; beyond that a login is told to retry rather than pile up memory.
_ARGON2 = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")
HASH_QUEUE = 32


class Users:
    """Create users, log in and out, resolve sessions."""

    def __init__(
        self,
        tx: Transactor,
        *,
        idle: timedelta = timedelta(hours=8),
        default_capacity: Mapping[str, int] | None = None,
    ) -> None:
        self.tx = tx
        self.idle = idle
        # A new agent's capacity per channel (the registered channels' defaults).
        self.default_capacity = dict(default_capacity or {})
        self.throttle = LoginThrottle()
        self._hash_slots = asyncio.Semaphore(HASH_QUEUE)

    async def _argon2(self, fn: Callable[..., T], *args: str) -> T:
        if self._hash_slots.locked():
            raise Throttled("too many logins at once; try again shortly", retry_after=1)
        async with self._hash_slots:
            return await asyncio.get_running_loop().run_in_executor(_ARGON2, fn, *args)

    async def create(
        self,
        *,
        username: str,
        password: str,
        role: str = "agent",
        display_name: str = "",
        capacity: dict[str, int] | None = None,
        demo: bool = False,
    ) -> int:
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise InvalidInput("password must be at least 8 characters")
        pw_hash = await self._argon2(_hasher.hash, password)

        async def work(uow: UnitOfWork) -> int:
            if await uow.session.scalar(select(Agent.id).where(Agent.username == username)):
                raise Conflict(f"user {username!r} exists")
            agent = Agent(
                username=username,
                display_name=display_name or username,
                role=role,
                password_hash=pw_hash,
                demo=demo,
                capacity=capacity or dict(self.default_capacity),
            )
            uow.session.add(agent)
            await uow.session.flush()
            uow.emit(events.AgentCreated(agent_id=agent.id, username=username, role=role))
            return agent.id

        return await self.tx.run(work)

    async def hash_password(self, password: str) -> str:
        """An argon2 hash of a new password (at least 8 characters)."""
        if len(password) < 8:
            raise InvalidInput("password must be at least 8 characters")
        return await self._argon2(_hasher.hash, password)

    async def login(
        self, username: str, password: str, *, address: str = "-"
    ) -> tuple[str, Agent] | None:
        """A new session token for good credentials, else None; ``Throttled`` after repeated
        failures for the username or from the address (the password is not even checked)."""
        wait = self.throttle.retry_after(username=username, address=address)
        if wait > 0:
            logger.warning("login for %r from %s throttled (%.0f s)", username[:100], address, wait)
            raise Throttled("too many failed logins; try again later", retry_after=math.ceil(wait))

        async def find(session: AsyncSession) -> Agent | None:
            return await session.scalar(
                select(Agent).where(Agent.username == username, Agent.active.is_(True))
            )

        agent = await self.tx.read(find)
        try:
            await self._argon2(
                _hasher.verify, agent.password_hash if agent else _DUMMY_HASH, password
            )
        except (VerifyMismatchError, InvalidHashError):
            agent = None
        if agent is None:
            self.throttle.failed(username=username, address=address)
            logger.warning("login failed for %r from %s", username[:100], address)

            async def failed(uow: UnitOfWork) -> None:
                _audit(uow, username, "login.failed", None, address)

            await self.tx.run(failed)
            return None
        self.throttle.succeeded(username=username)
        logger.info("login: %s (%s) from %s", agent.username, agent.role, address)
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
            _audit(uow, agent.username, "login", agent.id, address)

        await self.tx.run(work)
        return token, agent

    async def logout(self, token: str, *, address: str = "-") -> None:
        """End one session; that browser's open consoles close with it."""
        hashed = token_hash(token)

        async def work(uow: UnitOfWork) -> None:
            row = (
                await uow.session.execute(
                    delete(UserSession)
                    .where(UserSession.token_hash == hashed)
                    .returning(UserSession.agent_id)
                )
            ).first()
            if row is None:
                return
            username = await uow.session.scalar(select(Agent.username).where(Agent.id == row[0]))
            _audit(uow, username or "?", "logout", row[0], address)
            uow.emit(events.AgentSessionsEnded(agent_id=row[0], session_hashes=[hashed]))

        await self.tx.run(work)

    async def principal_for(self, hashed: str) -> Principal | None:
        """The person of a live session: not expired, not idle past the limit, active."""
        now = utcnow()

        async def work(session: AsyncSession) -> Any:
            return (
                await session.execute(
                    select(
                        Agent.id,
                        Agent.role,
                        Agent.username,
                        Agent.display_name,
                        Agent.team_id,
                        UserSession.created_at,
                        UserSession.last_seen_at,
                    )
                    .join(UserSession, UserSession.agent_id == Agent.id)
                    .where(
                        UserSession.token_hash == hashed,
                        UserSession.expires_at > now,
                        Agent.active.is_(True),
                    )
                )
            ).first()

        row = await self.tx.read(work)
        if row is None:
            return None
        seen = row.last_seen_at or row.created_at
        if now - seen > self.idle:
            return None
        if now - seen > SEEN_EVERY:
            # At most one write a minute per session, not one per request; the condition
            # makes a burst of requests that all read the old time change the row once.
            async def touch(uow: UnitOfWork) -> None:
                await uow.session.execute(
                    update(UserSession)
                    .where(
                        UserSession.token_hash == hashed,
                        or_(
                            UserSession.last_seen_at.is_(None),
                            UserSession.last_seen_at <= now - SEEN_EVERY,
                        ),
                    )
                    .values(last_seen_at=now)
                )

            await self.tx.run(touch)
        return Principal(
            role=row.role,
            agent_id=row.id,
            name=row.username,
            display_name=row.display_name,
            team_ids=frozenset() if row.team_id is None else frozenset({row.team_id}),
            session_hash=hashed,
        )

    async def change_password(
        self, principal: Principal, *, current: str, new: str, address: str
    ) -> None:
        """Change one's own password; every other session of the user ends."""
        if len(new) < 8:
            raise InvalidInput("the new password must be at least 8 characters")
        agent_id = principal.agent_id

        async def find(session: AsyncSession) -> str:
            return (
                await session.scalar(select(Agent.password_hash).where(Agent.id == agent_id)) or ""
            )

        try:
            await self._argon2(_hasher.verify, await self.tx.read(find) or _DUMMY_HASH, current)
        except (VerifyMismatchError, InvalidHashError):
            raise Forbidden("the current password is wrong") from None
        new_hash = await self._argon2(_hasher.hash, new)

        async def work(uow: UnitOfWork) -> None:
            agent = await uow.session.get_one(Agent, agent_id)
            agent.password_hash = new_hash
            others = (
                (
                    await uow.session.execute(
                        delete(UserSession)
                        .where(
                            UserSession.agent_id == agent_id,
                            UserSession.token_hash != (principal.session_hash or ""),
                        )
                        .returning(UserSession.token_hash)
                    )
                )
                .scalars()
                .all()
            )
            _audit(uow, agent.username, "password.change", agent_id, address)
            uow.emit(events.AgentSessionsEnded(agent_id=agent_id, session_hashes=list(others)))

        await self.tx.run(work)

    async def logout_everywhere(self, principal: Principal, *, address: str) -> None:
        """End every session of the user (this one too); all their consoles close."""
        agent_id = principal.agent_id
        assert agent_id is not None

        async def work(uow: UnitOfWork) -> None:
            await end_sessions(uow, agent_id)
            _audit(uow, principal.name, "logout.everywhere", agent_id, address)

        await self.tx.run(work)


def _audit(uow: UnitOfWork, actor: str, action: str, agent_id: int | None, address: str) -> None:
    """An audit entry about a person's own session (never with the password)."""
    record(
        uow,
        actor=actor,
        action=action,
        target_type="agent",
        target_id=agent_id,
        ip="" if address == "-" else address,
    )


async def end_sessions(uow: UnitOfWork, agent_id: int) -> None:
    """End every login session of a user; their open consoles close at once (the gateway
    follows ``agent.sessions_ended``)."""
    await uow.session.execute(delete(UserSession).where(UserSession.agent_id == agent_id))
    uow.emit(events.AgentSessionsEnded(agent_id=agent_id, all=True))


def check_agent_change(
    actor: Principal, target_role: str, new_role: str | None, deactivate: bool
) -> None:
    """Refuse (``Forbidden``, a 403) an account change the actor may not make: only admins
    (and admin-scoped tokens) touch an admin's role or activity or make anyone an admin.

    ``target_role`` is the account's role now, ``new_role`` the one asked for (None: no
    change), ``deactivate`` whether the change turns the account off.
    """
    if new_role is not None and new_role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    if actor.role == "admin" or (actor.is_token and "admin" in actor.scopes):
        return
    if actor.role != "supervisor" or actor.is_token:
        raise Forbidden("only supervisors and admins change accounts")
    if target_role == "admin" and (deactivate or (new_role not in (None, "admin"))):
        raise Forbidden("a supervisor may not deactivate or demote an admin")
    if new_role == "admin" and target_role != "admin":
        raise Forbidden("only an admin may make someone an admin")


def record_agent_change(
    uow: UnitOfWork,
    *,
    actor: Principal,
    agent_id: int,
    ip: str,
    role: tuple[str, str] | None = None,
    active: tuple[bool, bool] | None = None,
    team: tuple[str | None, str | None] | None = None,
) -> None:
    """Audit what changed in an account, each as (before, after); unchanged pairs write
    nothing. Actions: ``agent.role``, ``agent.team``, ``agent.deactivate``, ``agent.activate``."""

    def entry(action: str, details: dict[str, object]) -> None:
        record(
            uow,
            actor=actor.name,
            action=action,
            target_type="agent",
            target_id=agent_id,
            details=details,
            ip=ip,
        )

    if role is not None and role[0] != role[1]:
        entry("agent.role", {"from": role[0], "to": role[1]})
    if team is not None and team[0] != team[1]:
        entry("agent.team", {"from": team[0], "to": team[1]})
    if active is not None and active[0] != active[1]:
        entry("agent.activate" if active[1] else "agent.deactivate", {})


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
