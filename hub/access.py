"""Who may see and do what: one decision per request, the same for REST and the console.

Every REST operation and console command names a permission of ``PERMISSIONS``; a name
that is not in the table is refused (deny by default). A permission says which roles of a
logged-in person and which scopes of an integration token may use it. What a person may
*see* is narrower than what they may do: an agent sees the conversations assigned, offered
or transferred to them and those of their team's queues (or granted to their team by a
transfer), and customers only through those conversations (then their whole history);
supervisors the same for their
team (a supervisor of no team: the whole floor); admins and integration tokens everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from contract.errors import InvalidInput, NotFound
from hub.accounts.principal import Principal
from storage.models import (
    Conversation,
    ConversationGrant,
    Customer,
    Message,
    MessageAttachment,
    Offer,
    Queue,
)

USERS = frozenset({"agent", "supervisor", "admin"})
LEADS = frozenset({"supervisor", "admin"})
ADMINS = frozenset({"admin"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """Who may use a permission: roles of people, scopes of integration tokens."""

    roles: frozenset[str]
    scopes: frozenset[str]


def _grant(roles: frozenset[str], *scopes: str) -> Grant:
    return Grant(roles=roles, scopes=frozenset({*scopes, "admin"}))


PERMISSIONS: dict[str, Grant] = {
    # Work on conversations and customers (narrowed further by visibility).
    "conversations.read": _grant(USERS, "read"),
    "conversations.write": _grant(USERS),
    "customers.read": _grant(USERS, "read"),
    "customers.write": _grant(USERS),
    "customers.merge": _grant(LEADS),
    "customers.privacy": _grant(LEADS),  # export and erase
    # The console: one's own state and offers; watching and steering the floor.
    "console.self": Grant(roles=USERS, scopes=frozenset()),  # a person's own; no token
    "floor.monitor": _grant(LEADS),
    "floor.manage": _grant(LEADS),
    # The floor.
    "agents.read": _grant(USERS, "read"),
    "agents.write": _grant(LEADS),
    "agents.create": _grant(ADMINS),
    "queues.read": _grant(USERS, "read"),
    "queues.write": _grant(ADMINS),
    "outbox.read": _grant(LEADS, "read"),
    "canned.read": _grant(USERS, "read"),  # canned responses and dispositions
    "canned.write": _grant(LEADS),  # supervisors their team's, admins all
    "reports.read": _grant(LEADS, "reports"),
    # Integrations and administration.
    "inbound": _grant(frozenset(), "inbound"),  # tokens only: people never post as customers
    "events.read": _grant(ADMINS, "read"),
    "tokens.manage": _grant(ADMINS),
    "audit.read": _grant(ADMINS),
    "channels.manage": _grant(ADMINS),  # channel status, test sends, webhook registration
    "workflow.read": _grant(LEADS, "read"),  # automation rules and SLA policies
    "workflow.manage": _grant(ADMINS),
}


def allowed(principal: Principal, permission: str) -> bool:
    """The decision itself: unknown permissions are refused."""
    grant = PERMISSIONS.get(permission)
    if grant is None:
        return False
    if principal.is_token:
        return bool(principal.scopes & grant.scopes)
    return principal.role in grant.roles


def sees_everything(principal: Principal) -> bool:
    """Admins and integration tokens are not limited to a team's conversations; nor is a
    supervisor of no team in particular (the floor supervisor of a small center)."""
    if principal.role == "supervisor" and not principal.team_ids:
        return True
    return principal.is_token or principal.role == "admin"


def conversation_filter(
    principal: Principal, conv: Any = Conversation
) -> ColumnElement[bool] | None:
    """SQL condition on ``conv`` (``Conversation`` or an alias) for the conversations that
    are the caller's work: assigned, offered, in their team's queues or granted to their
    team (None: everything). Floors, snapshots and customer search use this."""
    if sees_everything(principal):
        return None
    me = principal.agent_id if principal.agent_id is not None else -1
    clauses: list[ColumnElement[bool]] = [
        conv.assignee_id == me,
        exists().where(Offer.conversation_id == conv.id, Offer.agent_id == me),
    ]
    if principal.team_ids:
        teams = list(principal.team_ids)
        clauses.append(conv.queue.in_(select(Queue.name).where(Queue.team_id.in_(teams))))
        clauses.append(
            exists().where(
                ConversationGrant.conversation_id == conv.id,
                ConversationGrant.team_id.in_(teams),
            )
        )
    return or_(*clauses)


def customer_filter(principal: Principal) -> ColumnElement[bool] | None:
    """SQL condition on ``Customer``: customers seen through a conversation of the caller's
    work. Such a customer's whole history is readable: serving someone means knowing what
    they said on every channel before."""
    work = aliased(Conversation)
    visible = conversation_filter(principal, work)
    if visible is None:
        return None
    return exists().where(work.customer_id == Customer.id, visible)


def readable_filter(principal: Principal) -> ColumnElement[bool] | None:
    """SQL condition on ``Conversation``: any conversation of a customer the caller may see."""
    work = aliased(Conversation)
    visible = conversation_filter(principal, work)
    if visible is None:
        return None
    return exists().where(work.customer_id == Conversation.customer_id, visible)


def note_filter(principal: Principal) -> ColumnElement[bool] | None:
    """SQL condition on ``Message``: hides notes written for another team (None: all)."""
    if principal.is_token or principal.role == "admin":
        return None
    # COALESCE: a note without the key (most) must compare false, not NULL.
    team_note = and_(
        Message.direction == "note",
        func.coalesce(Message.meta["visibility"].as_string(), "all") == "team",
    )
    if not principal.team_ids:
        return not_(team_note)
    return or_(not_(team_note), Message.meta["team_id"].as_integer().in_(list(principal.team_ids)))


def note_team(principal: Principal, visibility: str) -> int | None:
    """The team a note is written for ("team"), or None for everyone ("all")."""
    if visibility != "team":
        return None
    if len(principal.team_ids) != 1:
        raise InvalidInput("a note for your team needs you to belong to exactly one team")
    return next(iter(principal.team_ids))


def reads_note(principal: Principal, payload: dict[str, Any]) -> bool:
    """Whether a note event's text may reach this person (the same rule as ``note_filter``)."""
    if payload.get("visibility") != "team" or principal.is_token or principal.role == "admin":
        return True
    return payload.get("team_id") in principal.team_ids


