"""Announced media fetched in the background: pending attachments, retried with backoff.

A webhook stores what the provider announced at once (an MMS's photos, a Telegram file); a
file whose first fetch failed is stored ``pending`` with the provider's reference. The worker
here fetches due ones through the channel's adapter (``contract.channel.AttachmentSource``),
waits ``media_retry_delays_s`` between attempts and gives up (``failed``) after the last or
on an error that a retry cannot mend; an agent may then ask for another round. Every change of
state is an event (``message.attachment_updated``), so consoles update the message live.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from config.settings import Settings
from contract.channel import Attachment, AttachmentSource, ChannelAdapter
from contract.errors import ChannelError, Conflict, NotFound
from hub import events
from hub.due import DueWorker
from hub.uow import Transactor, UnitOfWork
from storage.models import Message, MessageAttachment, utcnow

logger = logging.getLogger(__name__)

URL = "/api/v1/attachments/{id}"
BATCH = 32
CONCURRENCY = 8
# A claimed row is due again after this long: a fetch cut short by a crash is retried, one in
# flight (Twilio: 8 s per hop, at most 4 hops) is not fetched twice.
LEASE = timedelta(seconds=120)
# Longest idle sleep; inserts and retries in this process wake the worker at once.
IDLE_S = 5.0
TOO_LARGE = "larger than the attachment limit"


def attachment_url(attachment_id: int) -> str:
    """Where a browser downloads a fetched attachment (never the provider's URL)."""
    return URL.format(id=attachment_id)


def next_delay(attempts: int, delays: Sequence[float]) -> float | None:
    """Seconds to wait after ``attempts`` failed fetches, or None when that was the last."""
    if 1 <= attempts <= len(delays):
        return float(delays[attempts - 1])
    return None


def attachment_row(att: Attachment, message_id: int, settings: Settings) -> MessageAttachment:
    """The stored row of an inbound attachment (the webhook's fetch counts as attempt 1)."""
    row = MessageAttachment(
        message_id=message_id,
        filename=(att.filename or "")[:300],
        content_type=att.content_type[:200],
        size=len(att.data),
        state=att.state,
        source=att.source if att.source and len(att.source) <= 2000 else None,
        attempts=0 if att.state == "fetched" else 1,
        error=att.error[:300],
    )
    if att.state == "fetched":
        if len(att.data) <= settings.attachment_max_bytes:
            row.data = att.data
        else:
            row.state, row.error = "failed", TOO_LARGE
    elif att.state == "pending":
        delay = next_delay(1, settings.media_retry_delays_s)
        if row.source is None or delay is None:
            row.state = "failed"
        else:
            row.next_attempt_at = utcnow() + timedelta(seconds=delay)
    return row


def announce(uow: UnitOfWork, row: MessageAttachment, msg: Message) -> None:
    """The event that tells consoles an attachment of ``msg`` changed state."""
    uow.emit(
        events.MessageAttachmentUpdated(
            conversation_id=msg.conversation_id,
            customer_id=msg.customer_id,
            channel=msg.channel,
            message_id=msg.id,
            attachment_id=row.id,
            state=row.state,
            content_type=row.content_type,
            filename=row.filename,
            size=row.size,
            error=row.error,
            url=attachment_url(row.id) if row.state == "fetched" else None,
        )
    )


async def retry(tx: Transactor, attachment_id: int) -> None:
    """An agent asks again for a failed attachment: pending now, a fresh round of attempts."""

    async def work(uow: UnitOfWork) -> None:
        row = await uow.session.get(MessageAttachment, attachment_id)
        if row is None:
            raise NotFound(f"attachment {attachment_id} not found")
        if row.state != "failed":
            raise Conflict(f"attachment {attachment_id} is {row.state}, not failed")
        if row.source is None:
            raise Conflict(f"attachment {attachment_id} cannot be fetched again: {row.error}")
        row.state = "pending"
        row.attempts = 0
        row.next_attempt_at = utcnow()
        announce(uow, row, await uow.session.get_one(Message, row.message_id))
        uow.after_commit.append(wake_all)

    await tx.run(work)


_workers: set[DueWorker] = set()


def wake_all() -> None:
    """Tell every running worker that something may be due now."""
    for worker in _workers:
        worker.wake()


class MediaWorker(DueWorker):
    """Background fetch of pending attachments through the channel adapters."""

    batch = BATCH
    concurrency = CONCURRENCY
    wake_after_each = True  # a failed attempt scheduled the next one

    def __init__(
        self, settings: Settings, tx: Transactor, adapters: dict[str, ChannelAdapter]
    ) -> None:
        super().__init__(_workers)
        self.settings = settings
        self.tx = tx
        self.adapters = adapters
        # Attempts that fetched and that failed (tests, logs).
        self.fetched = 0
        self.failed = 0

    async def _claim(self) -> list[int]:
        async def work(uow: UnitOfWork) -> list[int]:
            now = utcnow()
            due = (
                select(MessageAttachment.id)
                .where(
                    MessageAttachment.state == "pending", MessageAttachment.next_attempt_at <= now
                )
                .order_by(MessageAttachment.next_attempt_at, MessageAttachment.id)
                .limit(BATCH)
            )
            ids = list((await uow.session.scalars(due)).all())
            if not ids:
                return []
            result = await uow.session.execute(
                update(MessageAttachment)
                .where(
                    MessageAttachment.id.in_(ids),
                    MessageAttachment.state == "pending",
                    MessageAttachment.next_attempt_at <= now,
                )
                .values(attempts=MessageAttachment.attempts + 1, next_attempt_at=now + LEASE)
                .returning(MessageAttachment.id)
            )
            return sorted(result.scalars().all())

        return await self.tx.run(work)

    async def _next_due_in(self) -> float:
        async def work(session: Any) -> float:
            nxt = await session.scalar(
                select(MessageAttachment.next_attempt_at)
                .where(MessageAttachment.state == "pending")
                .order_by(MessageAttachment.next_attempt_at)
                .limit(1)
            )
            if nxt is None:
                return IDLE_S
            return float(max(0.0, min(IDLE_S, (nxt - utcnow()).total_seconds())))

        return await self.tx.read(work)

    async def _work(self, attachment_id: int) -> None:
        try:
            job = await self.tx.read(lambda s: _job(s, attachment_id))
            if job is None:
                return
            got = await self._fetch(*job)
        except ChannelError as err:
            await self._failed(attachment_id, err)
            return
        except Exception as err:
            logger.exception("attachment %s: unexpected fetch failure", attachment_id)
            await self._failed(attachment_id, ChannelError(type(err).__name__, retryable=True))
            return
        if len(got.data) > self.settings.attachment_max_bytes:
            await self._failed(attachment_id, ChannelError(TOO_LARGE, retryable=False))
            return
        await self._fetched(attachment_id, got)

    async def _fetch(self, channel: str, row: MessageAttachment) -> Attachment:
        adapter = self.adapters.get(channel)
        if adapter is None:
            raise ChannelError(f"no adapter configured for channel {channel}", retryable=True)
        if not isinstance(adapter, AttachmentSource) or row.source is None:
            raise ChannelError(f"{channel} cannot fetch media again", retryable=False)
        return await adapter.fetch_attachment(
            channel=channel,
            source=row.source,
            content_type=row.content_type,
            filename=row.filename or None,
        )

    async def _fetched(self, attachment_id: int, got: Attachment) -> None:
        async def work(uow: UnitOfWork) -> None:
            row = await uow.session.get_one(MessageAttachment, attachment_id)
            if row.state != "pending":
                return
            row.data = got.data
            row.size = len(got.data)
            row.state = "fetched"
            row.error = ""
            row.next_attempt_at = None
            if not row.filename and got.filename:
                row.filename = got.filename[:300]
            announce(uow, row, await uow.session.get_one(Message, row.message_id))

        await self.tx.run(work)
        self.fetched += 1
        logger.info("attachment %s fetched on a retry", attachment_id)

    async def _failed(self, attachment_id: int, err: ChannelError) -> None:
        async def work(uow: UnitOfWork) -> None:
            row = await uow.session.get_one(MessageAttachment, attachment_id)
            if row.state != "pending":
                return
            row.error = str(err)[:300]
            delay = next_delay(row.attempts, self.settings.media_retry_delays_s)
            if err.retryable and delay is not None:
                delay = max(delay, err.retry_after or 0.0)
                row.next_attempt_at = utcnow() + timedelta(seconds=delay)
                logger.warning(
                    "attachment %s attempt %s failed (next in %.1f s): %s",
                    attachment_id,
                    row.attempts,
                    delay,
                    err,
                )
                return
            row.state = "failed"
            row.next_attempt_at = None
            logger.warning(
                "attachment %s failed after %s attempts: %s", attachment_id, row.attempts, err
            )
            announce(uow, row, await uow.session.get_one(Message, row.message_id))

        await self.tx.run(work)
        self.failed += 1


async def _job(session: Any, attachment_id: int) -> tuple[str, MessageAttachment] | None:
    """The channel and the row (without bytes) of a claimed attachment still pending."""
    found = (
        await session.execute(
            select(Message.channel, MessageAttachment)
            .join(Message, Message.id == MessageAttachment.message_id)
            .where(MessageAttachment.id == attachment_id)
        )
    ).first()
    if found is None or found[1].state != "pending":
        return None
    return str(found[0]), found[1]
