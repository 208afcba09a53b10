"""Reports in SQL: a few columns per contact of the rollups (``hub.reports.rollup``) aggregated in
the database (one GROUP BY); the shared finishing code in ``hub.reports`` turns the
partials into figures.
"""

from __future__ import annotations

import logging
from datetime import datetime
from datetime import time as dtime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    case,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from hub import reports as r
from storage.models import (
    Queue,
    ReportAgentInterval,
    ReportContact,
    ReportHandle,
    Team,
)

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- context
async def load_context(session: AsyncSession) -> tuple[r.ReportContext, dict[str, int]]:
    """Business hours and teams by queue, and each queue's service-level threshold."""
    rows = await session.execute(
        select(Queue.name, Queue.options, Queue.sl_threshold_s, Team.name).outerjoin(
            Team, Team.id == Queue.team_id
        )
    )
    hours: dict[str, r.BusinessHours] = {}
    teams: dict[str, str] = {}
    thresholds: dict[str, int] = {}
    for name, options, threshold, team in rows:
        thresholds[name] = threshold
        teams[name] = team or ""
        try:
            parsed = r.parse_business_hours(options or {})
        except (ValueError, TypeError) as err:
            logger.warning("queue %s: business hours ignored: %s", name, err)
            continue
        if parsed is not None:
            hours[name] = parsed
    return r.ReportContext(hours=hours, teams=teams), thresholds


# ---------------------------------------------------------------------------- aggregation
def _contact_filters(spec: r.ReportSpec) -> list[ColumnElement[bool]]:
    rc = ReportContact
    where = [rc.arrived_at >= spec.start.timestamp(), rc.arrived_at < spec.end.timestamp()]
    if spec.queues is not None:
        where.append(rc.queue.in_(sorted(spec.queues)))
    if spec.channel is not None:
        where.append(rc.channel == spec.channel)
    if spec.agent_id is not None:
        where.append(rc.agent_id == spec.agent_id)
    return where


def _count_if(cond: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((cond, 1), else_=0))


def in_hours_flag(spec: r.ReportSpec, ctx: r.ReportContext) -> ColumnElement[Any] | None:
    """1 when a contact arrived in its queue's business hours, else 0 (None: always open).

    Exact for 15-minute-aligned schedules (``hub.reports.parse_business_hours`` aligns them):
    the local slot-of-week is the UTC slot plus the zone's offset, segment by segment (DST).
    """
    slot = ReportContact.arrived_slot
    start, end = spec.start.timestamp(), spec.end.timestamp()
    whens = []
    for queue, hours in sorted(ctx.hours.items()):
        if spec.queues is not None and queue not in spec.queues:
            continue
        plan = hours.slot_plan(start, end)
        segments = plan.offsets
        offset: ColumnElement[Any] = _int(segments[-1][1])
        if len(segments) > 1:  # DST transitions in the range: the offset of each segment
            offset = case(
                *[
                    (slot < _int(segments[i + 1][0]), _int(segments[i][1]))
                    for i in range(len(segments) - 1)
                ],
                else_=offset,
            )
        sow = (slot + offset + _int(r.EPOCH_SLOT_OF_WEEK)) % _int(r.WEEK_SLOTS)
        is_open = or_(false(), *[and_(sow >= _int(a), sow < _int(b)) for a, b in plan.week])
        if plan.closed:
            shut = or_(*[and_(slot >= _int(a), slot < _int(b)) for a, b in plan.closed])
            is_open = and_(is_open, not_(shut))
        whens.append((ReportContact.queue == queue, case((is_open, 1), else_=0)))
    return case(*whens, else_=1) if whens else None


def _int(value: int) -> ColumnElement[Any]:
    # Literal integers (ours, never user input) keep the SQL free of typed parameters.
    return literal_column(str(int(value)), BigInteger)


