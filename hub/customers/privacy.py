"""Data protection: a customer's export and erasure, and the retention purge of old content.

Erasure keeps every row that reports and KPIs count (conversations, messages, events with
their ids, channels, directions, kinds, times, states, CSAT scores) and removes what says
who the person is or what they wrote: texts, metadata, raw bodies, files, addresses,
profile fields, and the same fields in the event log. The retention purge removes the
content (not the identity) of conversations closed long enough ago.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
import zipfile
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import IO, Any

from aiohttp import web
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from contract.errors import Conflict, NotFound
from hub import queries
from hub.audit import record
from hub.events import CustomerUpdated
from hub.supervise import Loop, pause_after_failure
from hub.uow import Transactor, UnitOfWork
from hub.web import keys
from hub.web.api.schemas import ConversationOut, CustomerOut, MessageOut, Model
from storage.models import (
    AuditEntry,
    Conversation,
    Customer,
    Endpoint,
    Event,
    Message,
    MessageAttachment,
    OutboxItem,
    utcnow,
)

logger = logging.getLogger(__name__)

# Event payload fields that carry what a person wrote or sent (message texts, offer
# previews, transfer notes, file names).
CONTENT_KEYS = frozenset({"text", "preview", "note", "filename"})
# ... and those that say who the person is (addresses, names, profile changes, identity
# flags and provider errors quoting an address). Reports read none of these.
IDENTITY_KEYS = frozenset(
    {"endpoint", "customer_name", "changes", "flag", "detail", "language", "error_message"}
)
PERSONAL_KEYS = CONTENT_KEYS | IDENTITY_KEYS
# Message metadata an export leaves out: reply options and provider receipts (provider
# internals), anything named like a credential.
_HIDDEN_META = frozenset({"options", "provider", "raw"})
_SECRET_META = re.compile(r"token|secret|password|signature|auth", re.IGNORECASE)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
ERASED = "erased"
RETENTION_EVERY_S = 86_400.0
PURGE_BATCH = 200
CHUNK = 1 << 18  # bytes per read of a built archive


# ---------------------------------------------------------------------------- audit


def audit(
    s: AsyncSession,
    *,
    actor: str,
    ip: str,
    action: str,
    target_type: str,
    target_id: int | None,
    details: dict[str, Any],
) -> AuditEntry:
    """Append an audit entry in the caller's transaction."""
    return record(
        s,
        actor=actor,
        ip=ip,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details,
    )


# ---------------------------------------------------------------------------- export


class MergeRecord(Model):
    """A merge or unmerge the customer took part in (from the audit log)."""

    audit_id: int
    action: str
    actor: str
    created_at: datetime
    details: dict[str, Any]


class ExportCustomer(CustomerOut):
    """The profile with its endpoints, the customers merged into it, and merge history."""

    erased_at: datetime | None
    merged_customers: list[CustomerOut]
    merges: list[MergeRecord]


class ExportConversation(ConversationOut):
    """A conversation with all its messages (texts, notes, CSAT, attachment listings)."""

    messages: list[MessageOut]


class ExportOut(Model):
    """Everything stored about a customer (the ZIP's two JSON files in one)."""

    customer: ExportCustomer
    conversations: list[ExportConversation]


class ExportFile(Model):
    """An attachment stored for the customer: its path inside the archive."""

    attachment_id: int
    path: str


class Export(Model):
    """What an export holds: the documents and the files to copy into the archive."""

    document: ExportOut
    files: list[ExportFile]


def safe_filename(name: str) -> str:
    """A file name safe in any archive and file system (no paths, no odd characters)."""
    cleaned = _UNSAFE_NAME.sub("_", name).strip("._")[:100]
    return cleaned or "attachment"


def _public_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in _HIDDEN_META and not _SECRET_META.search(k)}


async def merged_into(s: AsyncSession, customer_id: int) -> list[int]:
    """The customer and every customer merged into it (directly or through another)."""
    found = [customer_id]
    frontier = [customer_id]
    while frontier:
        frontier = list(
            await s.scalars(select(Customer.id).where(Customer.merged_into_id.in_(frontier)))
        )
        frontier = [c for c in frontier if c not in found]
        found += frontier
    return found


