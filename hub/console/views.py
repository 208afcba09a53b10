"""Read models of the agent console: the opening snapshot, an opened conversation, the
agents' board, and what a connection follows (``hub.console.service`` wraps them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import events, queries
from storage.models import Agent, Call, Conversation, Customer, Event, Message, Offer, Queue

OPEN = ("queued", "offered", "assigned", "wrap_up")


async def conversation_summaries(s: AsyncSession, rows: list[Conversation]) -> list[dict[str, Any]]:
    """List items: who, channel, state, unread count (inbound since our last reply)."""
    if not rows:
        return []
    ids = [c.id for c in rows]
    names = dict(
        (
            await s.execute(
                select(Customer.id, Customer.display_name).where(
                    Customer.id.in_({c.customer_id for c in rows})
                )
            )
        ).all()
    )
    last_out = dict(
        (
            await s.execute(
                select(Message.conversation_id, func.max(Message.id))
                .where(Message.conversation_id.in_(ids), Message.direction == "out")
                .group_by(Message.conversation_id)
            )
        ).all()
    )
    inbound = (
        await s.execute(
            select(Message.conversation_id, Message.id, Message.text).where(
                Message.conversation_id.in_(ids), Message.direction == "in"
            )
        )
    ).all()
    unread: dict[int, int] = {}
    preview: dict[int, tuple[int, str]] = {}
    for conv_id, msg_id, text in inbound:
        if msg_id > last_out.get(conv_id, 0):
            unread[conv_id] = unread.get(conv_id, 0) + 1
        if msg_id > preview.get(conv_id, (0, ""))[0]:
            preview[conv_id] = (msg_id, text)
    return [
        {
            "id": c.id,
            "customer_id": c.customer_id,
            "customer_name": names.get(c.customer_id, ""),
            "channel": c.channel,
            "state": c.state,
            "queue": c.queue,
            "priority": c.priority,
            "labels": list(c.labels),
            "assignee_id": c.assignee_id,
            "subject": c.subject,
            "unread": unread.get(c.id, 0),
            "preview": preview.get(c.id, (0, ""))[1][:140],
            "waiting_since": c.waiting_since.isoformat() if c.waiting_since else None,
            "created_at": c.created_at.isoformat(),
            "last_activity_at": c.last_activity_at.isoformat(),
            "first_response_at": c.first_response_at.isoformat() if c.first_response_at else None,
        }
        for c in rows
    ]


async def offers_for(s: AsyncSession, agent_id: int) -> list[dict[str, Any]]:
    rows = (
        await s.execute(
            select(Offer, Conversation, Customer)
            .join(Conversation, Conversation.id == Offer.conversation_id)
            .join(Customer, Customer.id == Conversation.customer_id)
            .where(Offer.agent_id == agent_id, Offer.state == "pending")
            .order_by(Offer.id)
        )
    ).all()
    out = []
    for offer, conv, customer in rows:
        preview = await s.scalar(
            select(Message.text)
            .where(Message.conversation_id == conv.id, Message.direction == "in")
            .order_by(Message.id.desc())
            .limit(1)
        )
        # Why it came to this agent first lives in its offer.created event (the snapshot must
        # say so too, or "your customer" vanishes on reload).
        created = await s.scalar(
            select(Event.payload)
            .where(
                Event.conversation_id == conv.id,
                Event.type == events.OfferCreated.TYPE,
                Event.agent_id == agent_id,
            )
            .order_by(Event.seq.desc())
            .limit(1)
        )
        created = created if isinstance(created, dict) else {}
        out.append(
            {
                "offer_id": offer.id,
                "preferred": created.get("preferred")
                if created.get("offer_id") == offer.id
                else None,
                "conversation_id": conv.id,
                "customer_id": conv.customer_id,
                "expires_at": offer.expires_at.isoformat(),
                "channel": conv.channel,
                "queue": conv.queue,
                "priority": conv.priority,
                "customer_name": customer.display_name,
                "segment": customer.segment,
                "preview": (preview or "")[:200],
            }
        )
    return out


async def agents_board(s: AsyncSession) -> list[dict[str, Any]]:
    agents = (await s.scalars(select(Agent).where(Agent.active.is_(True)).order_by(Agent.id))).all()
    loads = dict(
        (
            await s.execute(
                select(Conversation.assignee_id, func.count())
                .where(Conversation.state.in_(("assigned", "wrap_up")))
                .group_by(Conversation.assignee_id)
            )
        ).all()
    )
    return [
        {
            "id": a.id,
            "username": a.username,
            "display_name": a.display_name,
            "role": a.role,
            "state": a.state,
            "state_reason": a.state_reason,
            "state_since": a.state_since.isoformat(),
            "active_conversations": loads.get(a.id, 0),
        }
        for a in agents
    ]


async def snapshot(
    s: AsyncSession,
    agent_id: int,
    *,
    supervisor: bool,
    visible: ColumnElement[bool] | None = None,
) -> dict[str, Any]:
    """What a console shows right after connecting (a supervisor: the ``visible`` floor)."""
    if supervisor:
        query = select(Conversation).where(Conversation.state.in_(OPEN))
        if visible is not None:
            query = query.where(visible)
        convs = (await s.scalars(query.order_by(Conversation.id).limit(500))).all()
    else:
        convs = (
            await s.scalars(
                select(Conversation)
                .where(
                    Conversation.assignee_id == agent_id,
                    Conversation.state.in_(("assigned", "wrap_up")),
                )
                .order_by(Conversation.last_activity_at.desc())
            )
        ).all()
    counts = select(Conversation.queue, Conversation.state, func.count()).where(
        Conversation.state.in_(OPEN)
    )
    if visible is not None:
        counts = counts.where(visible)
    queues = (await s.execute(counts.group_by(Conversation.queue, Conversation.state))).all()
    data: dict[str, Any] = {
        "offers": await offers_for(s, agent_id),
        "conversations": await conversation_summaries(s, list(convs)),
        "queues": [{"queue": q, "state": st, "count": n} for q, st, n in queues],
    }
    if supervisor:
        data["agents"] = await agents_board(s)
    return data


async def open_conversation(
    s: AsyncSession, conversation_id: int, visible: ColumnElement[bool] | None = None
) -> dict[str, Any]:
    """The conversation, its customer (with endpoints) and the first page of history
    (``visible``: a ``hub.access.note_filter``)."""
    conv = await queries.get_conversation(s, conversation_id)
    customer = await queries.get_customer(s, conv.customer_id)
    page = await queries.history(s, conv.customer_id, limit=50, before=None, visible=visible)
    conversations = await queries.customer_conversations(s, conv.customer_id)
    return {
        "conversation": conv.model_dump(mode="json"),
        "customer": customer.model_dump(mode="json"),
        "history": page.model_dump(mode="json"),
        "customer_conversations": [c.model_dump(mode="json") for c in conversations],
        "call": await latest_call(s, conversation_id),
    }


async def latest_call(s: AsyncSession, conversation_id: int) -> dict[str, Any] | None:
    """The conversation's latest phone call (None without one): the console's call bar
    rebuilds itself from it after a reload."""
    call = await s.scalar(
        select(Call)
        .where(Call.conversation_id == conversation_id)
        .order_by(Call.id.desc())
        .limit(1)
    )
    if call is None:
        return None
    return {
        "call_sid": call.call_sid,
        "direction": call.direction,
        "state": call.state,
        "outcome": call.outcome,
        "agent_id": call.agent_id,
        "wait_s": call.wait_s,
        "talk_s": call.talk_s,
        "duration_s": call.duration_s,
        "answered_at": call.answered_at.isoformat() if call.answered_at else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
    }


async def involved(s: AsyncSession, agent_id: int) -> set[int]:
    """Conversations an agent works on or has a pending offer for (their console follows them)."""
    assigned = await s.scalars(
        select(Conversation.id).where(
            Conversation.assignee_id == agent_id,
            Conversation.state.in_(("assigned", "wrap_up")),
        )
    )
    offered = await s.scalars(
        select(Offer.conversation_id).where(Offer.agent_id == agent_id, Offer.state == "pending")
    )
    return set(assigned.all()) | set(offered.all())


async def team_queues(s: AsyncSession, team_ids: frozenset[int]) -> frozenset[str]:
    """The queues of some teams (a team supervisor's floor)."""
    rows = await s.scalars(select(Queue.name).where(Queue.team_id.in_(team_ids)))
    return frozenset(rows.all())


async def user_card(s: AsyncSession, agent_id: int) -> dict[str, Any]:
    """Who the console is for, as the welcome frame shows it."""
    agent = await s.get_one(Agent, agent_id)
    return {
        "id": agent.id,
        "username": agent.username,
        "display_name": agent.display_name,
        "role": agent.role,
        "state": agent.state,
        "state_reason": agent.state_reason,
        "language": agent.language,
    }


async def agent_ids(s: AsyncSession, usernames: list[str]) -> set[int]:
    """The ids of the named users (mentions in a note)."""
    if not usernames:
        return set()
    return set((await s.scalars(select(Agent.id).where(Agent.username.in_(usernames)))).all())
