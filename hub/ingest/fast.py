"""Ingest's fast path: contacts that continue an open conversation, as plain statements.

Most inbound traffic is the next message of a conversation already under way: a known
endpoint, the endpoint's newest conversation on that channel still open, no attachments,
references, identifiers or other participants. For such a contact the general path's ORM
work (three entities loaded per contact, a ``Message`` object and its flush) costs several
times the SQL itself. Here a batch made only of such contacts is read as plain rows, its
messages go in as one multi-row insert and its conversations are touched by one update.
On PostgreSQL these are SQLAlchemy Core statements; on SQLite the same statements go to
the inline connection as bare sqlite3 calls (``InlineContinuation``).

A batch holding any other contact (a new customer, a closed conversation to reopen, a
display name to fill in, a reply with references, ...) gets ``None`` back and goes the
general way in the same transaction; nothing has been written by then. The results, the
stored rows and the events are the same as the general path's for these contacts: the
ingest tests run through both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contract.channel import InboundMessage, IngestResult
from hub.customers import identity
from hub.ingest.rows import MESSAGE_COLUMNS, message_values, received_event
from hub.stream import InteractionStream, StreamEvent
from hub.uow import EVENT_COLUMNS, UnitOfWork, event_rows
from storage.models import Conversation, Customer, Endpoint, Event, Message, utcnow
from storage.sqlite_inline import InlineConnection

OPEN_STATES = ("open", "queued", "offered", "assigned", "wrap_up")

_MESSAGES = cast(Table, Message.__table__)
_ENDPOINTS = cast(Table, Endpoint.__table__)
_CUSTOMERS = cast(Table, Customer.__table__)
_CONVERSATIONS = cast(Table, Conversation.__table__)

# Messages already stored under these provider ids: redeliveries.
KNOWN = select(
    _MESSAGES.c.provider_id,
    _MESSAGES.c.id,
    _MESSAGES.c.conversation_id,
    _MESSAGES.c.customer_id,
).where(
    _MESSAGES.c.channel == bindparam("channel"),
    _MESSAGES.c.provider_id.in_(bindparam("ids", expanding=True)),
)

# Per asked endpoint, its newest conversation on each (channel, our address), with the
# customer's fields a contact may fill in. Endpoints with no conversation are left out:
# their contacts open one, which is the general path's work.
_older = _CONVERSATIONS.alias("older")
_asked = _ENDPOINTS.alias("asked")
_newest = (
    select(func.max(_older.c.id).label("id"))
    .join_from(_older, _asked, _asked.c.id == _older.c.endpoint_id)
    .where(
        _asked.c.kind == bindparam("kind"),
        _asked.c.address.in_(bindparam("addresses", expanding=True)),
    )
    .group_by(_older.c.endpoint_id, _older.c.channel, _older.c.our_address)
    .subquery()
)
_OPEN = (
    select(
        _ENDPOINTS.c.address,
        _ENDPOINTS.c.customer_id,
        _CUSTOMERS.c.display_name,
        _CUSTOMERS.c.language,
        _CONVERSATIONS.c.id,
        _CONVERSATIONS.c.customer_id.label("owner_id"),
        _CONVERSATIONS.c.channel,
        _CONVERSATIONS.c.our_address,
        _CONVERSATIONS.c.state,
        _CONVERSATIONS.c.queue,
    )
    .join_from(_newest, _CONVERSATIONS, _CONVERSATIONS.c.id == _newest.c.id)
    .join(_ENDPOINTS, _ENDPOINTS.c.id == _CONVERSATIONS.c.endpoint_id)
    .join(_CUSTOMERS, _CUSTOMERS.c.id == _ENDPOINTS.c.customer_id)
)
_INSERT = insert(_MESSAGES).returning(_MESSAGES.c.id, sort_by_parameter_order=True)
_TOUCH = (
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id.in_(bindparam("ids", expanding=True)))
    .values(last_inbound_at=bindparam("now"), last_activity_at=bindparam("now"))
)

Contact = tuple[InboundMessage, identity.EndpointAddress]
Key = tuple[str, str]  # (channel, provider id)


class Thread(NamedTuple):
    """The newest conversation of an endpoint on one (channel, our address): ``_OPEN``'s row."""

    address: str  # the endpoint's
    customer_id: int  # the endpoint's customer
    display_name: str
    language: str
    id: int
    owner_id: int  # the conversation's customer
    channel: str
    our_address: str
    state: str
    queue: str