async def contact_rows(
    session: AsyncSession, spec: r.ReportSpec, ctx: r.ReportContext, *, by_channel: bool = False
) -> r.PartialRows:
    """The database's version of ``hub.reports.contact_partials``: the same sums, grouped
    only by what the report needs (slot when bucketed, hours, channel, queue, agent)."""
    rc = ReportContact
    width = ctx.slot_width(spec) if spec.bucket is not None else None
    keys: list[Any] = []
    if width is not None:
        factor = width // r.SLOT_S
        slot = (
            rc.arrived_slot
            if factor == 1
            else rc.arrived_slot // literal_column(str(factor), BigInteger)
        )
        keys.append(slot.label("slot"))
    flag = in_hours_flag(spec, ctx)
    if flag is not None:
        keys.append(flag.label("open"))
    channels = by_channel or spec.group_by == "channel"
    if channels:
        keys.append(rc.channel)
    by_queue = spec.group_by in ("queue", "team")
    if by_queue:
        keys.append(rc.queue)
    if spec.group_by == "agent":
        keys.append(rc.agent_id)
    cuts = spec.cut_points
    figures = [
        func.count(),
        func.count(rc.wait_s),
        func.sum(rc.wait_s),
        func.max(rc.wait_s),
        func.count(rc.abandon_wait_s),
        func.sum(rc.abandon_wait_s),
        func.count(rc.frt_s),
        func.sum(rc.frt_s),
        func.count(rc.handle_s),
        func.sum(rc.handle_s),
        func.count(rc.acw_s),
        func.sum(rc.acw_s),
        func.count(rc.resolution_s),
        func.sum(rc.resolution_s),
        func.count(rc.closed_at),
        func.sum(rc.transfers),
        _count_if(rc.transfers > 0),
        func.count(rc.csat_score),
        func.sum(rc.csat_score),
        _count_if(rc.complaint.is_(True)),
        *[_count_if(rc.wait_s <= cut) for cut in cuts],
        *[_count_if(rc.abandon_wait_s <= cut) for cut in cuts],
    ]
    query = select(*keys, *figures).where(*_contact_filters(spec)).group_by(*keys)
    out: r.PartialRows = []
    n_keys = len(keys)
    for row in await session.execute(query):
        k = list(row[:n_keys])
        f = row[n_keys:]
        at = float(k.pop(0) * width) if width is not None else None
        open_ = bool(k.pop(0)) if flag is not None else True
        channel = k.pop(0) if channels else ""
        queue = k.pop(0) if by_queue else ""
        agent = k.pop(0) if spec.group_by == "agent" else None
        key = r.PartialKey(at, queue, channel, agent, open_)
        p = r.Partial(
            contacts=int(f[0]),
            answered=int(f[1]),
            wait_sum=float(f[2] or 0.0),
            wait_max=None if f[3] is None else float(f[3]),
            abandoned=int(f[4]),
            abandon_sum=float(f[5] or 0.0),
            frt_n=int(f[6]),
            frt_sum=float(f[7] or 0.0),
            handled=int(f[8]),
            handle_sum=float(f[9] or 0.0),
            acw_n=int(f[10]),
            acw_sum=float(f[11] or 0.0),
            resolved=int(f[12]),
            resolution_sum=float(f[13] or 0.0),
            closed=int(f[14]),
            transfers=int(f[15] or 0),
            transferred=int(f[16] or 0),
            csat_n=int(f[17]),
            csat_sum=float(f[18] or 0.0),
            complaints=int(f[19] or 0),
            answered_within={
                c: int(v or 0) for c, v in zip(cuts, f[20 : 20 + len(cuts)], strict=True)
            },
            abandoned_within={
                c: int(v or 0) for c, v in zip(cuts, f[20 + len(cuts) :], strict=True)
            },
        )
        out.append((key, p))
    return out


