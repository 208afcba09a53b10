"""What workflow does to a conversation, inside the caller's unit of work.

Every function changes rows of the given transaction and emits the events that say so; the
caller commits (the engine together with its cursor, an API handler on its own). The
router follows through the events: a queue change is a transfer to that queue, a change of
priority or required skills re-queues the waiting conversation (``reason="rule"``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from contract.info import Channels
from hub import events
from hub.outbox.delivery import enqueue
from hub.uow import UnitOfWork
from storage.models import Complaint, Conversation, Endpoint, Message, Queue, Team, utcnow

WAITING = ("queued", "offered")
OPEN = ("bot", "queued", "offered", "assigned", "wrap_up")


def _envelope(conv: Conversation) -> dict[str, Any]:
    return {
        "conversation_id": conv.id,
        "customer_id": conv.customer_id,
        "queue": conv.queue,
        "channel": conv.channel,
    }


async def send_text(
    uow: UnitOfWork,
    conv: Conversation,
    text: str,
    *,
    kind: str,
    channels: Channels,
    options: dict[str, Any] | None = None,
) -> tuple[Message | None, str]:
    """Store and queue an automatic message to the customer on the conversation's channel.

    ``(None, why)`` when it may not go: the customer opted out there, the address bounces,
    the channel cannot reply, or its customer-service window (WhatsApp, WeChat) is shut.
    """
    info = channels.get(conv.channel)
    if info is None or not info.replies:
        return None, f"{conv.channel} cannot send"
    endpoint = await uow.session.get(Endpoint, conv.endpoint_id)
    if endpoint is None:
        return None, "no endpoint"
    if conv.channel in endpoint.opted_out:
        return None, f"the customer opted out of {conv.channel}"
    if endpoint.undeliverable:
        return None, f"{endpoint.address} is undeliverable"
    window = info.session_window_s
    if window:
        last = conv.last_inbound_at
        if last is None or (utcnow() - last).total_seconds() > window:
            return None, f"outside the {conv.channel} customer-service window"
    row = Message(
        conversation_id=conv.id,
        customer_id=conv.customer_id,
        channel=conv.channel,
        direction="out",
        kind=kind,
        text=text,
        status="pending",
        meta={"auto": True, **({"options": options} if options else {})},
    )
    uow.session.add(row)
    await uow.session.flush()
    enqueue(uow, row)
    conv.last_activity_at = utcnow()
    uow.emit(events.MessageSent(message_id=row.id, text=text[:500], kind=kind, **_envelope(conv)))
    return row, ""


def alert(uow: UnitOfWork, conv: Conversation | None, reason: str, text: str) -> None:
    """Tell the supervisors (their dashboards show ``supervisor.alert``)."""
    uow.emit(
        events.SupervisorAlert(reason=reason[:50], text=text[:500], **_envelope(conv))
        if conv is not None
        else events.SupervisorAlert(reason=reason[:50], text=text[:500])
    )


def _requeue(uow: UnitOfWork, conv: Conversation, reason: str) -> None:
    if conv.state in WAITING:
        uow.emit(events.ConversationQueued(reason=reason, **_envelope(conv)))


async def move_to_queue(
    uow: UnitOfWork, conv: Conversation, queue: str, *, note: str = ""
) -> str | None:
    """Send the conversation to ``queue``; the error text when it cannot go there."""
    if conv.queue == queue:
        return None
    if not await uow.session.scalar(select(Queue.id).where(Queue.name == queue)):
        return f"queue {queue!r} not found"
    if conv.state not in OPEN:
        return "the conversation is closed"
    conv.queue = queue
    if conv.state in WAITING:
        conv.state = "queued"
        uow.emit(
            events.ConversationTransferred(
                from_agent=None, to_queue=queue, note=note[:500], **_envelope(conv)
            )
        )
        uow.emit(events.ConversationQueued(reason="transfer", **_envelope(conv)))
    else:
        # With an agent (or the bot): the queue counts for reports and the next hand-off.
        uow.emit(events.ConversationUpdated(**_envelope(conv)))
    return None


async def team_queue(uow: UnitOfWork, team: str) -> tuple[str | None, str | None]:
    """The first queue (by name) of ``team``; or the error text."""
    team_id = await uow.session.scalar(select(Team.id).where(Team.name == team))
    if team_id is None:
        return None, f"team {team!r} not found"
    name = await uow.session.scalar(
        select(Queue.name).where(Queue.team_id == team_id).order_by(Queue.name).limit(1)
    )
    if name is None:
        return None, f"team {team!r} has no queue"
    return name, None


def set_priority(uow: UnitOfWork, conv: Conversation, priority: int) -> None:
    if conv.priority == priority:
        return
    conv.priority = priority
    uow.emit(events.ConversationUpdated(priority=priority, **_envelope(conv)))
    _requeue(uow, conv, "rule")


def add_labels(uow: UnitOfWork, conv: Conversation, labels: list[str]) -> None:
    merged = sorted(set(conv.labels) | {x.strip()[:50] for x in labels if x.strip()})
    if merged == sorted(conv.labels):
        return
    conv.labels = merged
    uow.emit(events.ConversationUpdated(labels=merged, **_envelope(conv)))


def require_skills(uow: UnitOfWork, conv: Conversation, skills: list[str]) -> None:
    wanted = sorted(set(conv.routing.get("skills", [])) | set(skills))
    if wanted == sorted(conv.routing.get("skills", [])):
        return
    conv.routing = {**conv.routing, "skills": wanted}
    uow.emit(events.ConversationUpdated(**_envelope(conv)))
    _requeue(uow, conv, "rule")


def close(uow: UnitOfWork, conv: Conversation, disposition: str) -> None:
    if conv.state in ("closed", "abandoned"):
        return
    conv.state = "closed"
    conv.closed_at = utcnow()
    conv.disposition = disposition[:100]
    uow.emit(
        events.ConversationClosed(
            agent_id=conv.assignee_id, disposition=disposition or None, **_envelope(conv)
        )
    )


def escalate_complaint(
    uow: UnitOfWork, complaint: Complaint, conv: Conversation, reason: str
) -> str:
    """One escalation level up (by hand or on an SLA breach); what the supervisors are told."""
    complaint.escalation_level += 1
    complaint.state = "escalated"
    uow.emit(
        events.ComplaintEscalated(
            complaint_id=complaint.id,
            level=complaint.escalation_level,
            reason=reason[:200],
            **_envelope(conv),
        )
    )
    return f"Complaint #{complaint.id} escalated to level {complaint.escalation_level}: {reason}"