def plain(msg: InboundMessage) -> bool:
    """Whether the message alone allows the fast path (its stored state decides the rest)."""
    return (
        msg.kind == "message"
        and msg.threading == "session"
        and not msg.thread_refs
        and not msg.reply_token
        and not msg.thread_key
        and not msg.attachments
        and not msg.identifiers
        and not msg.participants
    )


@dataclass(slots=True)
class Plan:
    """What a batch of continuing contacts stores: new message rows and their events."""

    now: datetime
    rows: list[dict[str, Any]]
    fresh: list[tuple[InboundMessage, identity.EndpointAddress, Thread]]
    order: list[IngestResult | Key]  # per contact: a redelivery's result, or its new row's key

    @classmethod
    def make(
        cls,
        contacts: Sequence[Contact],
        known: dict[Key, IngestResult],
        newest: dict[tuple[str, str], list[Thread]],
    ) -> Plan | None:
        """The plan, or None when a contact is not a continuation (the general path's)."""
        plan = cls(now=utcnow(), rows=[], fresh=[], order=[])
        staged: set[Key] = set()
        for msg, address in contacts:
            key = (msg.channel, msg.provider_id)
            if key in known:
                plan.order.append(known[key])
                continue
            plan.order.append(key)
            if key in staged:
                continue  # the same provider id twice in one batch: stored once
            staged.add(key)
            conv = _continued(newest.get((address.kind, address.address), ()), msg)
            if conv is None:
                return None
            plan.rows.append(
                message_values(
                    msg, conversation_id=conv.id, customer_id=conv.customer_id, now=plan.now
                )
            )
            plan.fresh.append((msg, address, conv))
        return plan

    def conversation_ids(self) -> list[int]:
        return sorted({conv.id for _, _, conv in self.fresh})

    def events(self, message_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The ``message.received`` drafts of the new rows (``UnitOfWork.drafts``' shape)."""
        return [
            received_event(
                msg,
                conversation_id=conv.id,
                customer_id=conv.customer_id,
                queue=conv.queue,
                endpoint=address.address,
                message_id=message_id,
            ).to_draft()
            for (msg, address, conv), message_id in zip(self.fresh, message_ids, strict=True)
        ]

    def results(self, message_ids: Sequence[int]) -> list[IngestResult]:
        """Per contact, in order; a provider id's later copies are duplicates of its first."""
        stored = {
            (msg.channel, msg.provider_id): IngestResult(
                customer_id=conv.customer_id,
                conversation_id=conv.id,
                message_id=message_id,
                duplicate=False,
            )
            for (msg, _, conv), message_id in zip(self.fresh, message_ids, strict=True)
        }
        out: list[IngestResult] = []
        seen: set[Key] = set()
        for item in self.order:
            if isinstance(item, IngestResult):
                out.append(item)
                continue
            result = stored[item]
            out.append(replace(result, duplicate=True) if item in seen else result)
            seen.add(item)
        return out


def _lookups(contacts: Sequence[Contact]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Provider ids per channel and endpoint addresses per kind, as the reads want them."""
    ids_by_channel: dict[str, list[str]] = {}
    by_kind: dict[str, list[str]] = {}
    for msg, address in contacts:
        ids_by_channel.setdefault(msg.channel, []).append(msg.provider_id)
        by_kind.setdefault(address.kind, []).append(address.address)
    return ids_by_channel, by_kind


def _redelivery(customer_id: int, conversation_id: int, message_id: int) -> IngestResult:
    return IngestResult(
        customer_id=customer_id,
        conversation_id=conversation_id,
        message_id=message_id,
        duplicate=True,
    )


_LOCK_SENDERS = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k"
)


def sender_lock_key(kind: str, address: str) -> int:
    """A sender's advisory lock key: 64 stable bits of its endpoint address."""
    digest = hashlib.blake2b(f"endpoint:{kind}:{address}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_senders(conn: AsyncConnection, contacts: Sequence[Contact]) -> None:
    """On PostgreSQL, lock the batch's senders until commit, in one order.

    Several processes (or requests) may take contacts from one sender at once: each would
    find no open conversation and open its own, reopen the same one twice, store a
    provider's retry twice (failing its whole batch on the unique key), or update the same
    conversations in another order (a deadlock). A lock per sender address serializes them,
    also for addresses no endpoint row exists for yet; SQLite has one writer anyway.
    """
    if conn.dialect.name != "postgresql":
        return
    keys = sorted({sender_lock_key(address.kind, address.address) for _, address in contacts})
    await conn.execute(_LOCK_SENDERS, {"keys": keys})


async def continue_open(uow: UnitOfWork, contacts: Sequence[Contact]) -> list[IngestResult] | None:
    """Store a batch of contacts that all continue open conversations, or return ``None``."""
    if not all(plain(msg) for msg, _ in contacts):
        return None
    conn = await uow.session.connection()
    await lock_senders(conn, contacts)
    known: dict[Key, IngestResult] = {}
    newest: dict[tuple[str, str], list[Thread]] = {}
    ids_by_channel, by_kind = _lookups(contacts)
    for channel, ids in ids_by_channel.items():
        for row in await conn.execute(KNOWN, {"channel": channel, "ids": ids}):
            known[(channel, row.provider_id)] = _redelivery(
                row.customer_id, row.conversation_id, row.id
            )
    for kind, addresses in by_kind.items():
        for found in await conn.execute(_OPEN, {"kind": kind, "addresses": addresses}):
            newest.setdefault((kind, found.address), []).append(Thread._make(found))
    plan = Plan.make(contacts, known, newest)
    if plan is None:
        return None
    if not plan.rows:
        return plan.results([])
    ids = (await conn.execute(_INSERT, plan.rows)).scalars().all()
    await conn.execute(_TOUCH, {"ids": plan.conversation_ids(), "now": plan.now})
    for draft in plan.events(ids):
        uow.drafts.append(draft)
    return plan.results(ids)


def _continued(candidates: Sequence[Thread], msg: InboundMessage) -> Thread | None:
    """The open conversation the contact continues, if the fast path can store it there."""
    matches = [
        c
        for c in candidates
        if c.channel == msg.channel and (msg.recipient is None or c.our_address == msg.recipient)
    ]
    conv = max(matches, key=lambda c: c.id, default=None)
    if conv is None or conv.state not in OPEN_STATES:
        return None  # no conversation yet, or a closed one to reopen or replace
    if conv.owner_id != conv.customer_id:
        return None  # the endpoint writes into someone else's thread: a participant
    if (msg.display_name and not conv.display_name) or (msg.language and not conv.language):
        return None  # the customer's profile gets filled in
    return conv


# ---------------------------------------------------------------------------- SQLite
# The same statements as plain sqlite3 calls on the hub's inline connection
# (``storage.sqlite_inline``). Through SQLAlchemy each statement cost ~0.1 ms of
# compilation-cache lookups, execution contexts, result wrappers and a greenlet, several
# times what SQLite itself spends on it; a contact here is about seven statements.
def _marks(n: int) -> str:
    return ", ".join("?" * n)


_KNOWN_SQL = (
    "SELECT provider_id, id, conversation_id, customer_id FROM messages"
    " WHERE channel = ? AND provider_id IN ({})"
)
_OPEN_SQL = (
    "SELECT e.address, e.customer_id, cu.display_name, cu.language, c.id, c.customer_id,"
    " c.channel, c.our_address, c.state, c.queue"
    " FROM (SELECT max(o.id) AS id FROM conversations AS o"
    " JOIN endpoints AS a ON a.id = o.endpoint_id"
    " WHERE a.kind = ? AND a.address IN ({})"
    " GROUP BY o.endpoint_id, o.channel, o.our_address) AS newest"
    " JOIN conversations AS c ON c.id = newest.id"
    " JOIN endpoints AS e ON e.id = c.endpoint_id"
    " JOIN customers AS cu ON cu.id = e.customer_id"
)
_INSERT_SQL = (
    f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)})"  # noqa: S608 - constant names
    f" VALUES ({_marks(len(MESSAGE_COLUMNS))})"
)
_TOUCH_SQL = "UPDATE conversations SET last_inbound_at = ?, last_activity_at = ? WHERE id IN ({})"
_BUMP_SQL = "UPDATE stream_head SET seq = seq + ? WHERE id = 1 RETURNING seq"
_EVENTS_SQL = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)})"  # noqa: S608 - constant names
    f" VALUES ({_marks(len(EVENT_COLUMNS))})"
)
_EVENTS = cast(Table, Event.__table__)