async def agent_work(
    session: AsyncSession,
    spec: r.ReportSpec,
    *,
    now: float,
    agents: frozenset[int] | None = None,
) -> dict[int, r.AgentWork]:
    """The database's version of ``hub.reports.agent_work``."""
    start, end = spec.start.timestamp(), spec.end.timestamp()
    rh = ReportHandle
    where: list[ColumnElement[bool]] = [rh.ended_at >= start, rh.ended_at < end]
    if spec.queues is not None:
        where.append(rh.queue.in_(sorted(spec.queues)))
    if spec.channel is not None:
        where.append(rh.channel == spec.channel)
    if spec.agent_id is not None:
        where.append(rh.agent_id == spec.agent_id)
    if agents is not None:
        where.append(rh.agent_id.in_(sorted(agents)))
    wrapped = and_(rh.outcome == "wrap_up", rh.released_at.is_not(None))
    out: dict[int, r.AgentWork] = {}
    rows = await session.execute(
        select(
            rh.agent_id,
            func.count(),
            func.sum(rh.ended_at - rh.started_at),
            _count_if(rh.outcome == "transfer"),
            _count_if(wrapped),
            func.sum(case((wrapped, rh.released_at - rh.ended_at), else_=0.0)),
        )
        .where(*where)
        .group_by(rh.agent_id)
    )
    for agent_id, handled, handle_sum, transfers, acw_n, acw_sum in rows:
        out[agent_id] = r.AgentWork(
            handled=int(handled),
            handle_sum=float(handle_sum or 0.0),
            transfers_out=int(transfers or 0),
            acw_n=int(acw_n or 0),
            acw_sum=float(acw_sum or 0.0),
        )
    iv = ReportAgentInterval
    stop = min(end, now)
    finish = func.coalesce(iv.ended_at, now)
    clipped = case((finish < stop, finish), else_=stop) - case(
        (iv.started_at > start, iv.started_at), else_=start
    )
    iv_where: list[ColumnElement[bool]] = [iv.started_at < stop, finish > start]
    if spec.agent_id is not None:
        iv_where.append(iv.agent_id == spec.agent_id)
    if agents is not None:
        iv_where.append(iv.agent_id.in_(sorted(agents)))
    rows = await session.execute(
        select(iv.agent_id, iv.kind, iv.state, func.sum(clipped))
        .where(*iv_where)
        .group_by(iv.agent_id, iv.kind, iv.state)
    )
    for agent_id, kind, state, seconds in rows:
        if not seconds or seconds <= 0:
            continue
        w = out.setdefault(agent_id, r.AgentWork())
        if kind == "staffed":
            w.staffed_s += float(seconds)
        elif kind == "busy":
            w.busy_s += float(seconds)
        else:
            w.state_s[state] = w.state_s.get(state, 0.0) + float(seconds)
    return out


# ---------------------------------------------------------------------------- live figures
async def today_by_queue(session: AsyncSession, now: datetime) -> dict[str, tuple[r.Kpis, int]]:
    """Each queue's figures since its local midnight (UTC when it has no business hours),
    with the queue's service-level threshold (20 s for queues not configured)."""
    ctx, thresholds = await load_context(session)
    cuts = tuple(sorted({float(t) for t in thresholds.values()} | {20.0}))
    zoned: dict[str, set[str]] = {}
    for queue, hours in ctx.hours.items():
        zoned.setdefault(hours.tz.key, set()).add(queue)
    elsewhere = {q for key, qs in zoned.items() if key != "UTC" for q in qs}
    zoned.setdefault("UTC", set())
    out: dict[str, tuple[r.Kpis, int]] = {}
    for zone_name, queues in zoned.items():
        tz = r.zone(zone_name)
        spec = r.ReportSpec(
            start=datetime.combine(now.astimezone(tz).date(), dtime(0), tz),
            end=now,
            tz=tz,
            thresholds=cuts,
            group_by="queue",
            # UTC takes every queue not scheduled in another zone, configured or not.
            queues=frozenset(queues) if zone_name != "UTC" else None,
        )
        report = r.summary(await contact_rows(session, spec, ctx), spec, ctx)
        for row in report.rows:
            if zone_name == "UTC" and row.key in elsewhere:
                continue
            out[row.key] = (row, thresholds.get(row.key, 20))
    return out
