"""Leases in the database: one holder at a time, with a fencing token.

The router must run in exactly one process. Its lease is a row of ``leases``: the holder
renews it every ``ttl / 5``; a holder that stops renewing (killed, cut off) loses it once
it expires, and another process takes it. Every acquisition adds one to ``token``. Work
done under the lease (an offer) checks in its own transaction that the token is still the
current one and holds the row shared until it commits (``check_fence``), so an old holder
that has not noticed its loss can no longer write, and the new holder's acquisition waits
for any such write in flight. The lease lives next to the data it guards, so the check is
in the same transaction as the write it fences, which a lock in another system could not
give. Times come from each process's clock; the processes' clocks must agree to well
within the TTL (NTP does).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.errors import HubError
from storage.models import Lease as LeaseRow
from storage.models import utcnow

logger = logging.getLogger(__name__)

ROUTER = "router"


class LeaseLost(HubError):
    """Work under a lease found that the lease has another token now."""


@dataclass(frozen=True, slots=True)
class Fence:
    """What work under a lease checks before it writes."""

    name: str
    holder: str
    token: int


async def check_fence(session: AsyncSession, fence: Fence) -> None:
    """Raise ``LeaseLost`` unless ``fence`` is current; hold the lease row shared until the
    transaction ends (a competing acquisition waits for it)."""
    row = (
        await session.execute(
            select(LeaseRow.holder, LeaseRow.token)
            .where(LeaseRow.name == fence.name)
            .with_for_update(read=True)
        )
    ).one_or_none()
    if row is None or row.holder != fence.holder or row.token != fence.token:
        raise LeaseLost(f"lease {fence.name} token {fence.token} is no longer current")


class Lease:
    """This process's claim on one named lease."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        name: str,
        holder: str,
        ttl_s: float,
    ) -> None:
        self.sessions = sessions
        self.name = name
        self.holder = holder
        self.ttl_s = ttl_s
        self.token: int | None = None
        # Monotonic time until which this process may act as holder without renewing.
        self._valid_until = 0.0

    @property
    def renew_every_s(self) -> float:
        return self.ttl_s / 5

    @property
    def held(self) -> bool:
        """Held, and renewed recently enough that no other process can have taken it."""
        return self.token is not None and time.monotonic() < self._valid_until

    def fence(self) -> Fence:
        if self.token is None:
            raise LeaseLost(f"lease {self.name} is not held")
        return Fence(self.name, self.holder, self.token)

    async def acquire(self) -> bool:
        """Take the lease if it is free or expired (or already ours); True if held now."""
        started = time.monotonic()
        now = utcnow()
        expires = now + timedelta(seconds=self.ttl_s)
        async with self.sessions() as s, s.begin():
            token = (
                await s.execute(
                    update(LeaseRow)
                    .where(
                        LeaseRow.name == self.name,
                        (LeaseRow.expires_at <= now) | (LeaseRow.holder == self.holder),
                    )
                    .values(holder=self.holder, token=LeaseRow.token + 1, expires_at=expires)
                    .returning(LeaseRow.token)
                )
            ).scalar_one_or_none()
            if token is None:
                exists = await s.scalar(select(LeaseRow.name).where(LeaseRow.name == self.name))
                if exists is not None:
                    return False
                s.add(LeaseRow(name=self.name, holder=self.holder, token=1, expires_at=expires))
                token = 1
        self.token = token
        self._valid_until = started + self.ttl_s
        logger.info("lease %s acquired by %s (token %s)", self.name, self.holder, token)
        return True

    async def try_acquire(self) -> bool:
        """``acquire``, where losing the race to create the row counts as not acquiring."""
        try:
            return await self.acquire()
        except IntegrityError:
            return False

    async def renew(self) -> bool:
        """Extend the lease; False (and no longer held) if another process took it."""
        if self.token is None:
            return False
        started = time.monotonic()
        now = utcnow()
        async with self.sessions() as s, s.begin():
            kept = (
                await s.execute(
                    update(LeaseRow)
                    .where(
                        LeaseRow.name == self.name,
                        LeaseRow.holder == self.holder,
                        LeaseRow.token == self.token,
                    )
                    .values(expires_at=now + timedelta(seconds=self.ttl_s))
                    .returning(LeaseRow.token)
                )
            ).scalar_one_or_none()
        if kept is None:
            logger.warning(
                "lease %s token %s was taken from %s", self.name, self.token, self.holder
            )
            self.token = None
            return False
        self._valid_until = started + self.ttl_s
        return True

    async def release(self) -> None:
        """Give the lease up now (a clean shutdown), so another process takes it at once."""
        token, self.token = self.token, None
        if token is None:
            return
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(LeaseRow)
                .where(
                    LeaseRow.name == self.name,
                    LeaseRow.holder == self.holder,
                    LeaseRow.token == token,
                )
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        logger.info("lease %s released by %s", self.name, self.holder)

    def drop(self) -> None:
        """Forget the lease without telling the database (it could not be renewed in time)."""
        self.token = None
