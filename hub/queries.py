"""Read models for the API: customers, conversations, history pages (keyset pagination)."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Row, Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from contract.errors import InvalidInput, NotFound
from hub.customers import identity
from hub.ingest.media import attachment_url
from hub.web.api.schemas import (
    MAX_ID,
    AttachmentOut,
    ConversationOut,
    CustomerOut,
    EndpointOut,
    MessageOut,
    MessagePage,
)
from storage.models import Conversation, Customer, Endpoint, Message, MessageAttachment


def endpoint_out(ep: Endpoint) -> EndpointOut:
    return EndpointOut(
        kind=ep.kind,
        address=ep.address,
        verified=ep.verified,
        opted_out=list(ep.opted_out),
        undeliverable=ep.undeliverable,
    )


async def customer_out(s: AsyncSession, customer: Customer) -> CustomerOut:
    eps = (
        await s.scalars(
            select(Endpoint).where(Endpoint.customer_id == customer.id).order_by(Endpoint.id)
        )
    ).all()
    return CustomerOut(
        id=customer.id,
        display_name=customer.display_name,
        segment=customer.segment,
        language=customer.language,
        tags=list(customer.tags),
        attributes=dict(customer.attributes),
        flags=list(customer.flags),
        merged_into_id=customer.merged_into_id,
        endpoints=[endpoint_out(e) for e in eps],
        created_at=customer.created_at,
    )


async def get_customer(s: AsyncSession, customer_id: int) -> CustomerOut:
    customer = await s.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return await customer_out(s, customer)


async def search_customers(
    s: AsyncSession,
    *,
    region: str,
    phone: str | None = None,
    email: str | None = None,
    telegram_user_id: str | None = None,
    q: str | None = None,
    limit: int = 50,
    visible: ColumnElement[bool] | None = None,
) -> list[CustomerOut]:
    """Find customers by an exact endpoint, or by name / address / id fragment, among those
    ``visible`` to the caller (a ``hub.access.customer_filter``)."""
    query: Select[Customer] = select(Customer).where(Customer.merged_into_id.is_(None))
    if visible is not None:
        query = query.where(visible)
    exact = [("phone", phone), ("email", email), ("telegram", telegram_user_id)]
    for kind, value in exact:
        if value:
            try:
                norm = identity.normalize(kind, value, default_region=region)
            except InvalidInput:
                return []
            query = query.where(
                Customer.id.in_(
                    select(Endpoint.customer_id).where(
                        Endpoint.kind == norm.kind, Endpoint.address == norm.address
                    )
                )
            )
    if q:
        needle = f"%{q.strip().lower()}%"
        conds: list[ColumnElement[bool]] = [
            Customer.display_name.ilike(needle),
            Customer.id.in_(select(Endpoint.customer_id).where(Endpoint.address.ilike(needle))),
        ]
        if _row_id(q.strip()) is not None:
            conds.append(Customer.id == _row_id(q.strip()))
        query = query.where(or_(*conds))
    rows = (await s.scalars(query.order_by(Customer.id.desc()).limit(limit))).all()
    return [await customer_out(s, c) for c in rows]


def encode_cursor(message_id: int) -> str:
    return base64.urlsafe_b64encode(f"m:{message_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("invalid cursor") from None
    kind, _, value = raw.partition(":")
    message_id = _row_id(value)
    if kind != "m" or message_id is None:
        raise InvalidInput("invalid cursor")
    return message_id


def _row_id(raw: str) -> int | None:
    """``raw`` as a row id, or None: ASCII digits only ("²".isdigit() is true, int("²") fails)
    and within BIGINT, which the database driver cannot exceed."""
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_ID:
        return None
    return int(raw)


# Everything of an attachment a browser may see: not its bytes, never its provider source.
_ATTACHMENTS = select(
    MessageAttachment.id,
    MessageAttachment.message_id,
    MessageAttachment.filename,
    MessageAttachment.content_type,
    MessageAttachment.size,
    MessageAttachment.state,
    MessageAttachment.error,
    MessageAttachment.data.is_not(None).label("stored"),
)


def _attachment_out(a: Row[int, int, str, str, int, str, str, bool]) -> AttachmentOut:
    fetched = a.state == "fetched" and a.stored
    return AttachmentOut(
        id=a.id,
        filename=a.filename,
        content_type=a.content_type,
        size=a.size,
        state=a.state,
        error=a.error,
        url=attachment_url(a.id) if fetched else None,
    )


async def attachment_out(s: AsyncSession, attachment_id: int) -> AttachmentOut:
    """One attachment as the API shows it."""
    row = (await s.execute(_ATTACHMENTS.where(MessageAttachment.id == attachment_id))).first()
    if row is None:
        raise NotFound(f"attachment {attachment_id} not found")
    return _attachment_out(row)


async def messages_out(s: AsyncSession, rows: Sequence[Message]) -> list[MessageOut]:
    ids = [m.id for m in rows]
    atts: dict[int, list[AttachmentOut]] = {}
    if ids:
        for a in await s.execute(
            _ATTACHMENTS.where(MessageAttachment.message_id.in_(ids)).order_by(MessageAttachment.id)
        ):
            atts.setdefault(a.message_id, []).append(_attachment_out(a))
    return [
        MessageOut(
            id=m.id,
            conversation_id=m.conversation_id,
            customer_id=m.customer_id,
            channel=m.channel,
            direction=m.direction,
            kind=m.kind,
            text=m.text,
            provider_id=m.provider_id,
            status=m.status,
            error_code=m.error_code,
            error_message=m.error_message,
            author_id=m.author_id,
            created_at=m.created_at,
            edited_at=m.edited_at,
            attachments=atts.get(m.id, []),
            metadata={k: v for k, v in m.meta.items() if k != "options"},
        )
        for m in rows
    ]


async def _page(
    s: AsyncSession, query: Select[Message], *, limit: int, before: str | None
) -> MessagePage:
    """Newest first, keyset on message id (stable under inserts, no OFFSET scans)."""
    if before:
        query = query.where(Message.id < decode_cursor(before))
    rows = (await s.scalars(query.order_by(Message.id.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return MessagePage(
        items=await messages_out(s, rows),
        next=encode_cursor(rows[-1].id) if more and rows else None,
    )


async def history(
    s: AsyncSession,
    customer_id: int,
    *,
    limit: int,
    before: str | None,
    visible: ColumnElement[bool] | None = None,
) -> MessagePage:
    """A customer's timeline across channels, newest first (``visible``: a
    ``hub.access.note_filter`` hiding other teams' notes)."""
    if await s.get(Customer, customer_id) is None:
        raise NotFound(f"customer {customer_id} not found")
    query = select(Message).where(Message.customer_id == customer_id)
    if visible is not None:
        query = query.where(visible)
    return await _page(s, query, limit=limit, before=before)