async def ensure_conversation(s: AsyncSession, principal: Principal, conversation_id: int) -> None:
    """NotFound unless the caller may see the conversation (a 404, never a hint it exists)."""
    query = select(Conversation.id).where(Conversation.id == conversation_id)
    visible = readable_filter(principal)
    if visible is not None:
        query = query.where(visible)
    if await s.scalar(query) is None:
        raise NotFound(f"conversation {conversation_id} not found")


async def ensure_customer(s: AsyncSession, principal: Principal, customer_id: int) -> None:
    """NotFound unless the caller may see the customer."""
    query = select(Customer.id).where(Customer.id == customer_id)
    visible = customer_filter(principal)
    if visible is not None:
        query = query.where(visible)
    if await s.scalar(query) is None:
        raise NotFound(f"customer {customer_id} not found")


async def ensure_attachment(s: AsyncSession, principal: Principal, attachment_id: int) -> None:
    """NotFound unless the attachment's conversation is readable by the caller."""
    conversation_id = await s.scalar(
        select(Message.conversation_id)
        .join(MessageAttachment, MessageAttachment.message_id == Message.id)
        .where(MessageAttachment.id == attachment_id)
    )
    missing = NotFound(f"attachment {attachment_id} not found")
    if conversation_id is None:
        raise missing
    try:
        await ensure_conversation(s, principal, conversation_id)
    except NotFound:
        raise missing from None
