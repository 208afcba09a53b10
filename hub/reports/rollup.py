"""The report rollups: the event log folded into storage, kept close to the stream head.

The rollup tables (``report_contacts``, ``report_handles``, ``report_agent_intervals``) hold
the facts of ``hub.reports.fold``, kept up to date incrementally: ``catch_up`` reads the
events after ``report_state.last_seq``, loads the open facts they touch, applies the same
fold and writes the changes back in the transaction that advances ``last_seq``. The rollups
are a projection of the event log, never counters: ``rebuild`` drops them and folds again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, TypeVar, cast

import orjson
from aiohttp import web
from sqlalchemy import (
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from hub import events
from hub import reports as r
from hub.supervise import Loop, pause_after_failure
from hub.web import keys
from storage.models import (
    Agent,
    Event,
    ReportAgentInterval,
    ReportContact,
    ReportHandle,
    ReportState,
    StreamHead,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

BATCH = 20_000
CHUNK = 2_000  # ids per IN (...) list
# The background catch-up folds what arrived every ROLLUP_EVERY_S, at most FOLD_SLICE events
# at a time, resting as long as each slice took. A slice costs a dozen statements plus ~12 us
# of folding an event on the loop; on SQLite its reads run on the read engine, so the shared
# connection (and every writer queued behind it) is held only for the slice's writes.
ROLLUP_EVERY_S = 1.0
FOLD_SLICE = 500
CONTACT_FIELDS = tuple(
    f for f in r.ContactFact.__dataclass_fields__ if f not in ("arrival_seq", "conversation_id")
)
HANDLE_FIELDS = tuple(r.HandleFact.__dataclass_fields__)
INTERVAL_FIELDS = ("agent_id", "kind", "state", "started_at", "ended_at", "seq")


def _chunks(items: Sequence[T], n: int = CHUNK) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


# ---------------------------------------------------------------------------- catch-up
async def _state(session: AsyncSession, reads: AsyncSession) -> int:
    last = await reads.scalar(select(ReportState.last_seq).where(ReportState.id == 1))
    if last is None:  # a truncated database: start over
        await session.execute(insert(ReportState).values(id=1, last_seq=0))
        await session.commit()
        return 0
    return int(last)


async def catch_up(
    session: AsyncSession,
    *,
    max_events: int | None = None,
    batch: int = BATCH,
    reader: AsyncSession | None = None,
) -> int:
    """Fold the events committed since the last catch-up; returns the seq folded up to.

    Each batch is read and folded first, then claimed and written in one short transaction:
    the claim moves ``last_seq`` with a compare-and-set, so several processes may fold at
    once and a batch that another one folded meanwhile is dropped, never written twice.
    With ``reader``, a session on a connection of its own (``storage.db.
    create_read_engine``), the reads don't hold ``session``'s connection, which on SQLite
    is the one every writer of the process shares, and they run off the loop's thread.
    """
    reads = reader or session
    bots: frozenset[int] | None = None
    budget = max_events
    while True:
        last = await _state(session, reads)
        head = int(await reads.scalar(select(StreamHead.seq).where(StreamHead.id == 1)) or 0)
        if last > head:  # the event log was reset under us (tests, restores)
            await rebuild(session)
            continue
        if last == head or (budget is not None and budget <= 0):
            if reader is not None:
                await reader.commit()
            await session.commit()
            return last
        upto = min(head, last + (batch if budget is None else min(batch, budget)))
        if bots is None:
            bots = frozenset(
                (await reads.scalars(select(Agent.id).where(Agent.role == "bot"))).all()
            )
        folded = await _fold_range(reads, last, upto, bots)
        if reader is not None:
            await reader.commit()
        claimed = await session.execute(
            update(ReportState)
            .where(ReportState.id == 1, ReportState.last_seq == last)
            .values(last_seq=upto)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            await session.rollback()  # another process folded this range meanwhile
            continue
        if folded is not None:
            await _write(session, *folded)
        await session.commit()
        if budget is not None:
            budget -= upto - last
        if upto == head:
            return upto


async def rebuild(session: AsyncSession) -> None:
    """Drop the rollups; the next catch-up folds the whole event log again."""
    for table in (ReportContact, ReportHandle, ReportAgentInterval):
        await session.execute(delete(table))
    await session.execute(delete(ReportState))
    await session.execute(insert(ReportState).values(id=1, last_seq=0))
    await session.commit()


def _record(row: Any) -> r.EventRecord:
    return r.EventRecord(
        seq=row.seq,
        type=row.type,
        at=row.created_at,
        conversation_id=row.conversation_id,
        agent_id=row.agent_id,
        queue=row.queue,
        channel=row.channel,
        payload=row.payload or {},
    )


# The events the fold reads: CSAT answers among inbound messages, agents' own sends.
_RELEVANT_SQL = (
    # payload as text: orjson decodes it twice as fast as the driver's json codec.
    "SELECT seq, type, created_at, conversation_id, agent_id, queue, channel, payload::text "
    "FROM events WHERE seq > $1 AND seq <= $2 AND type = ANY($3::text[]) "
    "AND (type NOT IN ($4, $5) "
    "OR (type = $5 AND agent_id IS NOT NULL) OR payload->>'kind' = 'csat') "
    "ORDER BY seq"
)

# The same on other databases. The CAST keeps SQLite off the (type, created_at) index: with
# no statistics it preferred that index and read every folded event ever stored (64 ms a
# slice at 200k events, growing with the log) instead of the few in the seq range (0.2 ms).
FOLDED_EVENTS = (
    select(
        Event.seq,
        Event.type,
        Event.created_at,
        Event.conversation_id,
        Event.agent_id,
        Event.queue,
        Event.channel,
        Event.payload,
    )
    .where(
        Event.seq > bindparam("last"),
        Event.seq <= bindparam("upto"),
        sql_cast(Event.type, String).in_(r.FOLDED),
    )
    .where(
        or_(
            Event.type.not_in((events.MessageReceived.TYPE, events.MessageSent.TYPE)),
            and_(Event.type == events.MessageSent.TYPE, Event.agent_id.is_not(None)),
            Event.payload["kind"].as_string() == "csat",
        )
    )
    .order_by(Event.seq)
)


async def _asyncpg(session: AsyncSession) -> Any | None:
    """The session's asyncpg connection on PostgreSQL (fast paths), else None."""
    conn = await session.connection()
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "asyncpg":
        return None
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def _read_events(session: AsyncSession, last: int, upto: int) -> list[r.EventRecord]:
    pg = await _asyncpg(session)
    if pg is not None:
        rows = await pg.fetch(
            _RELEVANT_SQL,
            last,
            upto,
            list(r.FOLDED),
            events.MessageReceived.TYPE,
            events.MessageSent.TYPE,
        )
        return [
            r.EventRecord(
                seq=row[0],
                type=row[1],
                at=row[2],
                conversation_id=row[3],
                agent_id=row[4],
                queue=row[5],
                channel=row[6],
                payload=_payload(row[7]),
            )
            for row in rows
        ]
    result = await session.execute(FOLDED_EVENTS, {"last": last, "upto": upto})
    return [_record(row) for row in result]


