"""Ingest's fast path: contacts that continue an open conversation, as plain Core statements.

Most inbound traffic is the next message of a conversation already under way: a known
endpoint, the endpoint's newest conversation on that channel still open, no attachments,
references, identifiers or other participants. For such a contact the general path's ORM
work (three entities loaded per contact, a ``Message`` object and its flush) costs several
times the SQL itself. Here a batch made only of such contacts is read as plain rows, its
messages go in as one multi-row insert and its conversations are touched by one update.

A batch holding any other contact (a new customer, a closed conversation to reopen, a
display name to fill in, a reply with references, ...) gets ``None`` back and goes the
general way in the same transaction; nothing has been written by then. The results, the
stored rows and the events are the same as the general path's for these contacts: the
ingest tests run through both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update

from channels.base import InboundMessage, IngestResult
from hub import identity
from hub.uow import UnitOfWork
from storage.models import Conversation, Customer, Endpoint, Message, utcnow

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


async def continue_open(uow: UnitOfWork, contacts: Sequence[Contact]) -> list[IngestResult] | None:
    """Store a batch of contacts that all continue open conversations, or return ``None``."""
    if not all(plain(msg) for msg, _ in contacts):
        return None
    conn = await uow.session.connection()
    known: dict[tuple[str, str], IngestResult] = {}
    ids_by_channel: dict[str, list[str]] = {}
    by_kind: dict[str, list[str]] = {}
    for msg, address in contacts:
        ids_by_channel.setdefault(msg.channel, []).append(msg.provider_id)
        by_kind.setdefault(address.kind, []).append(address.address)
    for channel, ids in ids_by_channel.items():
        for row in await conn.execute(KNOWN, {"channel": channel, "ids": ids}):
            known[(channel, row.provider_id)] = IngestResult(
                customer_id=row.customer_id,
                conversation_id=row.conversation_id,
                message_id=row.id,
                duplicate=True,
            )
    # (endpoint kind, address) -> newest conversations of the endpoint, one per channel and
    # our address
    newest: dict[tuple[str, str], list[Any]] = {}
    for kind, addresses in by_kind.items():
        for found in await conn.execute(_OPEN, {"kind": kind, "addresses": addresses}):
            newest.setdefault((kind, found.address), []).append(found)

    now = utcnow()
    rows: list[dict[str, Any]] = []
    fresh: list[tuple[InboundMessage, identity.EndpointAddress, Any]] = []
    plan: list[IngestResult | tuple[str, str]] = []  # a result, or the key of a new row
    staged: set[tuple[str, str]] = set()
    for msg, address in contacts:
        key = (msg.channel, msg.provider_id)
        if key in known:
            plan.append(known[key])
            continue
        plan.append(key)
        if key in staged:
            continue  # the same provider id twice in one batch: stored once
        staged.add(key)
        conv = _continued(newest.get((address.kind, address.address), ()), msg)
        if conv is None:
            return None
        meta = dict(msg.metadata)
        if msg.subject:
            meta.setdefault("subject", msg.subject)
        rows.append(
            {
                "conversation_id": conv.id,
                "customer_id": conv.customer_id,
                "channel": msg.channel,
                "direction": "in",
                "kind": msg.kind,
                "text": msg.text,
                "provider_id": msg.provider_id,
                "status": "received",
                "metadata": meta,
                "raw": msg.raw,
                "created_at": now,
                "occurred_at": msg.occurred_at,
            }
        )
        fresh.append((msg, address, conv))
    if not rows:
        return [r for r in plan if isinstance(r, IngestResult)]

    ids = (await conn.execute(_INSERT, rows)).scalars().all()
    await conn.execute(_TOUCH, {"ids": sorted({c.id for _, _, c in fresh}), "now": now})
    stored: dict[tuple[str, str], IngestResult] = {}
    for (msg, address, conv), message_id in zip(fresh, ids, strict=True):
        stored[(msg.channel, msg.provider_id)] = IngestResult(
            customer_id=conv.customer_id,
            conversation_id=conv.id,
            message_id=message_id,
            duplicate=False,
        )
        uow.emit(
            "message.received",
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            queue=conv.queue,
            channel=msg.channel,
            message_id=message_id,
            kind=msg.kind,
            direction="in",
            text=msg.text[:500],
            endpoint=address.address,
            attachments=0,
            score=None,
        )
    results: list[IngestResult] = []
    seen: set[tuple[str, str]] = set()
    for item in plan:
        if isinstance(item, IngestResult):
            results.append(item)
            continue
        # a provider id's later copies in the batch are duplicates of its first
        result = stored[item]
        results.append(replace(result, duplicate=True) if item in seen else result)
        seen.add(item)
    return results


def _continued(candidates: Sequence[Any], msg: InboundMessage) -> Any | None:
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
