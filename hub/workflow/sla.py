"""SLA timers: first response, next response and resolution targets counted in business
hours, with a warning before the target and a breach after it.

A policy (``sla_policies``) applies to a queue and segment (empty matches any; the most
specific wins) or to complaints of a severity. Each running target is a row of
``sla_timers`` holding its warn and due instants, computed once through the policy's
calendar (or the queue's business hours), so a timer that crosses a closed night or a
holiday is due when that much *open* time has passed. The engine fires due timers with a
compare-and-set on their state: two processes never both warn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub import events
from hub.uow import UnitOfWork
from hub.workflow import effects
from hub.workflow.calendar import Calendar
from storage.models import Complaint, Conversation, Queue, SlaPolicy, SlaTimer, utcnow

METRICS = ("first_response", "next_response", "resolution")
LIVE = ("running", "warned")


def calendar_for(policy: SlaPolicy, queue: Queue | None) -> Calendar:
    """The policy's own calendar, else its queue's business hours, else always open."""
    if policy.calendar:
        return Calendar.from_options(policy.calendar)
    if queue is not None and queue.options.get("hours"):
        return Calendar.from_options(queue.options)
    return Calendar.from_options({})


async def policies(s: AsyncSession) -> list[SlaPolicy]:
    return list((await s.scalars(select(SlaPolicy).order_by(SlaPolicy.id))).all())


def pick(
    rows: list[SlaPolicy], *, queue: str, second: str, kind: str = "conversation"
) -> SlaPolicy | None:
    """The most specific policy of ``kind``: queue and segment (or, for complaints, the
    severity) named > queue > the other > a catch-all; the oldest wins a tie; None: no
    target."""
    best: tuple[int, SlaPolicy] | None = None
    for p in rows:
        if p.kind != kind:
            continue
        other = p.severity if kind == "complaint" else p.segment
        if (p.queue and p.queue != queue) or (other and other != second):
            continue
        rank = (2 if p.queue else 0) + (1 if other else 0)
        if best is None or rank > best[0]:
            best = (rank, p)
    return best[1] if best else None


async def policy_for(
    s: AsyncSession, *, queue: str, segment: str, kind: str = "conversation", severity: str = ""
) -> SlaPolicy | None:
    """``pick`` over the stored policies."""
    second = severity if kind == "complaint" else segment
    return pick(await policies(s), queue=queue, second=second, kind=kind)


async def start(
    uow: UnitOfWork,
    conv: Conversation,
    policy: SlaPolicy,
    metric: str,
    *,
    at: datetime | None = None,
    complaint_id: int | None = None,
) -> SlaTimer | None:
    """Start one target of ``policy`` (None if the policy sets none for ``metric``)."""
    seconds = getattr(policy, f"{metric}_s")
    if not seconds:
        return None
    s = uow.session
    queue = await s.scalar(select(Queue).where(Queue.name == conv.queue))
    cal = calendar_for(policy, queue)
    began = at or utcnow()
    timer = SlaTimer(
        conversation_id=conv.id,
        complaint_id=complaint_id,
        policy_id=policy.id,
        metric=metric,
        queue=conv.queue,
        started_at=began,
        warn_at=cal.add(began, seconds * policy.warn_ratio),
        due_at=cal.add(began, seconds),
    )
    timer.next_at = timer.warn_at if policy.warn_ratio < 1 else timer.due_at
    s.add(timer)
    await s.flush()
    return timer


async def stop(
    uow: UnitOfWork,
    conversation_id: int,
    metrics: tuple[str, ...],
    *,
    complaint_id: int | None = None,
    at: datetime | None = None,
) -> int:
    """The targets ``metrics`` of the conversation (or of its complaint) were met: stop them."""
    now = at or utcnow()
    query = (
        update(SlaTimer)
        .where(
            SlaTimer.conversation_id == conversation_id,
            SlaTimer.metric.in_(metrics),
            SlaTimer.state.in_(LIVE),
        )
        .values(state="met", next_at=None, ended_at=now)
    )
    if complaint_id is None:
        query = query.where(SlaTimer.complaint_id.is_(None))
    else:
        query = query.where(SlaTimer.complaint_id == complaint_id)
    result = await uow.session.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)


async def close_breached(uow: UnitOfWork, conversation_id: int, at: datetime) -> None:
    """A closed conversation's breached targets end (they stay breached)."""
    await uow.session.execute(
        update(SlaTimer)
        .where(
            SlaTimer.conversation_id == conversation_id,
            SlaTimer.state == "breached",
            SlaTimer.ended_at.is_(None),
        )
        .values(ended_at=at)
    )


