"""The outbox: outbound messages written with their send order, delivered with retry.

A reply is stored together with an outbox row in one transaction; the sender claims due rows,
calls the channel adapter, and records the provider's id and status. Failures back off
exponentially; a non-retryable error or the last attempt moves the row to ``dead`` and marks
the message ``failed`` so the agent sees it.

Several workers may send at once: a claim moves a row from ``pending`` to ``sending`` with a
conditional update, so one worker has it. A worker that dies mid-send leaves its rows in
``sending``; any worker releases rows older than ``outbox_stale_s`` (checked every few
seconds, not only at start) and marks them uncertain: their next attempt first asks the
provider whether it already has the message (``contract.channel.SendReconciler``), and sends
only if not. Every attempt of one message carries the same ``idempotency_key`` for
providers that dedupe on one. Delivery is at least once; with a reconciling or deduping
provider it is exactly once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from config.settings import Settings
from contract.channel import (
    STATUS_RANK,
    Attachment,
    ChannelAdapter,
    OutboundMessage,
    SendReceipt,
    SendReconciler,
    StatusUpdate,
)
from contract.errors import ChannelError
from hub import events
from hub.due import DueWorker
from hub.uow import Transactor, UnitOfWork
from storage.models import (
    Conversation,
    Endpoint,
    Message,
    MessageAttachment,
    OutboxItem,
    utcnow,
)

logger = logging.getLogger(__name__)

BATCH = 32
# How often a worker looks for sends left by a dead process (at most; and at start).
STALE_CHECK_EVERY_S = 10.0
CONCURRENCY = 16


def enqueue(uow: UnitOfWork, message: Message) -> None:
    """Add the outbox row for a just-flushed outbound message (same transaction)."""
    uow.session.add(OutboxItem(message_id=message.id, channel=message.channel))
    uow.after_commit.append(_wake_all)


_senders: set[DueWorker] = set()


def _wake_all() -> None:
    for sender in _senders:
        sender.wake()


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: attempt 1 waits up to ``base``, doubling."""
    return float(rng.uniform(0.5, 1.0) * min(cap, base * 2 ** (attempt - 1)))