def _payload(raw: Any) -> dict[str, Any]:
    # SQLAlchemy's asyncpg dialect installs a json codec on its connections; be ready for both.
    if isinstance(raw, str | bytes):
        raw = orjson.loads(raw)
    return raw if isinstance(raw, dict) else {}


Folded = tuple[r.Folder, set[int], set[int]]


async def _fold_range(
    session: AsyncSession, last: int, upto: int, bots: frozenset[int]
) -> Folded | None:
    """The range's events applied to the facts they touch (loaded), for ``_write``."""
    events = await _read_events(session, last, upto)
    if not events:
        return None
    conversations = sorted({e.conversation_id for e in events if e.conversation_id is not None})
    current, loaded_contacts = await _load_contacts(session, conversations)
    handles = await _load_handles(session, conversations)
    agent_ids = sorted(
        {e.agent_id for e in events if e.agent_id is not None}
        | {h.agent_id for h in handles.values()}
    )
    agents = await _load_agents(session, agent_ids)
    loaded_handles = {h.seq for h in handles.values()}
    folder = r.Folder(bots=bots, current=current, handles=handles, agents=agents)
    folder.apply_all(events)
    return folder, loaded_contacts, loaded_handles


async def _load_contacts(
    session: AsyncSession, conversations: Sequence[int]
) -> tuple[dict[int, r.ContactFact], set[int]]:
    current: dict[int, r.ContactFact] = {}
    for ids in _chunks(conversations):
        latest = (
            select(ReportContact.conversation_id, func.max(ReportContact.arrival_seq).label("seq"))
            .where(ReportContact.conversation_id.in_(ids))
            .group_by(ReportContact.conversation_id)
            .subquery()
        )
        found = await session.scalars(
            select(ReportContact).join(latest, ReportContact.arrival_seq == latest.c.seq)
        )
        for row in found:
            fact = r.ContactFact(
                arrival_seq=row.arrival_seq,
                conversation_id=row.conversation_id,
                **{f: getattr(row, f) for f in CONTACT_FIELDS},
            )
            current[row.conversation_id] = fact
    return current, {c.arrival_seq for c in current.values()}


async def _load_handles(
    session: AsyncSession, conversations: Sequence[int]
) -> dict[int, r.HandleFact]:
    handles: dict[int, r.HandleFact] = {}
    for ids in _chunks(conversations):
        found = await session.scalars(
            select(ReportHandle).where(
                ReportHandle.conversation_id.in_(ids), ReportHandle.released_at.is_(None)
            )
        )
        for row in found:
            handles[row.conversation_id] = r.HandleFact(
                **{f: getattr(row, f) for f in HANDLE_FIELDS}
            )
    return handles


