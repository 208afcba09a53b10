"""Console commands: each takes the connection and its args and returns a result dict."""

from __future__ import annotations

from typing import Any

from agent_console.commanding import Command, Console
from agent_console.connection import Connection
from agent_console.protocol import frame
from contract.errors import InvalidInput
from hub.access import note_team
from hub.ingest import media


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


async def set_state(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    state = await gw.hub.work.set_state(
        conn.agent_id, _str(args, "state"), _str(args, "reason", required=False)
    )
    return {"state": state}


async def accept(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = await gw.hub.work.accept(_int(args, "offer_id"), conn.agent_id)
    conn.follow(conv_id)
    return {"conversation_id": conv_id}


async def reject(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    await gw.hub.work.reject(_int(args, "offer_id"), conn.agent_id)
    return {}


async def open_(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    data = await gw.hub.console.open_conversation(conn.principal, conv_id)
    data["viewers"] = await gw.start_viewing(conn, conv_id)
    return data


async def monitor(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    data = await gw.hub.console.open_conversation(conn.principal, conv_id)
    data["read_only"] = True
    # Its messages and notes now reach this connection (supervisors get only the floor).
    if conv_id not in conn.conversations:
        conn.monitoring.add(conv_id)
        conn.follow(conv_id)
    return data


async def close_view(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    if conv_id in conn.monitoring:
        conn.monitoring.discard(conv_id)
        conn.unfollow(conv_id)
    await gw.stop_viewing(conn, conv_id)
    return {}


async def history(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    before = args.get("before")
    if before is not None and not isinstance(before, str):
        raise InvalidInput("before must be a cursor string")
    customer_id = _int(args, "customer_id")
    return await gw.hub.console.history(conn.principal, customer_id, before)


async def reply(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    await gw.hub.console.ensure_writable(conn.principal, conv_id)
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
    return {"message": await gw.hub.console.message(row)}


async def note(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    await gw.hub.console.ensure_readable(conn.principal, conv_id)
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
        await gw.notify(
            await gw.hub.console.agent_ids(mentions),
            frame(
                "mention",
                {
                    "conversation_id": conv_id,
                    "by": conn.principal.display_name,
                    "text": row.text[:200],
                },
            ),
        )
    return {"message": await gw.hub.console.message(row)}


async def transfer(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    await gw.hub.console.ensure_writable(conn.principal, conv_id)
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


async def wrap_up(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    await gw.hub.console.ensure_writable(conn.principal, conv_id)
    await gw.hub.work.wrap_up(conv_id, agent_id=conn.agent_id)
    return {}


async def close(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    await gw.hub.console.ensure_writable(conn.principal, conv_id)
    await gw.hub.conversations.close(
        conv_id, agent_id=conn.agent_id, disposition=_str(args, "disposition", required=False)
    )
    return {}


async def set_labels(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    labels = args.get("labels")
    if not isinstance(labels, list):
        raise InvalidInput("labels must be a list")
    conv_id = _int(args, "conversation_id")
    await gw.hub.console.ensure_writable(conn.principal, conv_id)
    await gw.hub.work.set_labels(conv_id, [str(x) for x in labels], by=conn.agent_id)
    return {}


async def set_priority(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    if conn.principal.role == "agent":
        await gw.hub.console.ensure_writable(conn.principal, conv_id)
    await gw.hub.work.set_priority(conv_id, _int(args, "priority"), by=conn.agent_id)
    return {}


async def typing(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    await gw.hub.console.typing(conn.principal, _int(args, "conversation_id"))
    return {}


async def update_customer(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    customer_id = _int(args, "customer_id")
    await gw.hub.console.ensure_customer(conn.principal, customer_id)
    changes = {k: v for k, v in args.items() if not k.startswith("_") and k != "customer_id"}
    await gw.hub.customers.update_profile(customer_id, changes, actor=conn.principal.name)
    return {"customer": await gw.hub.console.customer(customer_id)}


async def link_customer(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    """The caller says they are the customer with this email address or phone number."""
    customer_id = _int(args, "customer_id")
    await gw.hub.console.ensure_customer(conn.principal, customer_id)
    # The status alone: whose address it is stays with the supervisors (customers.merge).
    return await gw.hub.customers.link_request(
        customer_id,
        _str(args, "address"),
        actor=conn.principal.name,
        region=gw.hub.settings.default_phone_region,
    )


async def merge_customer(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    customer_id, other_id = _int(args, "customer_id"), _int(args, "other_id")
    await gw.hub.console.ensure_customer(conn.principal, customer_id, other_id)
    audit_id = await gw.hub.customers.merge(
        customer_id,
        other_id,
        actor=conn.principal.name,
        force=bool(args.get("force", False)),
    )
    return {"audit_id": audit_id, "customer": await gw.hub.console.customer(customer_id)}


async def unmerge_customer(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    audit_id = _int(args, "audit_id")
    survivor = await gw.hub.customers.unmerge(audit_id, actor=conn.principal.name)
    return {"customer": await gw.hub.console.customer(survivor)}


async def retry_attachment(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    """Fetch a failed attachment again (as ``POST /api/v1/attachments/{id}/retry``)."""
    attachment_id = _int(args, "attachment_id")
    await gw.hub.console.ensure_attachment(conn.principal, attachment_id)
    await media.retry(gw.hub.tx, attachment_id)
    return {"attachment": await gw.hub.console.attachment(attachment_id)}


async def canned(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    """Canned responses matching ``q`` (all the caller may use without), filled for the
    conversation when one is named."""
    conv_id = _int(args, "conversation_id") if "conversation_id" in args else None
    q = args.get("q", "")
    items = await gw.hub.console.canned(conn.principal, conv_id, q if isinstance(q, str) else "")
    return {"items": items}


async def dispositions(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    """The codes a conversation may close with and whether its queue requires one."""
    conv_id = _int(args, "conversation_id")
    return await gw.hub.console.dispositions(conn.principal, conv_id)


async def agents(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    return {"items": await gw.hub.console.agents_board()}


async def reassign(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    conv_id = _int(args, "conversation_id")
    await gw.hub.console.ensure_readable(conn.principal, conv_id)
    await gw.hub.work.transfer(
        conv_id,
        by=conn.agent_id,
        to_agent=_int(args, "agent_id"),
        note=_str(args, "note", required=False),
    )
    return {}


async def force_state(gw: Console, conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
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
    "link_customer": "customers.write",
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
    "link_customer": link_customer,
    "merge_customer": merge_customer,
    "unmerge_customer": unmerge_customer,
    "retry_attachment": retry_attachment,
    "canned": canned,
    "dispositions": dispositions,
    "agents": agents,
    "reassign": reassign,
    "force_state": force_state,
}