class OutboxSender(DueWorker):
    """Background delivery of outbox rows through the channel adapters."""

    batch = BATCH
    concurrency = CONCURRENCY

    def __init__(
        self,
        settings: Settings,
        tx: Transactor,
        adapters: dict[str, ChannelAdapter],
        early_status: dict[tuple[str, str], StatusUpdate] | None = None,
        apply_status: Callable[[StatusUpdate], Awaitable[bool]] | None = None,
    ) -> None:
        # Delivery reports that arrived before the send's receipt; applied after it.
        self.early_status = early_status if early_status is not None else {}
        self.apply_status = apply_status
        super().__init__(_senders)
        self.settings = settings
        self.tx = tx
        self.adapters = adapters
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self.sent = 0
        self.failed = 0
        self.reconciled = 0  # uncertain sends the provider turned out to have
        self.released = 0  # rows released from a dead sender
        self._stale_checked = float("-inf")

    async def _start(self) -> None:
        await self.release_stale()

    async def release_stale(self) -> int:
        """Release rows left in ``sending`` longer than ``outbox_stale_s`` (a sender died
        mid-send) for another attempt that first asks the provider (uncertain)."""
        self._stale_checked = time.monotonic()
        stale = timedelta(seconds=self.settings.outbox_stale_s)

        async def work(uow: UnitOfWork) -> int:
            result = await uow.session.execute(
                update(OutboxItem)
                .where(OutboxItem.state == "sending", OutboxItem.updated_at < utcnow() - stale)
                .values(
                    state="pending",
                    uncertain_since=OutboxItem.updated_at,
                    next_attempt_at=utcnow(),
                    last_error="sending interrupted; outcome unknown",
                )
                .returning(OutboxItem.id)
            )
            return len(result.scalars().all())

        released = await self.tx.run(work)
        if released:
            logger.warning("outbox: released %s send(s) left by a stopped sender", released)
            self.released += released
        return released

    async def _claim(self) -> list[int]:
        every = min(STALE_CHECK_EVERY_S, self.settings.outbox_stale_s / 2)
        if time.monotonic() - self._stale_checked >= every:
            await self.release_stale()

        async def work(uow: UnitOfWork) -> list[int]:
            now = utcnow()
            due = select(OutboxItem.id).where(
                OutboxItem.state == "pending", OutboxItem.next_attempt_at <= now
            )
            ids = list((await uow.session.scalars(due.order_by(OutboxItem.id).limit(BATCH))).all())
            if not ids:
                return []
            result = await uow.session.execute(
                update(OutboxItem)
                .where(OutboxItem.id.in_(ids), OutboxItem.state == "pending")
                .values(state="sending", attempts=OutboxItem.attempts + 1, updated_at=now)
                .returning(OutboxItem.id)
            )
            return sorted(result.scalars().all())

        return await self.tx.run(work)

    async def _next_due_in(self) -> float:
        async def work(session: Any) -> float:
            nxt = await session.scalar(
                select(OutboxItem.next_attempt_at)
                .where(OutboxItem.state == "pending")
                .order_by(OutboxItem.next_attempt_at)
                .limit(1)
            )
            if nxt is None:
                return 1.0
            return float(max(0.0, min(1.0, (nxt - utcnow()).total_seconds())))

        return await self.tx.read(work)

    async def _build(self, item_id: int) -> tuple[OutboxItem, OutboundMessage]:
        async def work(session: Any) -> tuple[OutboxItem, OutboundMessage]:
            item = await session.get_one(OutboxItem, item_id)
            msg = await session.get_one(Message, item.message_id)
            conv = await session.get_one(Conversation, msg.conversation_id)
            endpoint_id = msg.meta.get("endpoint_id") or conv.endpoint_id
            endpoint = await session.get_one(Endpoint, endpoint_id)
            refs = (
                await session.scalars(
                    select(Message.provider_id)
                    .where(
                        Message.conversation_id == conv.id,
                        Message.channel == msg.channel,
                        Message.provider_id.is_not(None),
                        Message.id < msg.id,
                        Message.direction.in_(("in", "out")),
                    )
                    .order_by(Message.id)
                )
            ).all()
            atts = (
                await session.scalars(
                    select(MessageAttachment).where(MessageAttachment.message_id == msg.id)
                )
            ).all()
            # What the client chose (allow-listed when stored), then what only the hub may
            # say: assigned, never defaulted, so a stored option cannot override them.
            options: dict[str, Any] = dict(msg.meta.get("options", {}))
            options["reply_token"] = conv.reply_token
            options["thread_key"] = conv.thread_key
            # Written by the hub, not a person: mail says so (Auto-Submitted), so other
            # responders do not answer it.
            options["auto"] = msg.kind in ("auto_reply", "survey", "bot")
            options["last_inbound_at"] = (
                conv.last_inbound_at.isoformat() if conv.last_inbound_at is not None else None
            )
            out = OutboundMessage(
                message_id=msg.id,
                conversation_id=conv.id,
                channel=msg.channel,
                to=endpoint.address,
                sender=(conv.our_address or None) if msg.channel == conv.channel else None,
                text=msg.text,
                attachments=tuple(
                    Attachment(filename=a.filename, content_type=a.content_type, data=a.data or b"")
                    for a in atts
                ),
                subject=conv.subject or None,
                thread_refs=tuple(r for r in refs[-20:] if r),
                options=options,
                idempotency_key=f"hub-msg-{msg.id}",
            )
            return item, out

        return await self.tx.read(work)

    async def _work(self, item_id: int) -> None:
        try:
            item, out = await self._build(item_id)
            adapter = self._adapter(out.channel)
            receipt = None
            if item.uncertain_since is not None and isinstance(adapter, SendReconciler):
                receipt = await adapter.find_sent(out, since=item.uncertain_since)
                if receipt is not None:
                    self.reconciled += 1
                    logger.info("outbox item %s: the provider already had it", item_id)
            if receipt is None:
                receipt = await adapter.send(out)
        except ChannelError as err:
            await self._failed(item_id, err)
            return
        except Exception as err:
            logger.exception("outbox item %s: unexpected send failure", item_id)
            await self._failed(
                item_id, ChannelError(f"{type(err).__name__}: {err}", retryable=True)
            )
            return
        await self._succeeded(item, receipt)

    def _adapter(self, channel: str) -> ChannelAdapter:
        adapter = self.adapters.get(channel)
        if adapter is None:
            raise ChannelError(f"no adapter configured for channel {channel}", retryable=True)
        return adapter

    async def _succeeded(self, item: OutboxItem, receipt: SendReceipt) -> None:
        async def work(uow: UnitOfWork) -> None:
            s = uow.session
            row = await s.get_one(OutboxItem, item.id)
            row.state = "done"
            row.last_error = ""
            row.uncertain_since = None
            msg = await s.get_one(Message, row.message_id)
            msg.provider_id = receipt.provider_id
            # A fast status callback may have raced ahead of this receipt; keep the later one.
            if STATUS_RANK.get(receipt.status, 0) > STATUS_RANK.get(msg.status, 0):
                msg.status = receipt.status
            if receipt.metadata:
                msg.meta = {**msg.meta, "provider": dict(receipt.metadata)}
            uow.emit(
                events.MessageStatus(
                    conversation_id=msg.conversation_id,
                    customer_id=msg.customer_id,
                    channel=msg.channel,
                    message_id=msg.id,
                    status=msg.status,
                    provider_id=receipt.provider_id,
                )
            )

        await self.tx.run(work)
        self.sent += 1
        early = self.early_status.pop((item.channel, receipt.provider_id), None)
        if early is not None and self.apply_status is not None:
            await self.apply_status(early)

    async def _failed(self, item_id: int, err: ChannelError) -> None:
        async def work(uow: UnitOfWork) -> None:
            s = uow.session
            row = await s.get_one(OutboxItem, item_id)
            row.last_error = str(err)[:500]
            if err.outcome_unknown and row.uncertain_since is None:
                # The provider may have it: whichever worker tries next asks it first,
                # about what was sent since this attempt began (its claim).
                row.uncertain_since = row.updated_at
            dead = not err.retryable or row.attempts >= self.settings.outbox_max_attempts
            if not dead:
                delay = backoff(
                    row.attempts,
                    base=self.settings.outbox_base_delay_s,
                    cap=self.settings.outbox_max_delay_s,
                    rng=self._rng,
                )
                if err.retry_after:
                    delay = max(delay, err.retry_after)
                row.state = "pending"
                row.next_attempt_at = utcnow() + timedelta(seconds=delay)
                logger.warning("outbox item %s attempt %s failed: %s", item_id, row.attempts, err)
                return
            row.state = "dead"
            msg = await s.get_one(Message, row.message_id)
            msg.status = "failed"
            msg.error_code = (err.code or "")[:50]
            msg.error_message = str(err)[:500]
            logger.error("outbox item %s dead after %s attempts: %s", item_id, row.attempts, err)
            uow.emit(
                events.MessageStatus(
                    conversation_id=msg.conversation_id,
                    customer_id=msg.customer_id,
                    channel=msg.channel,
                    message_id=msg.id,
                    status="failed",
                    error_code=msg.error_code,
                    error_message=msg.error_message,
                )
            )

        await self.tx.run(work)
        self.failed += 1
