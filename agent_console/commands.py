"""Console commands: each takes the connection and its args and returns a result dict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from agent_console import views
from agent_console.protocol import frame
from contract.errors import Conflict, InvalidInput, NotFound
from hub import queries
from hub.access import (
    ensure_attachment,
    ensure_conversation,
    ensure_customer,
    note_filter,
    note_team,
)
from hub.ingest import media
from hub.work import canned as canned_texts
from storage.models import Agent, Conversation

if TYPE_CHECKING:
    from agent_console.gateway import Command, Connection, ConsoleGateway


def _int(args: dict[str, Any], name: str) -> int:
    value = args.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer")
    return value


def _str(args: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = args.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"{name} must be a non-empty string")
    return value


async def _can_touch(gw: ConsoleGateway, conn: Connection, conversation_id: int) -> Conversation:
    async with gw.hub.sessions() as s:
        await ensure_conversation(s, conn.principal, conversation_id)
        conv = await s.get(Conversation, conversation_id)
    if conv is None:
        raise NotFound(f"conversation {conversation_id} not found")
    if conn.principal.role == "agent" and conv.assignee_id != conn.agent_id:
        raise Conflict("this conversation is not assigned to you")
    return conv


async def set_state(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    state = await gw.hub.work.set_state(
        conn.agent_id, _str(args, "state"), _str(args, "reason", required=False)
    )
    return {"state": state}


async def accept(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = await gw.hub.work.accept(_int(args, "offer_id"), conn.agent_id)
    conn.follow(conv_id)
    return {"conversation_id": conv_id}


async def reject(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    await gw.hub.work.reject(_int(args, "offer_id"), conn.agent_id)
    return {}


async def open_(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    async with gw.hub.sessions() as s:
        # Reading is what the caller may see (their team's queues too); writing stays with
        # the assignee (``_can_touch``).
        await ensure_conversation(s, conn.principal, conv_id)
        data = await views.open_conversation(s, conv_id, note_filter(conn.principal))
    data["viewers"] = await gw.start_viewing(conn, conv_id)
    return data


async def monitor(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    async with gw.hub.sessions() as s:
        await ensure_conversation(s, conn.principal, conv_id)
        data = await views.open_conversation(s, conv_id, note_filter(conn.principal))
    data["read_only"] = True
    # Its messages and notes now reach this connection (supervisors get only the floor).
    if conv_id not in conn.conversations:
        conn.monitoring.add(conv_id)
        conn.follow(conv_id)
    return data


async def close_view(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    if conv_id in conn.monitoring:
        conn.monitoring.discard(conv_id)
        conn.unfollow(conv_id)
    await gw._stop_viewing(conn, conv_id)
    return {}


async def history(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    before = args.get("before")
    if before is not None and not isinstance(before, str):
        raise InvalidInput("before must be a cursor string")
    customer_id = _int(args, "customer_id")
    async with gw.hub.sessions() as s:
        await ensure_customer(s, conn.principal, customer_id)
        page = await queries.history(
            s, customer_id, limit=50, before=before, visible=note_filter(conn.principal)
        )
    return page.model_dump(mode="json")


async def _message(gw: ConsoleGateway, row: Any) -> dict[str, Any]:
    async with gw.hub.sessions() as s:
        out = await queries.messages_out(s, [row])
    return out[0].model_dump(mode="json")


async def reply(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    await _can_touch(gw, conn, conv_id)
    channel = args.get("channel") or None
    endpoint = args.get("endpoint") or None
    row = await gw.hub.conversations.reply(
        conv_id,
        text=_str(args, "text"),
        author_id=conn.agent_id,
        channel=channel if isinstance(channel, str) else None,
        endpoint=endpoint if isinstance(endpoint, str) else None,
        options=args.get("options") if isinstance(args.get("options"), dict) else None,
        client_msg_id=args.get("_client_msg_id"),
    )
    return {"message": await _message(gw, row)}


async def note(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    async with gw.hub.sessions() as s:
        await ensure_conversation(s, conn.principal, conv_id)
    row = await gw.hub.conversations.reply(
        conv_id,
        text=_str(args, "text"),
        author_id=conn.agent_id,
        note=True,
        client_msg_id=args.get("_client_msg_id"),
        team_id=note_team(conn.principal, str(args.get("visibility") or "all")),
    )
    mentions = row.meta.get("mentions", [])
    if mentions:
        async with gw.hub.sessions() as s:
            ids = set((await s.scalars(select(Agent.id).where(Agent.username.in_(mentions)))).all())
        await gw.notify(
            ids,
            frame(
                "mention",
                {
                    "conversation_id": conv_id,
                    "by": conn.principal.display_name,
                    "text": row.text[:200],
                },
            ),
        )
    return {"message": await _message(gw, row)}


async def transfer(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    await _can_touch(gw, conn, conv_id)
    to_agent = args.get("agent_id")
    to_queue = args.get("queue")
    await gw.hub.work.transfer(
        conv_id,
        by=conn.agent_id,
        to_agent=to_agent if isinstance(to_agent, int) else None,
        to_queue=to_queue if isinstance(to_queue, str) and to_queue else None,
        note=_str(args, "note", required=False),
    )
    return {}


async def wrap_up(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    await _can_touch(gw, conn, conv_id)
    await gw.hub.work.wrap_up(conv_id, agent_id=conn.agent_id)
    return {}


async def close(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    await _can_touch(gw, conn, conv_id)
    await gw.hub.conversations.close(
        conv_id, agent_id=conn.agent_id, disposition=_str(args, "disposition", required=False)
    )
    return {}


async def set_labels(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    labels = args.get("labels")
    if not isinstance(labels, list):
        raise InvalidInput("labels must be a list")
    conv_id = _int(args, "conversation_id")
    await _can_touch(gw, conn, conv_id)
    await gw.hub.work.set_labels(conv_id, [str(x) for x in labels], by=conn.agent_id)
    return {}


async def set_priority(
    gw: ConsoleGateway, conn: Connection, args: dict[str, Any]
) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    if conn.principal.role == "agent":
        await _can_touch(gw, conn, conv_id)
    await gw.hub.work.set_priority(conv_id, _int(args, "priority"), by=conn.agent_id)
    return {}


async def typing(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv = await _can_touch(gw, conn, _int(args, "conversation_id"))
    adapter = gw.hub_adapters().get(conv.channel)
    if adapter is not None:
        async with gw.hub.sessions() as s:
            out = await queries.get_conversation(s, conv.id)
        await adapter.typing(channel=conv.channel, to=out.endpoint.address)
    return {}


async def update_customer(
    gw: ConsoleGateway, conn: Connection, args: dict[str, Any]
) -> dict[str, Any]:
    customer_id = _int(args, "customer_id")
    async with gw.hub.sessions() as s:
        await ensure_customer(s, conn.principal, customer_id)
    changes = {k: v for k, v in args.items() if not k.startswith("_") and k != "customer_id"}
    await gw.hub.customers.update_profile(customer_id, changes, actor=conn.principal.name)
    async with gw.hub.sessions() as s:
        customer = await queries.get_customer(s, customer_id)
    return {"customer": customer.model_dump(mode="json")}


async def merge_customer(
    gw: ConsoleGateway, conn: Connection, args: dict[str, Any]
) -> dict[str, Any]:
    customer_id, other_id = _int(args, "customer_id"), _int(args, "other_id")
    async with gw.hub.sessions() as s:
        await ensure_customer(s, conn.principal, customer_id)
        await ensure_customer(s, conn.principal, other_id)
    audit_id = await gw.hub.customers.merge(
        customer_id,
        other_id,
        actor=conn.principal.name,
        force=bool(args.get("force", False)),
    )
    async with gw.hub.sessions() as s:
        customer = await queries.get_customer(s, customer_id)
    return {"audit_id": audit_id, "customer": customer.model_dump(mode="json")}


async def unmerge_customer(
    gw: ConsoleGateway, conn: Connection, args: dict[str, Any]
) -> dict[str, Any]:
    audit_id = _int(args, "audit_id")
    survivor = await gw.hub.customers.unmerge(audit_id, actor=conn.principal.name)
    async with gw.hub.sessions() as s:
        customer = await queries.get_customer(s, survivor)
    return {"customer": customer.model_dump(mode="json")}


async def retry_attachment(
    gw: ConsoleGateway, conn: Connection, args: dict[str, Any]
) -> dict[str, Any]:
    """Fetch a failed attachment again (as ``POST /api/v1/attachments/{id}/retry``)."""
    attachment_id = _int(args, "attachment_id")
    async with gw.hub.sessions() as s:
        await ensure_attachment(s, conn.principal, attachment_id)
    await media.retry(gw.hub.tx, attachment_id)
    async with gw.hub.sessions() as s:
        out = await queries.attachment_out(s, attachment_id)
    return {"attachment": out.model_dump(mode="json")}


async def canned(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    """Canned responses matching ``q`` (all the caller may use without), filled for the
    conversation when one is named."""
    conv_id = _int(args, "conversation_id") if "conversation_id" in args else None
    q = args.get("q", "")
    async with gw.hub.sessions() as s:
        if conv_id is not None:
            await ensure_conversation(s, conn.principal, conv_id)
        langs = await canned_texts.search_languages(s, conn.principal, conv_id)
        rows = await canned_texts.search(
            s, conn.principal, q if isinstance(q, str) else "", languages=langs
        )
        values = (await canned_texts.placeholders_for(s, conn.principal, conv_id)).table()
    return {
        "items": [
            {
                "id": r.id,
                "shortcut": r.shortcut,
                "title": r.title,
                "text": r.text,
                "language": r.language,
                "expanded": canned_texts.expand(r.text, values),
            }
            for r in rows
        ]
    }


async def dispositions(
    gw: ConsoleGateway, conn: Connection, args: dict[str, Any]
) -> dict[str, Any]:
    """The codes a conversation may close with and whether its queue requires one."""
    conv_id = _int(args, "conversation_id")
    async with gw.hub.sessions() as s:
        await ensure_conversation(s, conn.principal, conv_id)
        queue = await s.scalar(select(Conversation.queue).where(Conversation.id == conv_id)) or ""
        rows = await canned_texts.dispositions_for(s, queue)
        required = await canned_texts.disposition_required(s, queue)
    return {
        "items": [{"code": r.code, "label": r.label} for r in rows],
        "required": required,
    }


async def agents(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    async with gw.hub.sessions() as s:
        return {"items": await views.agents_board(s)}


async def reassign(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    async with gw.hub.sessions() as s:
        await ensure_conversation(s, conn.principal, conv_id)
    await gw.hub.work.transfer(
        conv_id,
        by=conn.agent_id,
        to_agent=_int(args, "agent_id"),
        note=_str(args, "note", required=False),
    )
    return {}


async def force_state(gw: ConsoleGateway, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    state = await gw.hub.work.set_state(
        _int(args, "agent_id"),
        _str(args, "state"),
        _str(args, "reason", required=False) or f"set by {conn.principal.name}",
    )
    return {"state": state}


# The hub.access permission of each command: the gateway refuses a command without one.
COMMAND_PERMISSIONS: dict[str, str] = {
    "set_state": "console.self",
    "accept": "console.self",
    "reject": "console.self",
    "open": "conversations.read",
    "monitor": "floor.monitor",
    "close_view": "console.self",
    "history": "customers.read",
    "reply": "conversations.write",
    "note": "conversations.write",
    "transfer": "conversations.write",
    "wrap_up": "conversations.write",
    "close": "conversations.write",
    "set_labels": "conversations.write",
    "set_priority": "conversations.write",
    "typing": "conversations.write",
    "update_customer": "customers.write",
    "merge_customer": "customers.merge",
    "unmerge_customer": "customers.merge",
    "retry_attachment": "conversations.write",
    "canned": "canned.read",
    "dispositions": "canned.read",
    "agents": "agents.read",
    "reassign": "floor.manage",
    "force_state": "floor.manage",
}

COMMANDS: dict[str, Command] = {
    "set_state": set_state,
    "accept": accept,
    "reject": reject,
    "open": open_,
    "monitor": monitor,
    "close_view": close_view,
    "history": history,
    "reply": reply,
    "note": note,
    "transfer": transfer,
    "wrap_up": wrap_up,
    "close": close,
    "set_labels": set_labels,
    "set_priority": set_priority,
    "typing": typing,
    "update_customer": update_customer,
    "merge_customer": merge_customer,
    "unmerge_customer": unmerge_customer,
    "retry_attachment": retry_attachment,
    "canned": canned,
    "dispositions": dispositions,
    "agents": agents,
    "reassign": reassign,
    "force_state": force_state,
}