async def _merges(s: AsyncSession, ids: list[int]) -> list[MergeRecord]:
    rows = await s.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.action.in_(("customer.merge", "customer.unmerge")),
            or_(
                AuditEntry.target_id.in_(ids),
                AuditEntry.details["absorbed_id"].as_integer().in_(ids),
                AuditEntry.details["restored_id"].as_integer().in_(ids),
            ),
        )
        .order_by(AuditEntry.id)
    )
    return [
        MergeRecord(
            audit_id=a.id,
            action=a.action,
            actor=a.actor,
            created_at=a.created_at,
            # When this customer was the one absorbed, the saved profile is the other one's.
            details={
                k: v for k, v in a.details.items() if a.target_id in ids or k != "survivor_before"
            },
        )
        for a in rows
    ]


async def export_customer(s: AsyncSession, customer_id: int) -> Export:
    """Everything stored about a customer, and the stored files to add to the archive."""
    customer = await s.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    ids = await merged_into(s, customer_id)
    others = (await s.scalars(select(Customer).where(Customer.id.in_(ids[1:])))).all()
    profile = ExportCustomer(
        **(await queries.customer_out(s, customer)).model_dump(),
        erased_at=customer.erased_at,
        merged_customers=[await queries.customer_out(s, c) for c in others],
        merges=await _merges(s, ids),
    )
    conversations = []
    files = []
    convs = await s.scalars(
        select(Conversation).where(Conversation.customer_id.in_(ids)).order_by(Conversation.id)
    )
    for conv in convs.all():
        rows = (
            await s.scalars(
                select(Message).where(Message.conversation_id == conv.id).order_by(Message.id)
            )
        ).all()
        messages = [
            m.model_copy(update={"metadata": _public_meta(m.metadata)})
            for m in await queries.messages_out(s, rows)
        ]
        for m in messages:
            files += [
                ExportFile(
                    attachment_id=a.id, path=f"attachments/{a.id}-{safe_filename(a.filename)}"
                )
                for a in m.attachments
                if a.url is not None
            ]
        out = await queries.conversation_out(s, conv)
        conversations.append(ExportConversation(**out.model_dump(), messages=messages))
    return Export(document=ExportOut(customer=profile, conversations=conversations), files=files)