class InlineContinuation:
    """``continue_open`` for the hub's SQLite database, committed and published by itself.

    Values go through the columns' own SQLAlchemy bind processors, so what is stored is
    byte for byte what the Core path stores. The reads run before the first write opens
    the transaction, as they do through SQLAlchemy (the driver begins at the first write);
    the engine's single connection is what keeps other writers of this process out.
    """

    def __init__(self, engine: AsyncEngine, stream: InteractionStream) -> None:
        self.engine = engine
        self.stream = stream
        dialect = engine.dialect

        def binder(column: Any) -> Any:
            # the dialect's own variant of the type, as SQLAlchemy binds it
            return column.type.dialect_impl(dialect).bind_processor(dialect)

        self._message_bind = [binder(_MESSAGES.c[name]) for name in MESSAGE_COLUMNS]
        self._event_bind = [binder(_EVENTS.c[name]) for name in EVENT_COLUMNS]
        self._time = binder(_CONVERSATIONS.c.last_activity_at)

    async def run(self, contacts: Sequence[Contact]) -> list[IngestResult] | None:
        """Store the batch and publish its events, or return ``None`` having stored nothing."""
        if not all(plain(msg) for msg, _ in contacts):
            return None
        async with self.engine.connect() as conn:
            db = (await conn.get_raw_connection()).driver_connection
            if not isinstance(db, InlineConnection):
                return None  # a threaded SQLite engine: the general path serves it
            plan = await self._plan(db, contacts)
            if plan is None or not plan.rows:
                return None if plan is None else plan.results([])
            try:
                ids, events = await self._write(db, plan)
                await db.commit()
            except BaseException:
                await db.rollback()
                raise
        self.stream.committed(events)
        return plan.results(ids)

    async def _plan(self, db: InlineConnection, contacts: Sequence[Contact]) -> Plan | None:
        known: dict[Key, IngestResult] = {}
        newest: dict[tuple[str, str], list[Thread]] = {}
        ids_by_channel, by_kind = _lookups(contacts)
        for channel, ids in ids_by_channel.items():
            sql = _KNOWN_SQL.format(_marks(len(ids)))
            async with db.execute(sql, (channel, *ids)) as cur:
                for provider_id, message_id, conversation_id, customer_id in await cur.fetchall():
                    known[(channel, provider_id)] = _redelivery(
                        customer_id, conversation_id, message_id
                    )
        for kind, addresses in by_kind.items():
            sql = _OPEN_SQL.format(_marks(len(addresses)))
            async with db.execute(sql, (kind, *addresses)) as cur:
                for row in await cur.fetchall():
                    thread = Thread(*row)
                    newest.setdefault((kind, thread.address), []).append(thread)
        return Plan.make(contacts, known, newest)

    async def _write(self, db: InlineConnection, plan: Plan) -> tuple[list[int], list[StreamEvent]]:
        ids: list[int] = []
        for row in plan.rows:
            values = [
                row[name] if bind is None else bind(row[name])
                for name, bind in zip(MESSAGE_COLUMNS, self._message_bind, strict=True)
            ]
            async with db.execute(_INSERT_SQL, values) as cur:
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
        touched = plan.conversation_ids()
        now = self._time(plan.now) if self._time is not None else plan.now
        await db.execute(_TOUCH_SQL.format(_marks(len(touched))), (now, now, *touched))
        drafts = plan.events(ids)
        async with db.execute(_BUMP_SQL, (len(drafts),)) as cur:
            head = await cur.fetchone()
        assert head is not None
        rows = event_rows(drafts, int(head[0]), plan.now)
        await db.executemany(
            _EVENTS_SQL,
            [
                [
                    row[name] if bind is None else bind(row[name])
                    for name, bind in zip(EVENT_COLUMNS, self._event_bind, strict=True)
                ]
                for row in rows
            ],
        )
        events = [StreamEvent(**row) for row in rows]
        return ids, events
