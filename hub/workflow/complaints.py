"""Complaint handling: a conversation marked as a complaint (category, severity) goes to the
responsible department, runs its own SLA (``sla_policies`` of kind ``complaint``), climbs
escalation levels when that SLA is missed or by hand, and ends with a resolution record and
the customer told on their channel."""

from __future__ import annotations

from sqlalchemy import select

from contract.errors import Conflict, InvalidInput, NotFound
from contract.info import Channels
from hub import events
from hub.uow import UnitOfWork
from hub.workflow import effects, sla
from storage.models import Complaint, Conversation, Customer, Team, utcnow

SEVERITIES = ("low", "medium", "high", "critical")
# Priority added to the conversation when it becomes a complaint of this severity.
SEVERITY_BOOST = {"low": 0, "medium": 5, "high": 10, "critical": 20}
LABEL = "complaint"

RESOLVED_TEXT = {
    "en": "Update on your complaint #{id}: it has been resolved. {resolution}",
    "zh": "关于您的投诉 #{id}：已处理完毕。{resolution}",
}


async def open_complaint(
    uow: UnitOfWork,
    conversation_id: int,
    *,
    category: str,
    severity: str,
    summary: str,
    team: str | None,
    by: int | None,
) -> Complaint:
    s = uow.session
    if severity not in SEVERITIES:
        raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}")
    conv = await s.get(Conversation, conversation_id)
    if conv is None:
        raise NotFound(f"conversation {conversation_id} not found")
    if await s.scalar(select(Complaint.id).where(Complaint.conversation_id == conv.id)):
        raise Conflict("this conversation is already a complaint")
    team_id = None
    if team:
        team_id = await s.scalar(select(Team.id).where(Team.name == team))
        if team_id is None:
            raise InvalidInput(f"team {team!r} does not exist")
        queue, err = await effects.team_queue(uow, team)
        if queue is None:
            raise InvalidInput(err or "no queue")
        moved = await effects.move_to_queue(uow, conv, queue, note=f"complaint for {team}")
        if moved:
            raise Conflict(moved)
    complaint = Complaint(
        conversation_id=conv.id,
        customer_id=conv.customer_id,
        category=category,
        severity=severity,
        team_id=team_id,
        queue=conv.queue,
        summary=summary,
        opened_by=by,
    )
    s.add(complaint)
    await s.flush()
    effects.add_labels(uow, conv, [LABEL])
    boost = SEVERITY_BOOST[severity]
    if boost and conv.state in effects.OPEN:
        effects.set_priority(uow, conv, conv.priority + boost)
    uow.emit(
        events.ComplaintOpened(
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            agent_id=by,
            queue=conv.queue,
            channel=conv.channel,
            complaint_id=complaint.id,
            category=category,
            severity=severity,
            team_id=team_id,
        )
    )
    policy = await sla.policy_for(
        s, queue=conv.queue, segment="", kind="complaint", severity=severity
    )
    if policy is not None:
        for metric in ("first_response", "resolution"):
            await sla.start(uow, conv, policy, metric, complaint_id=complaint.id)
    if severity in ("high", "critical"):
        effects.alert(
            uow, conv, "complaint", f"{severity.title()} complaint #{complaint.id}: {category}"
        )
    return complaint


async def escalate(uow: UnitOfWork, complaint_id: int, *, reason: str) -> Complaint:
    s = uow.session
    complaint = await s.get(Complaint, complaint_id)
    if complaint is None:
        raise NotFound(f"complaint {complaint_id} not found")
    if complaint.state == "resolved":
        raise Conflict("the complaint is resolved")
    conv = await s.get_one(Conversation, complaint.conversation_id)
    effects.alert(
        uow, conv, "complaint_escalated", effects.escalate_complaint(uow, complaint, conv, reason)
    )
    return complaint


async def resolve(
    uow: UnitOfWork,
    complaint_id: int,
    *,
    resolution: str,
    by: int | None,
    notify: bool,
    channels: Channels,
) -> tuple[Complaint, str]:
    """Resolve; tell the customer on the conversation's channel when ``notify``. Returns the
    complaint and why the customer could not be told ('' when told or not asked)."""
    s = uow.session
    complaint = await s.get(Complaint, complaint_id)
    if complaint is None:
        raise NotFound(f"complaint {complaint_id} not found")
    if complaint.state == "resolved":
        raise Conflict("the complaint is already resolved")
    conv = await s.get_one(Conversation, complaint.conversation_id)
    now = utcnow()
    complaint.state = "resolved"
    complaint.resolution = resolution
    complaint.resolved_by = by
    complaint.resolved_at = now
    await sla.stop(uow, conv.id, sla.METRICS, complaint_id=complaint.id, at=now)
    why = ""
    if notify:
        language = await s.scalar(select(Customer.language).where(Customer.id == conv.customer_id))
        template = RESOLVED_TEXT["zh" if (language or "").startswith("zh") else "en"]
        text = template.format(id=complaint.id, resolution=resolution).strip()
        row, why = await effects.send_text(
            uow, conv, text, kind="complaint_update", channels=channels
        )
        if row is not None:
            complaint.notified_message_id = row.id
    uow.emit(
        events.ComplaintResolved(
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            agent_id=by,
            queue=conv.queue,
            channel=conv.channel,
            complaint_id=complaint.id,
            category=complaint.category,
            severity=complaint.severity,
            notified=complaint.notified_message_id is not None,
        )
    )
    return complaint, why