async def _load_agents(session: AsyncSession, agent_ids: Sequence[int]) -> dict[int, r.AgentStatus]:
    agents: dict[int, r.AgentStatus] = {}
    for ids in _chunks(agent_ids):
        opened = await session.scalars(
            select(ReportAgentInterval).where(
                ReportAgentInterval.agent_id.in_(ids), ReportAgentInterval.ended_at.is_(None)
            )
        )
        for row in opened:
            status = agents.setdefault(row.agent_id, r.AgentStatus())
            status.open[row.kind] = r.AgentInterval(
                id=row.id, **{f: getattr(row, f) for f in INTERVAL_FIELDS}
            )
            if row.kind == "state":
                status.state = row.state
        active = await session.execute(
            select(ReportHandle.agent_id, func.count())
            .where(ReportHandle.agent_id.in_(ids), ReportHandle.released_at.is_(None))
            .group_by(ReportHandle.agent_id)
        )
        for agent_id, n in active:
            agents.setdefault(agent_id, r.AgentStatus()).active = int(n)
    return agents


async def _write(
    session: AsyncSession, folder: r.Folder, loaded_contacts: set[int], loaded_handles: set[int]
) -> None:
    new_c: list[dict[str, Any]] = []
    old_c: list[dict[str, Any]] = []
    for c in folder.contacts.values():
        values = {
            "arrival_seq": c.arrival_seq,
            "conversation_id": c.conversation_id,
            "arrived_slot": c.arrived_slot,
            **{f: getattr(c, f) for f in CONTACT_FIELDS},
        }
        (old_c if c.arrival_seq in loaded_contacts else new_c).append(values)
    new_h: list[dict[str, Any]] = []
    old_h: list[dict[str, Any]] = []
    for h in folder.changed_handles.values():
        values = {f: getattr(h, f) for f in HANDLE_FIELDS}
        (old_h if h.seq in loaded_handles else new_h).append(values)
    new_i: list[dict[str, Any]] = []
    old_i: list[dict[str, Any]] = []
    for iv in folder.intervals.values():
        values = {f: getattr(iv, f) for f in INTERVAL_FIELDS}
        if iv.id is None:
            new_i.append(values)
        else:
            old_i.append({"id": iv.id, **values})
    pg = await _asyncpg(session)
    for model, new, old in (
        (ReportContact, new_c, old_c),
        (ReportHandle, new_h, old_h),
        (ReportAgentInterval, new_i, old_i),
    ):
        table = cast(Table, model.__table__)
        if pg is not None and new:
            # COPY is an order of magnitude faster than INSERTs for a backlog of facts.
            columns = list(new[0])
            await pg.copy_records_to_table(
                table.name, records=[tuple(v[c] for c in columns) for v in new], columns=columns
            )
        else:
            for part in _chunks(new):
                await session.execute(insert(table), list(part))
        for part in _chunks(old):
            await session.execute(update(model), list(part))


async def rollup_ctx(app: web.Application) -> AsyncIterator[None]:
    """Keep the rollups close to the stream head in the background (every second)."""
    hub = app[keys.HUB]

    async def fold_in_slices(session: AsyncSession, reader: AsyncSession | None) -> None:
        # Folding is CPU work on the loop. Five seconds of traffic folded in one go (even
        # in slices with a bare turn of the loop between them) held the requests and console
        # frames of that moment for 60-140 ms. Folding every second keeps each slice short,
        # and the rest after a slice leaves the loop at least half its time while a backlog
        # (a restart after downtime) is folded at ~25k events/s. On SQLite the slice's
        # reads go through the read engine: on the shared inline connection its dozen
        # statements held every writer (and the loop) for 10-18 ms a second.
        previous = -1
        while True:
            started = time.perf_counter()
            upto = await catch_up(session, max_events=FOLD_SLICE, batch=FOLD_SLICE, reader=reader)
            # The few events that arrived during the slice wait for the next round: a slice
            # has a fixed cost in statements, whatever it folds (reports catch up on their own).
            if upto == previous or hub.stream.last_seq - upto < FOLD_SLICE // 10:
                return
            previous = upto
            await asyncio.sleep(time.perf_counter() - started)

    async def loop(health: Loop) -> None:
        while True:
            await asyncio.sleep(ROLLUP_EVERY_S)
            try:
                async with contextlib.AsyncExitStack() as stack:
                    session = await stack.enter_async_context(hub.sessions())
                    reader = None
                    if hub.reader is not hub.engine:
                        reader = await stack.enter_async_context(hub.read_sessions())
                    await fold_in_slices(session, reader)
                health.ok()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                await pause_after_failure(health, err, "report rollup catch-up")

    hub.supervisor.spawn("rollup", loop)
    yield
    await hub.supervisor.stop("rollup")
