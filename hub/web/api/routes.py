"""REST API handlers (``/api/v1``); every operation is registered for OpenAPI."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from contract.errors import InvalidInput, NotFound
from hub import queries
from hub.access import (
    customer_filter,
    ensure_attachment,
    ensure_conversation,
    ensure_customer,
    note_filter,
    note_team,
)
from hub.ingest import media
from hub.uow import events_between, head_seq
from hub.web import keys
from hub.web.api.openapi import ApiRegistry, Param, json_response, parse_body, principal_of
from hub.web.api.schemas import (
    MAX_ID,
    AttachmentOut,
    ConversationList,
    ConversationOut,
    CustomerList,
    CustomerOut,
    EventOut,
    EventPage,
    MessageOut,
    MessagePage,
    OutboxItemOut,
    OutboxList,
    ReplyIn,
)
from storage.models import MessageAttachment, OutboxItem

api = ApiRegistry()


def as_int(raw: str, name: str, *, least: int = 1, most: int = MAX_ID) -> int:
    """A decimal integer from a path or query string within bounds, or a 400 naming it.

    ASCII digits only: ``str.isdigit`` also passes "²", which ``int`` refuses; and the
    bounds keep numbers the database cannot hold away from its driver."""
    if not (raw.isascii() and raw.isdigit()) or not least <= int(raw) <= most:
        raise InvalidInput(f"{name} must be an integer from {least} to {most}")
    return int(raw)


def path_int(request: web.Request, name: str) -> int:
    """A row id from the path, or a 400 naming it."""
    return as_int(request.match_info[name], name)


def _limit(request: web.Request, default: int = 50, most: int = 200) -> int:
    return as_int(request.query.get("limit", str(default)), "limit", most=most)


def limit_param(default: int, most: int) -> Param:
    """The ``limit`` query parameter of a paged list."""
    schema = {"type": "integer", "minimum": 1, "maximum": most, "default": default}
    return Param(description=f"1-{most}, default {default}", schema=schema)


@api.route(
    "GET",
    "/api/v1/customers",
    access="customers.read",
    summary="Search customers by phone, email, Telegram user id or free text",
    tag="customers",
    responses={200: CustomerList},
    query={
        "phone": "any phone spelling",
        "email": "address",
        "telegram_user_id": "id",
        "q": "name/address/id",
        "limit": limit_param(50, 200),
    },
)
async def list_customers(request: web.Request) -> web.Response:
    visible = customer_filter(principal_of(request))
    hub = request.app[keys.HUB]
    q = request.query

    async def work(s: AsyncSession) -> list[CustomerOut]:
        return await queries.search_customers(
            s,
            region=hub.settings.default_phone_region,
            phone=q.get("phone"),
            email=q.get("email"),
            telegram_user_id=q.get("telegram_user_id"),
            q=q.get("q"),
            limit=_limit(request),
            visible=visible,
        )

    return json_response(CustomerList(items=await hub.tx.read(work)))


@api.route(
    "GET",
    "/api/v1/customers/{customer_id}",
    access="customers.read",
    summary="One customer with endpoints",
    tag="customers",
    responses={200: CustomerOut},
)
async def get_customer(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    cid = path_int(request, "customer_id")

    async def work(s: AsyncSession) -> CustomerOut:
        await ensure_customer(s, principal, cid)
        return await queries.get_customer(s, cid)

    return json_response(await hub.tx.read(work))


@api.route(
    "GET",
    "/api/v1/customers/{customer_id}/history",
    access="customers.read",
    summary="The customer's unified timeline across channels, newest first",
    tag="customers",
    responses={200: MessagePage},
    query={"limit": limit_param(50, 200), "before": "cursor from the previous page's next"},
)
async def customer_history(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    cid, limit, before = (
        path_int(request, "customer_id"),
        _limit(request),
        request.query.get("before"),
    )

    async def work(s: AsyncSession) -> MessagePage:
        await ensure_customer(s, principal, cid)
        visible = note_filter(principal)
        return await queries.history(s, cid, limit=limit, before=before, visible=visible)

    return json_response(await hub.tx.read(work))


@api.route(
    "GET",
    "/api/v1/customers/{customer_id}/conversations",
    access="customers.read",
    summary="The customer's conversations, most recently active first",
    tag="customers",
    responses={200: ConversationList},
)
async def customer_conversations(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    cid = path_int(request, "customer_id")

    async def work(s: AsyncSession) -> list[ConversationOut]:
        await ensure_customer(s, principal, cid)
        return await queries.customer_conversations(s, cid)

    return json_response(ConversationList(items=await hub.tx.read(work)))


@api.route(
    "GET",
    "/api/v1/conversations/{conversation_id}",
    access="conversations.read",
    summary="One conversation",
    tag="conversations",
    responses={200: ConversationOut},
)
async def get_conversation(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    cid = path_int(request, "conversation_id")

    async def work(s: AsyncSession) -> ConversationOut:
        await ensure_conversation(s, principal, cid)
        return await queries.get_conversation(s, cid)

    return json_response(await hub.tx.read(work))


@api.route(
    "GET",
    "/api/v1/conversations/{conversation_id}/messages",
    access="conversations.read",
    summary="A conversation's messages, newest first",
    tag="conversations",
    responses={200: MessagePage},
    query={"limit": limit_param(50, 200), "before": "cursor"},
)
async def conversation_messages(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    cid, limit, before = (
        path_int(request, "conversation_id"),
        _limit(request),
        request.query.get("before"),
    )

    async def work(s: AsyncSession) -> MessagePage:
        await ensure_conversation(s, principal, cid)
        visible = note_filter(principal)
        return await queries.conversation_messages(
            s, cid, limit=limit, before=before, visible=visible
        )

    return json_response(await hub.tx.read(work))


@api.route(
    "POST",
    "/api/v1/conversations/{conversation_id}/messages",
    access="conversations.write",
    summary="Reply to the customer (through the outbox) or add an internal note",
    tag="conversations",
    body=ReplyIn,
    responses={201: MessageOut},
)
async def post_message(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    cid = path_int(request, "conversation_id")
    await hub.tx.read(lambda s: ensure_conversation(s, principal, cid))
    body = await parse_body(request, ReplyIn)
    row = await hub.conversations.reply(
        cid,
        text=body.text,
        author_id=principal.agent_id,
        note=body.note,
        channel=body.channel,
        endpoint=body.endpoint,
        options=body.options,
        client_msg_id=body.client_msg_id,
        team_id=note_team(principal, body.visibility) if body.note else None,
    )
    out = await hub.tx.read(lambda s: queries.messages_out(s, [row]))
    return json_response(out[0], status=201)


@api.route(
    "GET",
    "/api/v1/attachments/{attachment_id}",
    access="conversations.read",
    summary="Download a stored attachment",
    tag="conversations",
    responses={200: None},
)
async def get_attachment(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    aid = path_int(request, "attachment_id")

    async def work(s: AsyncSession) -> MessageAttachment:
        await ensure_attachment(s, principal, aid)
        row = await s.get(MessageAttachment, aid, options=[undefer(MessageAttachment.data)])
        if row is None or row.data is None:
            raise NotFound(f"attachment {aid} not stored")
        return row

    row = await hub.tx.read(work)
    disposition = "attachment" if not row.content_type.startswith("image/") else "inline"
    return web.Response(
        body=row.data,
        content_type=row.content_type.split(";")[0] or "application/octet-stream",
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{_quote(row.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@api.route(
    "POST",
    "/api/v1/attachments/{attachment_id}/retry",
    access="conversations.write",
    summary="Fetch a failed attachment from the provider again (a fresh round of attempts)",
    tag="conversations",
    responses={200: AttachmentOut},
)
async def retry_attachment(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    aid = path_int(request, "attachment_id")
    await hub.tx.read(lambda s: ensure_attachment(s, principal, aid))
    await media.retry(hub.tx, aid)
    return json_response(await hub.tx.read(lambda s: queries.attachment_out(s, aid)))


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name or "attachment", safe="")


@api.route(
    "GET",
    "/api/v1/outbox",
    access="outbox.read",
    summary="Outbound sends by state (pending, sending, done, dead)",
    tag="operations",
    responses={200: OutboxList},
    query={
        "state": Param(
            description="default dead",
            schema={"enum": ["pending", "sending", "done", "dead"], "default": "dead"},
        ),
        "limit": limit_param(50, 200),
    },
)
async def list_outbox(request: web.Request) -> web.Response:
    hub = request.app[keys.HUB]
    state = request.query.get("state", "dead")
    if state not in ("pending", "sending", "done", "dead"):
        raise InvalidInput("state must be pending, sending, done or dead")

    async def work(s: AsyncSession) -> list[OutboxItemOut]:
        rows = await s.scalars(
            select(OutboxItem)
            .where(OutboxItem.state == state)
            .order_by(OutboxItem.id.desc())
            .limit(_limit(request))
        )
        return [
            OutboxItemOut(
                id=r.id,
                message_id=r.message_id,
                channel=r.channel,
                state=r.state,
                attempts=r.attempts,
                next_attempt_at=r.next_attempt_at,
                last_error=r.last_error,
            )
            for r in rows
        ]

    return json_response(OutboxList(items=await hub.tx.read(work)))


@api.route(
    "GET",
    "/api/v1/events",
    access="events.read",
    summary="The interaction stream from a sequence number (audit, integrations)",
    tag="operations",
    responses={200: EventPage},
    query={
        "after": Param(
            description="last seq seen (default 0)",
            schema={"type": "integer", "minimum": 0, "maximum": MAX_ID - 1, "default": 0},
        ),
        "limit": limit_param(100, 1000),
    },
)
async def list_events(request: web.Request) -> web.Response:
    hub = request.app[keys.HUB]
    after = as_int(request.query.get("after", "0"), "after", least=0, most=MAX_ID - 1)
    limit = _limit(request, default=100, most=1000)

    async def work(s: AsyncSession) -> EventPage:
        head = await head_seq(s)
        first = after + 1
        events = await events_between(s, first, min(head, first + limit - 1))
        return EventPage(items=[EventOut.model_validate(e.as_json()) for e in events], head=head)

    return json_response(await hub.tx.read(work))
