"""Finishing: partial sums into summaries, time series, distributions, agents, staffing."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub.reports.facts import SLOT_S, AgentInterval, EventRecord, HandleFact, fold
from hub.reports.outputs import (
    AgentRow,
    AgentsReport,
    ChannelCount,
    KpiRow,
    Kpis,
    ServiceLevel,
    Staffing,
    StaffingRow,
    Summary,
    Timeseries,
    TimeseriesPoint,
    WaitBin,
    WaitDistribution,
)
from hub.reports.partials import (
    BUCKET_S,
    Bucket,
    Partial,
    PartialKey,
    PartialRows,
    ReportContext,
    ReportSpec,
    contact_partials,
)
from routing import erlang


# ---------------------------------------------------------------------------- finishing
def _sec(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


def kpi_fields(p: Partial, thresholds: Sequence[float]) -> dict[str, Any]:
    """The figures of one partial."""
    left = p.answered + p.abandoned
    levels = [
        ServiceLevel(
            threshold_s=t,
            counting_abandons=_ratio(
                p.answered_within.get(t, 0) + p.abandoned_within.get(t, 0), left
            ),
            answered_only=_ratio(p.answered_within.get(t, 0), p.answered),
        )
        for t in thresholds
    ]
    return {
        "contacts": p.contacts,
        "answered": p.answered,
        "abandoned": p.abandoned,
        "asa_s": _sec(p.wait_sum / p.answered) if p.answered else None,
        "max_wait_s": _sec(p.wait_max),
        "abandonment_rate": _ratio(p.abandoned, left),
        "avg_abandon_wait_s": _sec(p.abandon_sum / p.abandoned) if p.abandoned else None,
        "service_levels": levels,
        "first_responses": p.frt_n,
        "first_response_avg_s": _sec(p.frt_sum / p.frt_n) if p.frt_n else None,
        "handled": p.handled,
        "aht_s": _sec(p.handle_sum / p.handled) if p.handled else None,
        "acw_avg_s": _sec(p.acw_sum / p.acw_n) if p.acw_n else None,
        "resolved": p.resolved,
        "resolution_avg_s": _sec(p.resolution_sum / p.resolved) if p.resolved else None,
        "closed": p.closed,
        "transfers": p.transfers,
        "transferred_contacts": p.transferred,
        "csat_responses": p.csat_n,
        "csat_avg": _ratio(p.csat_sum, p.csat_n),
        "csat_response_rate": _ratio(p.csat_n, p.closed),
        "complaints": p.complaints,
    }


def group_of(key: PartialKey, spec: ReportSpec, ctx: ReportContext) -> str:
    if spec.group_by == "queue":
        return key.queue
    if spec.group_by == "team":
        return ctx.teams.get(key.queue, "")
    if spec.group_by == "channel":
        return key.channel
    if spec.group_by == "agent":
        return "" if key.agent_id is None else str(key.agent_id)
    return ""


def summary(rows: PartialRows, spec: ReportSpec, ctx: ReportContext) -> Summary:
    """Totals (in hours and out of hours), contacts per channel, and rows per group."""
    total, outside = Partial(), Partial()
    channels: dict[str, list[int]] = {}
    groups: dict[str, tuple[Partial, list[int]]] = {}
    for key, p in rows:
        open_ = key.in_hours
        (total if open_ else outside).add(p)
        channels.setdefault(key.channel, [0, 0])[0 if open_ else 1] += p.contacts
        if spec.group_by is not None:
            inside, ooh = groups.setdefault(group_of(key, spec, ctx), (Partial(), [0]))
            if open_:
                inside.add(p)
            else:
                ooh[0] += p.contacts
    return Summary(
        start=spec.start,
        end=spec.end,
        tz=spec.tz.key,
        group_by=spec.group_by,
        thresholds=list(spec.thresholds),
        total=Kpis(**kpi_fields(total, spec.thresholds)),
        out_of_hours=Kpis(**kpi_fields(outside, spec.thresholds)),
        by_channel=[
            ChannelCount(channel=ch, contacts=n[0], out_of_hours_contacts=n[1])
            for ch, n in sorted(channels.items())
        ],
        rows=[
            KpiRow(key=g, out_of_hours_contacts=ooh[0], **kpi_fields(p, spec.thresholds))
            for g, (p, ooh) in sorted(groups.items())
        ],
    )


def bucket_start(at: float, bucket: Bucket, tz: ZoneInfo) -> datetime:
    """The local start of the bucket holding ``at``."""
    local = datetime.fromtimestamp(at, tz)
    if bucket == "15m":
        local = local.replace(minute=local.minute // 15 * 15, second=0, microsecond=0)
    elif bucket == "hour":
        local = local.replace(minute=0, second=0, microsecond=0)
    else:
        local = datetime.combine(local.date(), time(0), tz)
    return local


def bucket_end(start: datetime, bucket: Bucket) -> datetime:
    if bucket == "day":
        assert start.tzinfo is not None
        return datetime.combine(start.date() + timedelta(days=1), time(0), start.tzinfo)
    return datetime.fromtimestamp(start.timestamp() + BUCKET_S[bucket], start.tzinfo)


def buckets(spec: ReportSpec) -> list[float]:
    """Bucket starts (epoch) covering the range, found slot by slot (DST-proof)."""
    assert spec.bucket is not None
    seen: dict[float, None] = {}
    slot = spec.start.timestamp() // SLOT_S * SLOT_S
    end = spec.end.timestamp()
    while slot < end:
        seen[bucket_start(max(slot, spec.start.timestamp()), spec.bucket, spec.tz).timestamp()] = (
            None
        )
        slot += SLOT_S
    return list(seen)


def timeseries(rows: PartialRows, spec: ReportSpec, ctx: ReportContext) -> Timeseries:
    """Figures per time bucket (and group), zero-filled; out-of-hours arrivals counted apart."""
    assert spec.bucket is not None
    cells: dict[tuple[float, str], tuple[Partial, list[int]]] = {}
    groups: set[str] = set()
    for key, p in rows:
        assert key.slot is not None
        start = bucket_start(key.slot, spec.bucket, spec.tz).timestamp()
        group = group_of(key, spec, ctx)
        groups.add(group)
        inside, ooh = cells.setdefault((start, group), (Partial(), [0]))
        if key.in_hours:
            inside.add(p)
        else:
            ooh[0] += p.contacts
    points = []
    for start in buckets(spec):
        begin = datetime.fromtimestamp(start, spec.tz)
        for group in sorted(groups or {""}):
            p, ooh = cells.get((start, group), (Partial(), [0]))
            points.append(
                TimeseriesPoint(
                    start=begin,
                    end=bucket_end(begin, spec.bucket),
                    key=group,
                    out_of_hours_contacts=ooh[0],
                    **kpi_fields(p, spec.thresholds),
                )
            )
    return Timeseries(
        start=spec.start,
        end=spec.end,
        tz=spec.tz.key,
        bucket=spec.bucket,
        group_by=spec.group_by,
        thresholds=list(spec.thresholds),
        points=points,
    )


def wait_distribution(rows: PartialRows, spec: ReportSpec, ctx: ReportContext) -> WaitDistribution:
    """Answered and abandoned waits in bins ``[0, e1], (e1, e2], ..., (en, inf)``."""
    total, outside = Partial(), 0
    for key, p in rows:
        if key.in_hours:
            total.add(p)
        else:
            outside += p.contacts
    edges = sorted(set(spec.edges))
    bins: list[WaitBin] = []
    prev_edge, prev_ans, prev_ab = 0.0, 0, 0
    for edge in [*edges, None]:
        ans = total.answered if edge is None else total.answered_within.get(edge, 0)
        ab = total.abandoned if edge is None else total.abandoned_within.get(edge, 0)
        bins.append(
            WaitBin(low_s=prev_edge, high_s=edge, answered=ans - prev_ans, abandoned=ab - prev_ab)
        )
        prev_edge, prev_ans, prev_ab = edge or prev_edge, ans, ab
    return WaitDistribution(
        start=spec.start,
        end=spec.end,
        tz=spec.tz.key,
        answered=total.answered,
        abandoned=total.abandoned,
        out_of_hours_contacts=outside,
        bins=bins,
    )


# ---------------------------------------------------------------------------- agents
@dataclass(slots=True)
class AgentWork:
    """One agent's handling and time in the range."""

    handled: int = 0
    handle_sum: float = 0.0
    acw_n: int = 0
    acw_sum: float = 0.0
    transfers_out: int = 0
    staffed_s: float = 0.0
    busy_s: float = 0.0
    state_s: dict[str, float] = field(default_factory=dict)


