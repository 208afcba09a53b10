"""What providers report back about our side: delivery status, consent, bounces, and the
single acknowledgement a conversation may get."""

from __future__ import annotations

import logging

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from contract.channel import STATUS_RANK, EndpointKind, StatusUpdate
from hub import events
from hub.customers import identity
from hub.outbox.delivery import enqueue
from hub.uow import Transactor, UnitOfWork
from storage.models import Conversation, Customer, Endpoint, Message

logger = logging.getLogger(__name__)

# Reports for messages whose send has not stored the provider's id yet, kept at most.
EARLY_STATUS_MAX = 10_000


class ProviderFeedback:
    """Implements the feedback half of ``contract.channel.HubPort``."""

    def __init__(self, settings: Settings, tx: Transactor) -> None:
        self.settings = settings
        self.tx = tx
        # (channel, provider id) -> a report that beat the send's receipt (``hub.outbox.delivery``)
        self.early_status: dict[tuple[str, str], StatusUpdate] = {}

    async def update_status(self, update_: StatusUpdate) -> bool:
        """Apply a delivery report; never moves a message's status backwards."""

        async def work(uow: UnitOfWork) -> bool:
            row = await uow.session.scalar(
                select(Message).where(
                    Message.channel == update_.channel,
                    Message.provider_id == update_.provider_id,
                    Message.direction == "out",
                )
            )
            if row is None:
                # The provider's callback can beat our own record of its id (the send's
                # response); keep it briefly and apply it when the receipt is stored.
                self.early_status[(update_.channel, update_.provider_id)] = update_
                while len(self.early_status) > EARLY_STATUS_MAX:
                    self.early_status.pop(next(iter(self.early_status)))
                logger.info(
                    "status %s for not-yet-known %s message", update_.status, update_.channel
                )
                return False
            if STATUS_RANK.get(update_.status, -1) <= STATUS_RANK.get(row.status, -1):
                return False
            row.status = update_.status
            if update_.error_code:
                row.error_code = update_.error_code[:50]
            if update_.error_message:
                row.error_message = update_.error_message[:500]
            uow.emit(
                events.MessageStatus(
                    conversation_id=row.conversation_id,
                    customer_id=row.customer_id,
                    channel=row.channel,
                    message_id=row.id,
                    status=row.status,
                    error_code=row.error_code,
                    error_message=row.error_message,
                )
            )
            return True

        return await self.tx.run(work)

    async def sent_message_exists(self, *, channel: str, provider_id: str) -> bool:
        """Whether we sent a message with this provider id (a bounce must name one of ours)."""

        async def work(session: AsyncSession) -> bool:
            found = await session.scalar(
                select(Message.id).where(
                    Message.channel == channel,
                    Message.provider_id == provider_id,
                    Message.direction == "out",
                )
            )
            return found is not None

        return await self.tx.read(work)

    async def set_opt_out(
        self, *, kind: EndpointKind, address: str, channel: str, opted_out: bool
    ) -> None:
        """Record a customer's opt-out (or opt-in) of a channel on one endpoint."""
        norm = identity.normalize(kind, address, default_region=self.settings.default_phone_region)

        async def work(uow: UnitOfWork) -> None:
            ep = await uow.session.scalar(
                select(Endpoint).where(Endpoint.kind == norm.kind, Endpoint.address == norm.address)
            )
            if ep is None:
                customer = Customer()
                uow.session.add(customer)
                await uow.session.flush()
                ep = Endpoint(
                    customer_id=customer.id, kind=norm.kind, address=norm.address, opted_out=[]
                )
                uow.session.add(ep)
            current = set(ep.opted_out)
            wanted = current | {channel} if opted_out else current - {channel}
            if wanted != current:
                ep.opted_out = sorted(wanted)
                await uow.session.flush()
                uow.emit(
                    events.CustomerConsent(
                        customer_id=ep.customer_id,
                        channel=channel,
                        endpoint=f"{norm.kind}:{norm.address}",
                        opted_out=opted_out,
                    )
                )

        await self.tx.run(work)

    async def mark_undeliverable(self, *, kind: EndpointKind, address: str, reason: str) -> None:
        """Flag an address that bounced permanently."""
        norm = identity.normalize(kind, address, default_region=self.settings.default_phone_region)

        async def work(uow: UnitOfWork) -> None:
            result = await uow.session.execute(
                update(Endpoint)
                .where(Endpoint.kind == norm.kind, Endpoint.address == norm.address)
                .values(undeliverable=(reason or "bounced")[:300])
                .returning(Endpoint.customer_id)
            )
            customer_id = result.scalar_one_or_none()
            if customer_id is not None:
                uow.emit(
                    events.CustomerUndeliverable(
                        customer_id=customer_id,
                        endpoint=f"{norm.kind}:{norm.address}",
                        reason=reason[:300],
                    )
                )

        await self.tx.run(work)

    async def record_auto_reply(self, *, conversation_id: int, text: str, send: bool) -> bool:
        """Store the conversation's single acknowledgement (queued in the outbox if ``send``)."""

        async def work(uow: UnitOfWork) -> bool:
            s = uow.session
            already = await s.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.conversation_id == conversation_id, Message.kind == "auto_reply")
                .where(Message.direction == "out")
            )
            if already:
                return False
            conv = await s.get_one(Conversation, conversation_id)
            row = Message(
                conversation_id=conv.id,
                customer_id=conv.customer_id,
                channel=conv.channel,
                direction="out",
                kind="auto_reply",
                text=text,
                status="pending" if send else "sent",
                meta={"auto": True},
            )
            s.add(row)
            await s.flush()
            if send:
                enqueue(uow, row)
            uow.emit(
                events.MessageSent(
                    conversation_id=conv.id,
                    customer_id=conv.customer_id,
                    channel=conv.channel,
                    message_id=row.id,
                    kind="auto_reply",
                    text=text[:500],
                )
            )
            return True

        return await self.tx.run(work)