async def running(s: AsyncSession, conversation_id: int, metric: str) -> bool:
    found = await s.scalar(
        select(SlaTimer.id).where(
            SlaTimer.conversation_id == conversation_id,
            SlaTimer.metric == metric,
            SlaTimer.state.in_(LIVE),
            SlaTimer.complaint_id.is_(None),
        )
    )
    return found is not None


async def due(s: AsyncSession, now: datetime, limit: int = 100) -> list[int]:
    return list(
        (
            await s.scalars(
                select(SlaTimer.id)
                .where(SlaTimer.state.in_(LIVE), SlaTimer.next_at <= now)
                .order_by(SlaTimer.next_at)
                .limit(limit)
            )
        ).all()
    )


async def next_due(s: AsyncSession) -> datetime | None:
    found: datetime | None = await s.scalar(
        select(SlaTimer.next_at)
        .where(SlaTimer.state.in_(LIVE), SlaTimer.next_at.is_not(None))
        .order_by(SlaTimer.next_at)
        .limit(1)
    )
    return found


async def fire(uow: UnitOfWork, timer_id: int, now: datetime) -> str | None:
    """Warn or breach one due timer; the new state, or None if another process did it."""
    s = uow.session
    timer = await s.get(SlaTimer, timer_id)
    if timer is None or timer.state not in LIVE or timer.next_at is None or timer.next_at > now:
        return None
    breach = now >= timer.due_at
    new = "breached" if breach else "warned"
    if new == timer.state:
        return None
    claimed = await s.execute(
        update(SlaTimer)
        .where(SlaTimer.id == timer.id, SlaTimer.state == timer.state)
        .values(state=new, next_at=None if breach else timer.due_at)
        .execution_options(synchronize_session=False)
    )
    if not getattr(claimed, "rowcount", 0):
        return None
    await s.refresh(timer)
    conv = await s.get_one(Conversation, timer.conversation_id)
    policy = await s.get_one(SlaPolicy, timer.policy_id)
    fields: dict[str, Any] = {
        "conversation_id": conv.id,
        "customer_id": conv.customer_id,
        "agent_id": conv.assignee_id,
        "queue": timer.queue,
        "channel": conv.channel,
        "timer_id": timer.id,
        "metric": timer.metric,
        "policy": policy.name,
        "due_at": timer.due_at.isoformat(),
        "complaint_id": timer.complaint_id,
    }
    if not breach:
        uow.emit(events.SlaWarning(**fields))
        return new
    uow.emit(events.SlaBreached(**fields))
    await escalate(uow, conv, policy, timer)
    return new


async def escalate(uow: UnitOfWork, conv: Conversation, policy: SlaPolicy, timer: SlaTimer) -> None:
    """A breach: the policy's priority boost, the supervisors told, a complaint one level up."""
    esc = policy.escalation or {}
    boost = int(esc.get("priority_boost", 10))
    if boost and conv.state in effects.OPEN:
        effects.set_priority(uow, conv, conv.priority + boost)
    what = timer.metric.replace("_", " ")
    text = f"SLA {policy.name}: {what} target of conversation #{conv.id} missed"
    if timer.complaint_id is not None:
        complaint = await uow.session.get(Complaint, timer.complaint_id)
        if complaint is not None and complaint.state != "resolved":
            why = f"sla {what} breached"
            text = effects.escalate_complaint(uow, complaint, conv, why) + f" ({text})"
    if esc.get("notify", True):
        effects.alert(uow, conv, "sla_breached", text)