def agent_work(
    handles: Iterable[HandleFact],
    intervals: Iterable[AgentInterval],
    spec: ReportSpec,
    *,
    now: float,
    agents: frozenset[int] | None = None,
) -> dict[int, AgentWork]:
    """Holds ended in the range (queue/channel filters apply) and time clipped to it."""
    start, end = spec.start.timestamp(), spec.end.timestamp()
    out: dict[int, AgentWork] = {}

    def wanted(agent_id: int) -> bool:
        return (spec.agent_id is None or agent_id == spec.agent_id) and (
            agents is None or agent_id in agents
        )

    for h in handles:
        if h.ended_at is None or not start <= h.ended_at < end or not wanted(h.agent_id):
            continue
        if (spec.queues is not None and h.queue not in spec.queues) or (
            spec.channel is not None and h.channel != spec.channel
        ):
            continue
        w = out.setdefault(h.agent_id, AgentWork())
        w.handled += 1
        w.handle_sum += h.ended_at - h.started_at
        w.transfers_out += h.outcome == "transfer"
        if h.outcome == "wrap_up" and h.released_at is not None:
            w.acw_n += 1
            w.acw_sum += h.released_at - h.ended_at
    stop = min(end, now)
    for iv in intervals:
        if not wanted(iv.agent_id):
            continue
        seconds = min(stop, now if iv.ended_at is None else iv.ended_at) - max(start, iv.started_at)
        if seconds <= 0:
            continue
        w = out.setdefault(iv.agent_id, AgentWork())
        if iv.kind == "staffed":
            w.staffed_s += seconds
        elif iv.kind == "busy":
            w.busy_s += seconds
        else:
            w.state_s[iv.state] = w.state_s.get(iv.state, 0.0) + seconds
    return out