async def write_archive(tx: Transactor, export: Export) -> IO[bytes]:
    """The export as a ZIP in a spooled temporary file (rewound); zipping runs in a thread
    and attachments are read one at a time, so a large export holds neither the loop nor
    more than one file in memory."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - returned
    archive = zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED)
    try:
        doc = export.document
        customer = doc.customer.model_dump_json(indent=2)
        conversations = "[" + ",\n".join(c.model_dump_json(indent=2) for c in doc.conversations)
        await asyncio.to_thread(archive.writestr, "customer.json", customer)
        await asyncio.to_thread(archive.writestr, "conversations.json", conversations + "]")
        for f in export.files:
            data = await tx.read(partial(_attachment_bytes, attachment_id=f.attachment_id))
            if data is not None:
                await asyncio.to_thread(archive.writestr, f.path, data)
        await asyncio.to_thread(archive.close)
    except BaseException:
        archive.close()
        spool.close()
        raise
    spool.seek(0)
    return spool


async def _attachment_bytes(s: AsyncSession, *, attachment_id: int) -> bytes | None:
    row = await s.get(MessageAttachment, attachment_id, options=[undefer(MessageAttachment.data)])
    return None if row is None else row.data


async def record_export(
    tx: Transactor, customer_id: int, export: Export, *, actor: str, ip: str
) -> None:
    """The audit entry of an export."""
    doc = export.document

    async def work(uow: UnitOfWork) -> None:
        audit(
            uow.session,
            actor=actor,
            ip=ip,
            action="customer.export",
            target_type="customer",
            target_id=customer_id,
            details={
                "conversations": len(doc.conversations),
                "messages": sum(len(c.messages) for c in doc.conversations),
                "attachments": len(export.files),
            },
        )

    await tx.run(work)


# ---------------------------------------------------------------------------- erasure


class Counts(Model):
    """How many rows an erasure or a purge changed."""

    conversations: int = 0
    messages: int = 0
    attachments: int = 0
    events: int = 0


class ErasedOut(Counts):
    """The tombstone an erasure leaves and what it changed."""

    customer_id: int
    erased_at: datetime
    customers: list[int]
    endpoints: int
    audit_id: int


def _blank(value: Any) -> Any:
    if isinstance(value, str):
        return ""
    if isinstance(value, list):
        return []
    if isinstance(value, dict):
        return {}
    return None


def scrub(payload: Mapping[str, Any], fields: frozenset[str]) -> dict[str, Any] | None:
    """``payload`` with ``fields`` blanked, or None when none of them holds anything."""
    if not any(payload.get(k) not in (None, "", [], {}) for k in fields):
        return None
    return {k: _blank(v) if k in fields else v for k, v in payload.items()}


async def _scrub_events(s: AsyncSession, where: ColumnElement[bool], fields: frozenset[str]) -> int:
    rows = (await s.execute(select(Event.seq, Event.payload).where(where))).all()
    changed = [
        {"seq": seq, "payload": clean}
        for seq, payload in rows
        if (clean := scrub(payload or {}, fields)) is not None
    ]
    if changed:
        await s.execute(update(Event), changed)  # ORM bulk UPDATE by primary key
    return len(changed)


async def _clear_messages(s: AsyncSession, where: ColumnElement[bool]) -> tuple[int, int]:
    """Remove what messages say (texts, metadata, raw bodies, provider errors, files);
    their rows, times, kinds and statuses stay. Returns (messages, attachments)."""
    ids = select(Message.id).where(where).scalar_subquery()
    files = await s.execute(
        update(MessageAttachment)
        .where(MessageAttachment.message_id.in_(ids))
        .values(
            data=None,
            filename="",
            source=None,
            state="failed",
            error=ERASED,
            next_attempt_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    # A reply still waiting for the outbox would go out empty to a released address.
    await s.execute(
        update(OutboxItem)
        .where(OutboxItem.message_id.in_(ids), OutboxItem.state == "pending")
        .values(state="dead", last_error=ERASED)
        .execution_options(synchronize_session=False)
    )
    await s.execute(
        update(OutboxItem)
        .where(OutboxItem.message_id.in_(ids), OutboxItem.state != "dead")
        .values(last_error="")
        .execution_options(synchronize_session=False)
    )
    msgs = await s.execute(
        update(Message)
        .where(where)
        .values(text="", meta={}, raw=None, error_message="")
        .execution_options(synchronize_session=False)
    )
    return msgs.rowcount or 0, files.rowcount or 0  # type: ignore[attr-defined]


async def erase_customer(tx: Transactor, customer_id: int, *, actor: str, ip: str) -> ErasedOut:
    """Erase a customer's personal data, leaving a tombstone that KPIs still count."""

    async def work(uow: UnitOfWork) -> ErasedOut:
        s = uow.session
        customer = await s.get(Customer, customer_id)
        if customer is None:
            raise NotFound(f"customer {customer_id} not found")
        if customer.merged_into_id is not None:
            raise Conflict(
                f"customer {customer_id} was merged into {customer.merged_into_id}: erase that one"
            )
        ids = await merged_into(s, customer_id)
        conv_ids = list(
            await s.scalars(select(Conversation.id).where(Conversation.customer_id.in_(ids)))
        )
        messages, attachments = await _clear_messages(
            s, or_(Message.customer_id.in_(ids), Message.conversation_id.in_(conv_ids))
        )
        await s.execute(
            update(Conversation)
            .where(Conversation.id.in_(conv_ids))
            .values(subject="", participants=[], thread_key=None)
            .execution_options(synchronize_session=False)
        )
        endpoints = list(await s.scalars(select(Endpoint).where(Endpoint.customer_id.in_(ids))))
        for ep in endpoints:
            # A unique tombstone frees the address: the same phone or email may be a new
            # customer later, and the erased customer's conversations keep their endpoint.
            ep.address = f"{ERASED}:{ep.id}"
            ep.verified = False
            ep.opted_out = []
            ep.undeliverable = ""
        now = utcnow()
        for c in (await s.scalars(select(Customer).where(Customer.id.in_(ids)))).all():
            c.display_name = ""
            c.language = ""
            c.tags = []
            c.attributes = {}
            c.flags = []
            c.erased_at = now
        # The profile a merge saved for its undo is personal data too.
        for entry in (
            await s.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "customer.merge", AuditEntry.target_id.in_(ids)
                )
            )
        ).all():
            before = {k: _blank(v) for k, v in entry.details.get("survivor_before", {}).items()}
            entry.details = {**entry.details, "survivor_before": before}
        events = await _scrub_events(
            s,
            or_(Event.customer_id.in_(ids), Event.conversation_id.in_(conv_ids)),
            PERSONAL_KEYS,
        )
        counts = {
            "conversations": len(conv_ids),
            "messages": messages,
            "attachments": attachments,
            "events": events,
        }
        entry = audit(
            s,
            actor=actor,
            ip=ip,
            action="customer.erase",
            target_type="customer",
            target_id=customer_id,
            details={**counts, "customers": ids, "endpoints": len(endpoints)},
        )
        await s.flush()
        uow.emit(
            CustomerUpdated(
                customer_id=customer_id,
                actor=actor,
                changes={"display_name": "", "language": "", "tags": [], "attributes": {}},
            )
        )
        return ErasedOut(
            customer_id=customer_id,
            erased_at=now,
            customers=ids,
            endpoints=len(endpoints),
            audit_id=entry.id,
            **counts,
        )

    return await tx.run(work)


