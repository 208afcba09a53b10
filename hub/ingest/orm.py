"""Ingest: resolve the customer, thread the conversation, store the message, in one unit."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from contract.channel import InboundMessage, IngestResult
from contract.errors import InvalidInput
from hub import events
from hub.customers import identity
from hub.customers.profiles import merge_customers
from hub.ingest.batch import BatchView, Staged, verified_identifiers
from hub.ingest.fast import OPEN_STATES, Contact, InlineContinuation, continue_open
from hub.ingest.media import attachment_row
from hub.ingest.media import wake_all as wake_media
from hub.ingest.rows import message_object, message_values, received_event
from hub.uow import LazyId, Transactor, UnitOfWork
from hub.workflow.csat import parse_score, survey_answer
from storage.models import Conversation, Customer, Endpoint, Message, utcnow

logger = logging.getLogger(__name__)
# A conversation a bot answers first: stored, not routed, until handed off.
HELD = "bot"

MAX_TEXT = 64_000
BULK_PRIORITY = -10
# Contacts committed together at most (group commit); bounded so one transaction stays short.
BATCH_MAX = 64
Pending = tuple[InboundMessage, "identity.EndpointAddress", "asyncio.Future[IngestResult]"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """The customer and endpoint an inbound contact belongs to."""

    customer: Customer
    endpoint: Endpoint


class Ingestor:
    """The ingest half of ``contract.channel.HubPort`` (``hub.outbox.feedback`` has the rest)."""

    def __init__(
        self, settings: Settings, tx: Transactor, inline: InlineContinuation | None = None
    ) -> None:
        self.settings = settings
        self.tx = tx
        # Contacts continuing open conversations take ``hub.ingest.fast`` (as plain sqlite3
        # calls with ``inline``, on SQLite); tests turn it off to compare what the general
        # path stores.
        self.fast_path = True
        self.inline = inline
        self._pending: list[Pending] = []
        self._worker: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- inbound messages
    async def ingest(self, message: InboundMessage) -> IngestResult:
        """Persist an inbound contact (idempotent on channel + provider id)."""
        if not message.provider_id or len(message.provider_id) > 300:
            raise InvalidInput("provider message id missing or too long")
        if len(message.text) > MAX_TEXT:
            raise InvalidInput(f"text longer than {MAX_TEXT} characters")
        address = identity.normalize(
            message.sender_kind, message.sender, default_region=self.settings.default_phone_region
        )
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._pending.append((message, address, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain(), name="ingest-batcher")
        # Resolved only after the batch holding this contact committed (persist, then ack).
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        """Group commit: contacts that arrive while a transaction runs share the next one.

        SQLite statements run inline (``storage.sqlite_inline``) and never give the loop a
        turn, so the batcher yields once before each batch: every request already read by
        the loop gets to queue its contact first.
        """
        while True:
            await asyncio.sleep(0)
            if not self._pending:
                return
            batch = self._pending[:BATCH_MAX]
            del self._pending[: len(batch)]
            contacts = [(m, a) for m, a, _ in batch]

            async def work(
                uow: UnitOfWork, batch: list[Pending] = batch, contacts: list[Contact] = contacts
            ) -> list[Staged]:
                if self.fast_path and self.inline is None:
                    continued = await continue_open(uow, contacts)
                    if continued is not None:
                        return [Staged.done(r) for r in continued]
                # Inserts and updates of the batch are sent together at commit (one multi-row
                # statement each) instead of one round trip per contact.
                with uow.session.no_autoflush:
                    view = await self._view(uow, contacts)
                    return [await self._ingest(uow, m, a, view) for m, a, _ in batch]

            try:
                results = None
                if self.fast_path and self.inline is not None:
                    results = await self.inline.run(contacts)
                if results is None:
                    results = [st.result() for st in await self.tx.run(work, attempts=1)]
            except Exception:
                # One bad apple (or a race with another process) must not fail the others:
                # retry each on its own, with the usual retries on unique-key races.
                logger.debug("batch of %s failed; ingesting one by one", len(batch))
                for message, address, future in batch:
                    await self._one(message, address, future)
                continue
            for (_, _, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _one(
        self,
        message: InboundMessage,
        address: identity.EndpointAddress,
        future: asyncio.Future[IngestResult],
    ) -> None:
        async def work(uow: UnitOfWork) -> Staged:
            with uow.session.no_autoflush:
                view = await self._view(uow, [(message, address)])
                return await self._ingest(uow, message, address, view)

        try:
            result = (await self.tx.run(work)).result()
        except Exception as err:
            if not future.done():
                future.set_exception(err)
            return
        if not future.done():
            future.set_result(result)

    async def _view(
        self, uow: UnitOfWork, contacts: list[tuple[InboundMessage, identity.EndpointAddress]]
    ) -> BatchView:
        return await BatchView.load(uow.session, contacts, self.settings.default_phone_region)

    async def _ingest(
        self,
        uow: UnitOfWork,
        msg: InboundMessage,
        address: identity.EndpointAddress,
        view: BatchView,
    ) -> Staged:
        s = uow.session
        if msg.kind == "edit":
            await s.flush()
            return Staged.done(await self._edit(uow, msg))
        key = (msg.channel, msg.provider_id)
        if key in view.staged:
            return view.staged[key].as_duplicate()
        known = view.known.get(key)
        if known is not None:
            return Staged.done(known)
        if msg.thread_refs:
            await s.flush()  # references may name a message staged earlier in this batch
        referenced = await self._referenced_conversation(s, msg)
        if msg.kind == "message" and referenced is None and parse_score(msg.text) is not None:
            # Only a score: maybe the answer to the last conversation's survey.
            latest = await self._latest_conversation_of(s, msg, address)
            window = self.settings.workflow.csat_window_s
            answer = await survey_answer(s, msg, latest, window)
            if answer is not None:
                msg, referenced = answer
        if msg.kind in ("auto_reply", "csat") and referenced is None:
            referenced = await self._latest_conversation_of(s, msg, address)
            if referenced is None:
                # An automatic reply that threads nowhere is not a customer request.
                logger.info("dropped %s from %s: no conversation", msg.kind, msg.channel)
                return Staged.done(
                    IngestResult(
                        customer_id=None, conversation_id=None, message_id=None, duplicate=False
                    )
                )
        resolved = await self._resolve_customer(uow, msg, address, view)
        customer, endpoint = resolved.customer, resolved.endpoint
        conversation, opened = await self._thread(uow, msg, resolved, referenced, view)
        now = utcnow()
        row = message_object(
            message_values(msg, conversation_id=conversation.id, customer_id=customer.id, now=now)
        )
        s.add(row)
        if msg.attachments:
            await s.flush()  # attachments reference the message id
        for att in msg.attachments:
            s.add(attachment_row(att, row.id, self.settings))
        if any(att.state == "pending" for att in msg.attachments):
            uow.after_commit.append(wake_media)
        if msg.kind in ("message", "command", "bulk"):
            conversation.last_inbound_at = now
        conversation.last_activity_at = now
        others = set(msg.participants)
        if customer.id != conversation.customer_id:
            # Someone else wrote into the thread (reply-all): they take part in it.
            others.add(endpoint.address)
        if conversation.endpoint_id == endpoint.id:
            others.discard(endpoint.address)
        else:
            others.discard(await self._conversation_address(s, conversation))
        if others - set(conversation.participants):
            conversation.participants = sorted(set(conversation.participants) | others)
        if not customer.display_name and msg.display_name:
            customer.display_name = msg.display_name[:200]
        if msg.language and not customer.language:
            customer.language = msg.language[:10]
        uow.emit(
            received_event(
                msg,
                conversation_id=conversation.id,
                customer_id=customer.id,
                queue=conversation.queue,
                endpoint=endpoint.address,
                message_id=LazyId(row),
            )
        )
        result = Staged(
            customer_id=customer.id, conversation_id=conversation.id, row=row, opened=opened
        )
        view.staged[key] = result
        return result

    async def _conversation_address(self, s: AsyncSession, conv: Conversation) -> str:
        address = await s.scalar(select(Endpoint.address).where(Endpoint.id == conv.endpoint_id))
        return address or ""

    async def _edit(self, uow: UnitOfWork, msg: InboundMessage) -> IngestResult:
        row = await uow.session.scalar(
            select(Message).where(
                Message.channel == msg.channel, Message.provider_id == msg.provider_id
            )
        )
        if row is None:
            logger.info("edit of unknown %s message %s ignored", msg.channel, msg.provider_id)
            return IngestResult(
                customer_id=None, conversation_id=None, message_id=None, duplicate=False
            )
        if row.text != msg.text:
            row.meta = {**row.meta, "original_text": row.meta.get("original_text", row.text)}
            row.text = msg.text
            row.edited_at = utcnow()
            uow.emit(
                events.MessageEdited(
                    conversation_id=row.conversation_id,
                    customer_id=row.customer_id,
                    channel=row.channel,
                    message_id=row.id,
                    text=msg.text[:500],
                )
            )
        return IngestResult(
            customer_id=row.customer_id,
            conversation_id=row.conversation_id,
            message_id=row.id,
            duplicate=row.edited_at is None,
        )

    # ---------------------------------------------------------------- identity
    async def _resolve_customer(
        self,
        uow: UnitOfWork,
        msg: InboundMessage,
        address: identity.EndpointAddress,
        view: BatchView,
    ) -> Resolved:
        s = uow.session
        found = view.endpoints.get((address.kind, address.address))
        endpoint = found[0] if found is not None else None
        linked: list[tuple[identity.EndpointAddress, Endpoint | None]] = []
        for norm in verified_identifiers(msg, self.settings.default_phone_region):
            hit = view.endpoints.get((norm.kind, norm.address))
            linked.append((norm, hit[0] if hit is not None else None))
        if endpoint is None:
            owner_id = next((e.customer_id for _, e in linked if e is not None), None)
            if owner_id is not None:
                customer = await s.get_one(Customer, owner_id)
                uow.emit(
                    events.CustomerLinked(
                        customer_id=customer.id,
                        channel=msg.channel,
                        endpoint=f"{address.kind}:{address.address}",
                        reason="verified identifier",
                    )
                )
            else:
                customer = Customer(display_name=(msg.display_name or "")[:200])
                if msg.language:
                    customer.language = msg.language[:10]
                s.add(customer)
                await s.flush()
                uow.emit(events.CustomerCreated(customer_id=customer.id, channel=msg.channel))
            endpoint = Endpoint(
                customer_id=customer.id,
                kind=address.kind,
                address=address.address,
                verified=False,
            )
            s.add(endpoint)
            await s.flush()
            view.add_endpoint(endpoint, customer)
            view.latest[endpoint.id] = []
        else:
            assert found is not None
            customer = found[1]
        for norm, other in linked:
            if other is None:
                added = Endpoint(
                    customer_id=customer.id, kind=norm.kind, address=norm.address, verified=True
                )
                s.add(added)
                view.add_endpoint(added, customer)
                uow.emit(
                    events.CustomerEndpointAdded(
                        customer_id=customer.id,
                        endpoint=f"{norm.kind}:{norm.address}",
                        verified=True,
                    )
                )
            elif other.customer_id != customer.id:
                customer = await self._same_person(uow, customer, other, norm, view)
            elif not other.verified:
                other.verified = True
        if linked:
            await s.flush()  # identifiers added here are looked up by later contacts
        return Resolved(customer=customer, endpoint=endpoint)

    async def _same_person(
        self,
        uow: UnitOfWork,
        customer: Customer,
        other: Endpoint,
        norm: identity.EndpointAddress,
        view: BatchView,
    ) -> Customer:
        """The provider proved this customer holds ``other``'s address (a Telegram user
        sharing their own contact): one person. Merge into the customer who had the address
        first, unless the two hold different verified identifiers of one kind; that conflict
        is flagged for a person. The merge is audited and undoable (``/merges/{id}/undo``)."""
        owner = await uow.session.get_one(Customer, other.customer_id)
        reason = f"verified {norm.kind} {norm.address}"
        merged = None
        if owner.merged_into_id is None and customer.merged_into_id is None:
            merged = await merge_customers(
                uow, owner, customer, actor="hub:verified-identifier", reason=reason
            )
        if isinstance(merged, int):
            view.repoint(customer, owner)
            other.verified = True
            return owner
        flag: dict[str, Any] = {
            "kind": norm.kind,
            "address": norm.address,
            "reason": f"verified identifier belongs to customer {other.customer_id}",
            "other_customer_id": other.customer_id,
        }
        if merged:
            flag["detail"] = "; ".join(merged)
        if flag not in customer.flags:
            customer.flags = [*customer.flags, flag]
            uow.emit(events.CustomerConflict(customer_id=customer.id, flag=flag))
        return customer

    # ---------------------------------------------------------------- threading
    async def _referenced_conversation(
        self, s: AsyncSession, msg: InboundMessage
    ) -> Conversation | None:
        if msg.reply_token:
            conv = await s.scalar(
                select(Conversation).where(Conversation.reply_token == msg.reply_token)
            )
            if conv is not None:
                return conv
        refs = [r for r in msg.thread_refs if r]
        if refs:
            conv_id = await s.scalar(
                select(Message.conversation_id)
                .where(Message.channel == msg.channel, Message.provider_id.in_(refs[-50:]))
                .order_by(Message.id.desc())
                .limit(1)
            )
            if conv_id is not None:
                return await s.get(Conversation, conv_id)
        if msg.thread_key:
            return await s.scalar(
                select(Conversation)
                .where(
                    Conversation.channel == msg.channel, Conversation.thread_key == msg.thread_key
                )
                .order_by(Conversation.id.desc())
                .limit(1)
            )
        return None

    async def _latest_conversation_of(
        self, s: AsyncSession, msg: InboundMessage, address: identity.EndpointAddress
    ) -> Conversation | None:
        return await s.scalar(
            select(Conversation)
            .join(Endpoint, Endpoint.id == Conversation.endpoint_id)
            .where(
                Endpoint.kind == address.kind,
                Endpoint.address == address.address,
                Conversation.channel == msg.channel,
            )
            .order_by(Conversation.id.desc())
            .limit(1)
        )

    async def _latest_on_endpoint(
        self, s: AsyncSession, msg: InboundMessage, endpoint_id: int
    ) -> Conversation | None:
        query = select(Conversation).where(
            Conversation.endpoint_id == endpoint_id, Conversation.channel == msg.channel
        )
        if msg.recipient is not None:
            query = query.where(Conversation.our_address == msg.recipient)
        return await s.scalar(query.order_by(Conversation.id.desc()).limit(1))

    def _reopenable(self, conv: Conversation) -> bool:
        if conv.state in OPEN_STATES or conv.state == HELD:
            return True
        if conv.closed_at is None:
            return False
        return utcnow() - conv.closed_at <= timedelta(seconds=self.settings.reopen_window_s)

    def _held(self, msg: InboundMessage) -> bool:
        """Whether a bot answers this contact first: its adapter's own (the widget's) or the
        hub's first-line bot on its channel (``workflow.bot``)."""
        bot = self.settings.workflow.bot
        return msg.hold or (msg.kind == "message" and msg.channel in bot.channels and bool(bot.faq))

    async def _thread(
        self,
        uow: UnitOfWork,
        msg: InboundMessage,
        resolved: Resolved,
        referenced: Conversation | None,
        view: BatchView,
    ) -> tuple[Conversation, bool]:
        conv = referenced
        if conv is not None and not self._reopenable(conv):
            conv = None
        endpoint_id = resolved.endpoint.id
        if conv is None and referenced is None and msg.threading == "session":
            if endpoint_id in view.latest:
                candidate = view.latest_conversation(endpoint_id, msg.channel, msg.recipient)
            else:
                candidate = await self._latest_on_endpoint(uow.session, msg, endpoint_id)
            if candidate is not None and self._reopenable(candidate):
                conv = candidate
        routable = msg.kind in ("message", "command", "bulk")
        if conv is None:
            conv = await self._open(uow, msg, resolved)
            if endpoint_id in view.latest:
                view.latest[endpoint_id].append(conv)
            return conv, True
        if conv.state in ("closed", "abandoned") and routable:
            conv.state = HELD if self._held(msg) else "queued"
            conv.closed_at = None
            conv.waiting_since = utcnow()
            conv.assignee_id = None
            uow.emit(
                events.ConversationReopened(
                    conversation_id=conv.id,
                    customer_id=conv.customer_id,
                    queue=conv.queue,
                    channel=conv.channel,
                    priority=conv.priority,
                    held=True if self._held(msg) else None,
                )
            )
            return conv, True
        return conv, False

    async def _open(self, uow: UnitOfWork, msg: InboundMessage, resolved: Resolved) -> Conversation:
        priority = msg.priority or 0
        if resolved.customer.segment == "vip":
            priority = max(priority, self.settings.vip_priority)
        if msg.kind == "bulk":
            priority = BULK_PRIORITY
        now = utcnow()
        conv = Conversation(
            customer_id=resolved.customer.id,
            endpoint_id=resolved.endpoint.id,
            channel=msg.channel,
            our_address=msg.recipient or "",
            thread_key=msg.thread_key,
            reply_token=secrets.token_hex(10),
            subject=(msg.subject or "")[:500],
            state=HELD if self._held(msg) else "queued",
            queue=msg.queue or "support",
            priority=priority,
            waiting_since=now,
            created_at=now,
            last_activity_at=now,
            participants=sorted(set(msg.participants) - {resolved.endpoint.address}),
        )
        uow.session.add(conv)
        await uow.session.flush()
        uow.emit(
            events.ConversationCreated(
                conversation_id=conv.id,
                customer_id=conv.customer_id,
                queue=conv.queue,
                channel=conv.channel,
                priority=conv.priority,
                language=msg.language or resolved.customer.language,
                segment=resolved.customer.segment,
                held=True if self._held(msg) else None,
            )
        )
        return conv