def agents_report(
    contact_rows: PartialRows,
    work: Mapping[int, AgentWork],
    spec: ReportSpec,
    *,
    people: Mapping[int, tuple[str, str]] | None = None,
) -> AgentsReport:
    """Per agent: handling, answers (all hours), CSAT, complaints, time and occupancy."""
    answered: dict[int, Partial] = {}
    for key, p in contact_rows:
        if key.agent_id is not None:
            answered.setdefault(key.agent_id, Partial()).add(p)
    people = people or {}
    ids = sorted(set(work) | set(answered) | set(people))
    items = []
    for agent_id in ids:
        w = work.get(agent_id, AgentWork())
        p = answered.get(agent_id, Partial())
        name, team = people.get(agent_id, ("", ""))
        items.append(
            AgentRow(
                agent_id=agent_id,
                name=name,
                team=team,
                handled=w.handled,
                aht_s=_sec(w.handle_sum / w.handled) if w.handled else None,
                acw_avg_s=_sec(w.acw_sum / w.acw_n) if w.acw_n else None,
                transfers_out=w.transfers_out,
                answered=p.answered,
                asa_s=_sec(p.wait_sum / p.answered) if p.answered else None,
                first_response_avg_s=_sec(p.frt_sum / p.frt_n) if p.frt_n else None,
                csat_responses=p.csat_n,
                csat_avg=_ratio(p.csat_sum, p.csat_n),
                complaints=p.complaints,
                staffed_s=round(w.staffed_s, 3),
                busy_s=round(w.busy_s, 3),
                occupancy=_ratio(min(w.busy_s, w.staffed_s), w.staffed_s),
                state_s={k: round(v, 3) for k, v in sorted(w.state_s.items())},
            )
        )
    return AgentsReport(start=spec.start, end=spec.end, tz=spec.tz.key, items=items)


# ---------------------------------------------------------------------------- staffing
def _staffing_row(arrivals: float, aht_s: float, agents: int, threshold_s: float) -> StaffingRow:
    a = erlang.traffic(arrivals, aht_s)
    asa = erlang.asa(agents, a, aht_s) if agents else math.inf
    return StaffingRow(
        arrivals_per_hour=arrivals,
        traffic_erlangs=round(a, 6),
        agents=agents,
        p_wait=round(erlang.p_wait(agents, a), 6) if arrivals else 0.0,
        asa_s=None if math.isinf(asa) else round(asa, 3),
        service_level=round(erlang.service_level(agents, a, aht_s, threshold_s), 6)
        if arrivals
        else 1.0,
        occupancy=round(erlang.occupancy(agents, a), 6) if agents else 0.0,
    )


def staffing(
    arrivals_per_hour: Sequence[float], *, aht_s: float, target_sl: float, threshold_s: float
) -> Staffing:
    """Agents needed (Erlang C) for each forecast of arrivals per hour."""
    if aht_s <= 0:
        raise ValueError("aht_s must be positive")
    if not 0 < target_sl < 1:
        raise ValueError("target_sl must be between 0 and 1 (exclusive)")
    if threshold_s < 0 or any(a < 0 for a in arrivals_per_hour) or not arrivals_per_hour:
        raise ValueError("threshold_s and arrivals_per_hour must be non-negative")
    rows = []
    for arrivals in arrivals_per_hour:
        needed = (
            erlang.required_agents(erlang.traffic(arrivals, aht_s), aht_s, target_sl, threshold_s)
            if arrivals
            else 0
        )
        rows.append(_staffing_row(arrivals, aht_s, needed, threshold_s))
    first = rows[0]
    around = [
        _staffing_row(first.arrivals_per_hour, aht_s, c, threshold_s)
        for c in range(max(1, first.agents - 2), first.agents + 4)
        if c > first.traffic_erlangs
    ]
    return Staffing(
        aht_s=aht_s, target_sl=target_sl, threshold_s=threshold_s, rows=rows, around=around
    )


# ---------------------------------------------------------------------------- convenience
def report_events(
    events: Iterable[EventRecord],
    spec: ReportSpec,
    ctx: ReportContext | None = None,
    *,
    bots: frozenset[int] = frozenset(),
) -> Summary:
    """The summary of a list of events (fold, aggregate, finish): the reference path."""
    ctx = ctx or ReportContext()
    facts = fold(events, bots=bots)
    return summary(contact_partials(facts.contacts, spec, ctx), spec, ctx)