# ---------------------------------------------------------------------------- retention


async def purge_closed_before(
    tx: Transactor, cutoff: datetime, *, batch: int = PURGE_BATCH
) -> Counts:
    """Remove the content (texts, metadata, raw bodies, files, subjects and the texts in
    their events) of conversations closed before ``cutoff``; audited when any was purged.

    Works in transactions of ``batch`` conversations; a purged conversation has nothing
    left to find, so a later run (or one after a crash) picks up only what remains."""
    has_text = or_(Message.text != "", Message.raw.is_not(None))
    has_file = (
        select(MessageAttachment.id)
        .join(Message, Message.id == MessageAttachment.message_id)
        .where(
            Message.conversation_id == Conversation.id,
            or_(
                MessageAttachment.data.is_not(None),
                MessageAttachment.source.is_not(None),
                MessageAttachment.filename != "",
            ),
        )
        .exists()
    )
    due = (
        select(Conversation.id)
        .where(
            Conversation.state.in_(("closed", "abandoned")),
            Conversation.closed_at < cutoff,
            or_(
                select(Message.id)
                .where(Message.conversation_id == Conversation.id, has_text)
                .exists(),
                has_file,
                Conversation.subject != "",
            ),
        )
        .order_by(Conversation.id)
        .limit(batch)
    )
    total = Counts()

    async def work(uow: UnitOfWork) -> Counts:
        s = uow.session
        conv_ids = list(await s.scalars(due))
        if not conv_ids:
            return Counts()
        messages, attachments = await _clear_messages(s, Message.conversation_id.in_(conv_ids))
        await s.execute(
            update(Conversation)
            .where(Conversation.id.in_(conv_ids))
            .values(subject="")
            .execution_options(synchronize_session=False)
        )
        events = await _scrub_events(s, Event.conversation_id.in_(conv_ids), CONTENT_KEYS)
        return Counts(
            conversations=len(conv_ids), messages=messages, attachments=attachments, events=events
        )

    while True:
        done = await tx.run(work)
        if not done.conversations:
            break
        total = Counts(
            **{k: getattr(total, k) + getattr(done, k) for k in Counts.model_fields},
        )
    if total.conversations:

        async def record(uow: UnitOfWork) -> None:
            audit(
                uow.session,
                actor="retention",
                ip="",
                action="retention.purge",
                target_type="conversation",
                target_id=None,
                details={"closed_before": cutoff.isoformat(), **total.model_dump()},
            )

        await tx.run(record)
    return total


async def retention_ctx(app: web.Application) -> AsyncIterator[None]:
    """With ``retention_days`` set, purge old closed conversations at start and once a day."""
    hub = app[keys.HUB]
    days = hub.settings.retention_days
    if not days:
        yield
        return

    async def loop(health: Loop) -> None:
        while True:
            try:
                counts = await purge_closed_before(hub.tx, utcnow() - timedelta(days=days))
                if counts.conversations:
                    logger.info("retention purged %s conversations", counts.conversations)
                health.ok()
            except Exception as err:
                await pause_after_failure(health, err, "retention purge")
                continue
            await asyncio.sleep(RETENTION_EVERY_S)

    hub.supervisor.spawn("retention", loop)
    yield
    await hub.supervisor.stop("retention")