async def conversation_messages(
    s: AsyncSession,
    conversation_id: int,
    *,
    limit: int,
    before: str | None,
    visible: ColumnElement[bool] | None = None,
) -> MessagePage:
    """A conversation's messages, newest first."""
    if await s.get(Conversation, conversation_id) is None:
        raise NotFound(f"conversation {conversation_id} not found")
    query = select(Message).where(Message.conversation_id == conversation_id)
    if visible is not None:
        query = query.where(visible)
    return await _page(s, query, limit=limit, before=before)


async def conversation_out(s: AsyncSession, conv: Conversation) -> ConversationOut:
    ep = await s.get_one(Endpoint, conv.endpoint_id)
    return ConversationOut(
        id=conv.id,
        customer_id=conv.customer_id,
        channel=conv.channel,
        endpoint=endpoint_out(ep),
        our_address=conv.our_address,
        subject=conv.subject,
        state=conv.state,
        queue=conv.queue,
        priority=conv.priority,
        assignee_id=conv.assignee_id,
        labels=list(conv.labels),
        participants=list(conv.participants),
        disposition=conv.disposition,
        created_at=conv.created_at,
        last_activity_at=conv.last_activity_at,
        last_inbound_at=conv.last_inbound_at,
        closed_at=conv.closed_at,
    )


async def get_conversation(s: AsyncSession, conversation_id: int) -> ConversationOut:
    conv = await s.get(Conversation, conversation_id)
    if conv is None:
        raise NotFound(f"conversation {conversation_id} not found")
    return await conversation_out(s, conv)


async def customer_conversations(s: AsyncSession, customer_id: int) -> list[ConversationOut]:
    query = select(Conversation).where(Conversation.customer_id == customer_id)
    rows = (await s.scalars(query.order_by(Conversation.last_activity_at.desc()).limit(200))).all()
    return [await conversation_out(s, c) for c in rows]
