"""Units of work: one transaction that also appends its events, retried on races."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.events import HubEvent
from hub.events import LazyId as LazyId
from hub.stream import InteractionStream, StreamEvent
from storage.models import Event, StreamHead, utcnow

logger = logging.getLogger(__name__)
T = TypeVar("T")

# PostgreSQL serialization failure and deadlock: safe to retry the whole unit.
_RETRY_SQLSTATES = {"40001", "40P01"}


@dataclass(slots=True)
class UnitOfWork:
    """A session plus the events the work will append when it commits."""

    session: AsyncSession
    drafts: list[dict[str, Any]] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    # The automation rules whose actions this work carries out (``hub.workflow``): every
    # event it emits names them, so a rule never fires again on what it caused.
    rule_chain: list[int] | None = None

    def emit(self, event: HubEvent) -> None:
        """Queue a typed event; it gets its seq and is stored at commit."""
        draft = event.to_draft()
        if self.rule_chain:
            draft["payload"]["rule_chain"] = list(self.rule_chain)
        self.drafts.append(draft)


_HEAD = cast(Table, StreamHead.__table__)
_BUMP_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=_HEAD.c.seq + bindparam("n"))
    .returning(_HEAD.c.seq)
)
_INSERT_EVENTS = insert(cast(Table, Event.__table__))


# An event row's columns, in the order the plain sqlite3 insert binds them.
EVENT_COLUMNS = (
    "seq",
    "type",
    "conversation_id",
    "customer_id",
    "agent_id",
    "queue",
    "channel",
    "payload",
    "created_at",
)


def event_rows(drafts: list[dict[str, Any]], last: int, now: datetime) -> list[dict[str, Any]]:
    """The stored rows of a transaction's event drafts, every write path's one numbering.

    ``last`` is the stream head after it was bumped by ``len(drafts)`` under the head row's
    lock (so seqs are gap-free and in commit order); rows flushed since a draft was queued
    give their ids now (``LazyId``).
    """
    first = last - len(drafts) + 1
    rows = []
    for i, draft in enumerate(drafts):
        payload = draft["payload"]
        for key, value in payload.items():
            if isinstance(value, LazyId):
                payload[key] = value.row.id
        rows.append({"seq": first + i, "created_at": now, **draft})
    return rows


def _retryable(err: DBAPIError) -> bool:
    if isinstance(err, IntegrityError):
        return True
    code = getattr(err.orig, "sqlstate", None) or getattr(err.orig, "pgcode", None)
    if code in _RETRY_SQLSTATES:
        return True
    return isinstance(err, OperationalError) and "locked" in str(err.orig).lower()


def to_stream_event(row: Event) -> StreamEvent:
    """A stored event as a stream event."""
    return StreamEvent(
        seq=row.seq,
        type=row.type,
        created_at=row.created_at,
        conversation_id=row.conversation_id,
        customer_id=row.customer_id,
        agent_id=row.agent_id,
        queue=row.queue,
        channel=row.channel,
        payload=row.payload,
    )


class Transactor:
    """Runs units of work: commit, then publish their events in order."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], stream: InteractionStream
    ) -> None:
        self.sessions = sessions
        self.stream = stream

    async def run(self, work: Callable[[UnitOfWork], Awaitable[T]], *, attempts: int = 6) -> T:
        """Run ``work`` in one transaction; retry it whole after a unique-key race."""
        for attempt in range(1, attempts + 1):
            uow = UnitOfWork(self.sessions())
            try:
                async with uow.session.begin():
                    result = await work(uow)
                    events = await self._append(uow)
            except DBAPIError as err:
                await uow.session.close()
                if attempt == attempts or not _retryable(err):
                    raise
                logger.debug("retrying unit of work after %s", type(err).__name__)
                await asyncio.sleep(0.005 * attempt)
                continue
            await uow.session.close()
            if events:
                self.stream.committed(events)
            for callback in uow.after_commit:
                callback()
            return result
        raise AssertionError("unreachable")

    async def read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run read-only work in its own session."""
        async with self.sessions() as session:
            return await work(session)

    async def _append(self, uow: UnitOfWork) -> list[StreamEvent]:
        if not uow.drafts:
            return []
        await uow.session.flush()
        n = len(uow.drafts)
        # Plain Core statements on the session's connection: neither needs the ORM, and its
        # bulk paths cost more than the statements themselves in a one-contact transaction.
        conn = await uow.session.connection()
        # The head row's lock is held to commit, so seqs are gap-free and commit-ordered.
        last = (await conn.execute(_BUMP_HEAD, {"n": n})).scalar_one()
        rows = event_rows(uow.drafts, last, utcnow())
        # One executemany of plain rows: events are never read back into this session, and
        # building an ORM object per event cost more than storing it.
        await conn.execute(_INSERT_EVENTS, rows)
        return [StreamEvent(**r) for r in rows]


async def head_seq(session: AsyncSession) -> int:
    """The last committed event seq."""
    return (await session.execute(select(StreamHead.seq).where(StreamHead.id == 1))).scalar_one()


async def events_between(session: AsyncSession, first: int, last: int) -> list[StreamEvent]:
    """Stored events with ``first <= seq <= last`` in order."""
    rows = await session.scalars(
        select(Event).where(Event.seq >= first, Event.seq <= last).order_by(Event.seq)
    )
    return [to_stream_event(r) for r in rows]
