"""Report API (``/api/v1/reports/...``): KPIs from the event log as JSON or ``?format=csv``."""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any, cast, get_args
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contract.errors import InvalidInput, NotFound
from hub import reports as r
from hub.reports import rollup
from hub.reports import sql as rs
from hub.voice.kpi import VoiceKpis, call_rows, voice_kpis
from hub.web import keys
from hub.web.api.openapi import Param, json_response
from hub.web.api.routes import api, as_int
from routing import erlang
from storage.models import Agent, Queue, Team

MAX_DAYS = 400
MAX_BUCKETS = 5000
# Reports cover contacts, not history: the bounds keep bucket arithmetic off datetime's limits.
FIRST_YEAR, LAST_YEAR = 1970, 9000
DAY_S = 86_400.0
# Erlang C costs grow with the square of the offered load; past this a request would hold the
# event loop for seconds (a single site of more than ~1000 busy agents plans per queue).
MAX_ERLANGS_PER_ROW = 1000.0
MAX_ERLANGS_TOTAL = 5000.0
DEFAULT_EDGES = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
COMMON: dict[str, str | Param] = {
    "from": "ISO 8601 start (default: midnight today in tz); naive times are in tz",
    "to": "ISO 8601 end, exclusive (default: now)",
    "tz": "IANA timezone for defaults and buckets (default UTC)",
    "queue": "only this queue",
    "team": "only the queues of this team (agents report: its agents)",
    "channel": "only this channel",
    "agent": Param(
        description="only contacts this agent answered (agent id)",
        schema={"type": "integer", "minimum": 1},
    ),
    "thresholds": "service-level thresholds in seconds, comma-separated (default: queues')",
    "format": Param(description="json (default) or csv", schema={"enum": ["json", "csv"]}),
}
GROUP_BY = Param(
    description="row per queue, team, agent or channel",
    schema={"enum": ["queue", "team", "agent", "channel"]},
)
CSV = ("text/csv",)


class SummaryOut(r.Summary):
    as_of_seq: int = Field(description="the last event folded into these figures")


class TimeseriesOut(r.Timeseries):
    as_of_seq: int


class WaitDistributionOut(r.WaitDistribution):
    as_of_seq: int


class AgentsOut(r.AgentsReport):
    as_of_seq: int


class StaffingOut(r.Staffing):
    arrivals_from_history: bool = Field(description="arrivals are the range's hourly average")
    aht_from_history: bool = Field(description="AHT is the range's handle time plus ACW")


# ---------------------------------------------------------------------------- parsing
def _floats(raw: str, name: str, *, most: int = 10, upper: float = 86_400.0) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in raw.split(",") if x.strip())
    except ValueError:
        raise InvalidInput(f"{name} must be comma-separated numbers") from None
    if not values or len(values) > most:
        raise InvalidInput(f"{name} takes 1 to {most} numbers")
    if any(not math.isfinite(v) or not 0 <= v <= upper for v in values):
        raise InvalidInput(f"{name} must be between 0 and {upper:g}")
    return values


def _number(
    request: web.Request, name: str, default: float | None, *, least: float, most: float
) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number") from None
    if not math.isfinite(value) or not least <= value <= most:
        raise InvalidInput(f"{name} must be a number from {least:g} to {most:g}")
    return value


def _when(raw: str, tz: ZoneInfo, name: str) -> datetime:
    if raw[-6:-5] == " ":  # an unescaped "+hh:mm" offset arrives as " hh:mm"
        raw = raw[:-6] + "+" + raw[-5:]
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 date or time") from None
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise InvalidInput(f"{name} must lie in the years {FIRST_YEAR} to {LAST_YEAR}")
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    value = request.query.get(name) or None
    if value is not None and value not in choices:
        raise InvalidInput(f"{name} must be one of {', '.join(choices)}")
    return value


def _group_by(request: web.Request) -> r.GroupBy | None:
    return cast("r.GroupBy | None", _choice(request, "group_by", get_args(r.GroupBy)))


def _bucket(request: web.Request) -> r.Bucket:
    return cast("r.Bucket", _choice(request, "bucket", get_args(r.Bucket)) or "hour")


async def _team_queues(s: AsyncSession, team: str) -> frozenset[str]:
    team_id = await s.scalar(select(Team.id).where(Team.name == team))
    if team_id is None:
        raise NotFound(f"team {team!r} not found")
    return frozenset((await s.scalars(select(Queue.name).where(Queue.team_id == team_id))).all())


async def _spec(
    request: web.Request,
    s: AsyncSession,
    thresholds: dict[str, int],
    *,
    bucket: r.Bucket | None = None,
    edges: tuple[float, ...] = (),
    group_by: r.GroupBy | None = None,
    team_queues: bool = True,
) -> r.ReportSpec:
    q = request.query
    try:
        tz = r.zone(q.get("tz") or "UTC")
    except ValueError as err:
        raise InvalidInput(str(err)) from None
    now = datetime.now(tz)
    start = (
        _when(q["from"], tz, "from")
        if q.get("from")
        else datetime.combine(now.date(), dtime(0), tz)
    )
    end = _when(q["to"], tz, "to") if q.get("to") else now
    if end <= start:
        raise InvalidInput("to must be after from")
    if end - start > timedelta(days=MAX_DAYS):
        raise InvalidInput(f"the range may span at most {MAX_DAYS} days")
    if bucket is not None:
        count = (end - start).total_seconds() / r.BUCKET_S[bucket]
        if count > MAX_BUCKETS:
            raise InvalidInput(f"at most {MAX_BUCKETS} buckets: use a larger bucket")
    queue, team = q.get("queue") or None, q.get("team") or None
    queues: frozenset[str] | None = None
    if team is not None and team_queues:
        queues = await _team_queues(s, team)
    if queue is not None:
        queues = frozenset({queue}) & queues if queues is not None else frozenset({queue})
    agent_raw = q.get("agent") or None
    agent_id = as_int(agent_raw, "agent") if agent_raw is not None else None
    if q.get("thresholds"):
        levels = _floats(q["thresholds"], "thresholds")
    elif queue is not None and queue in thresholds:
        levels = (float(thresholds[queue]),)
    else:
        levels = tuple(sorted({float(t) for t in thresholds.values()} or {20.0}))
    return r.ReportSpec(
        start=start,
        end=end,
        tz=tz,
        thresholds=tuple(sorted(set(levels))),
        bucket=bucket,
        group_by=group_by,
        queues=queues,
        channel=q.get("channel") or None,
        agent_id=agent_id,
        edges=edges,
    )


# ---------------------------------------------------------------------------- csv
def _cell(value: Any) -> Any:
    # A spreadsheet runs a cell that starts with = + - @ as a formula; names are user input.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else value


def _sl_name(threshold: float) -> str:
    return f"{threshold:g}".replace(".", "_")


def kpi_columns(thresholds: Sequence[float]) -> list[str]:
    """CSV columns of a KPI row (service levels flattened)."""
    cols = [f for f in r.Kpis.model_fields if f != "service_levels"]
    for t in thresholds:
        cols += [f"sl_{_sl_name(t)}_counting_abandons", f"sl_{_sl_name(t)}_answered_only"]
    return cols


def kpi_cells(k: r.Kpis) -> dict[str, Any]:
    out = {f: getattr(k, f) for f in r.Kpis.model_fields if f != "service_levels"}
    for level in k.service_levels:
        name = _sl_name(level.threshold_s)
        out[f"sl_{name}_counting_abandons"] = level.counting_abandons
        out[f"sl_{name}_answered_only"] = level.answered_only
    return out


def csv_response(name: str, header: list[str], rows: Iterable[dict[str, Any]]) -> web.Response:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return web.Response(
        text=buf.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"'},
    )


def _wants_csv(request: web.Request) -> bool:
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidInput("format must be json or csv")
    return fmt == "csv"


# ---------------------------------------------------------------------------- routes
@api.route(
    "GET",
    "/api/v1/reports/summary",
    access="reports.read",
    summary="KPIs of contacts that arrived in a range (in and out of business hours), "
    "contacts per channel and rows per queue/team/agent/channel; ?format=csv",
    tag="reports",
    responses={200: SummaryOut},
    query={**COMMON, "group_by": GROUP_BY},
    also=CSV,
)
async def report_summary(request: web.Request) -> web.Response:
    csv_out = _wants_csv(request)
    group_by = _group_by(request)
    async with request.app[keys.HUB].read_sessions() as s:
        seq = await rollup.catch_up(s)
        ctx, thresholds = await rs.load_context(s)
        spec = await _spec(request, s, thresholds, group_by=group_by)
        rows = await rs.contact_rows(s, spec, ctx, by_channel=True)
    report = SummaryOut(**dict(r.summary(rows, spec, ctx)), as_of_seq=seq)
    if not csv_out:
        return json_response(report)
    header = ["scope", "key", "out_of_hours_contacts", *kpi_columns(spec.thresholds)]
    lines: list[dict[str, Any]] = [
        {"scope": "in_hours", "key": "", **kpi_cells(report.total)},
        {"scope": "out_of_hours", "key": "", **kpi_cells(report.out_of_hours)},
    ]
    lines += [
        {"scope": "channel", "key": c.channel, "contacts": c.contacts}
        | {"out_of_hours_contacts": c.out_of_hours_contacts}
        for c in report.by_channel
    ]
    lines += [
        {"scope": group_by, "key": row.key, "out_of_hours_contacts": row.out_of_hours_contacts}
        | kpi_cells(row)
        for row in report.rows
    ]
    return csv_response("summary", header, lines)


@api.route(
    "GET",
    "/api/v1/reports/voice",
    access="reports.read",
    summary="Phone KPIs from the calls' provider-reported times: queued, answered, "
    "abandoned, callbacks, voicemails, ASA, abandonment rate, service level, AHT",
    tag="reports",
    responses={200: VoiceKpis},
    query={k: COMMON[k] for k in ("from", "to", "tz", "queue", "team", "channel", "thresholds")},
)
async def report_voice(request: web.Request) -> web.Response:
    async with request.app[keys.HUB].read_sessions() as s:
        _, thresholds = await rs.load_context(s)
        spec = await _spec(request, s, thresholds)
        rows = []
        for queue in sorted(spec.queues) if spec.queues is not None else [None]:
            rows += await call_rows(
                s, since=spec.start, until=spec.end, queue=queue, channel=spec.channel
            )
    return json_response(voice_kpis(rows, spec.thresholds))


@api.route(
    "GET",
    "/api/v1/reports/timeseries",
    access="reports.read",
    summary="KPIs per time bucket (15m, hour, day in tz), zero-filled; ?format=csv",
    tag="reports",
    responses={200: TimeseriesOut},
    query={
        **COMMON,
        "bucket": Param(description="default hour", schema={"enum": ["15m", "hour", "day"]}),
        "group_by": GROUP_BY,
    },
    also=CSV,
)
async def report_timeseries(request: web.Request) -> web.Response:
    csv_out = _wants_csv(request)
    bucket = _bucket(request)
    group_by = _group_by(request)
    async with request.app[keys.HUB].read_sessions() as s:
        seq = await rollup.catch_up(s)
        ctx, thresholds = await rs.load_context(s)
        spec = await _spec(request, s, thresholds, bucket=bucket, group_by=group_by)
        rows = await rs.contact_rows(s, spec, ctx)
    report = TimeseriesOut(**dict(r.timeseries(rows, spec, ctx)), as_of_seq=seq)
    if not csv_out:
        return json_response(report)
    header = ["start", "end", "key", "out_of_hours_contacts", *kpi_columns(spec.thresholds)]
    return csv_response(
        "timeseries",
        header,
        (
            {"start": p.start, "end": p.end, "key": p.key}
            | {"out_of_hours_contacts": p.out_of_hours_contacts}
            | kpi_cells(p)
            for p in report.points
        ),
    )


@api.route(
    "GET",
    "/api/v1/reports/wait-distribution",
    access="reports.read",
    summary="Answered and abandoned waits in bins (in-hours arrivals); ?format=csv",
    tag="reports",
    responses={200: WaitDistributionOut},
    query={**COMMON, "edges": "bin edges in seconds, comma-separated (default 5,10,...,600)"},
    also=CSV,
)
async def report_wait_distribution(request: web.Request) -> web.Response:
    csv_out = _wants_csv(request)
    edges: tuple[float, ...] = DEFAULT_EDGES
    if request.query.get("edges"):
        edges = tuple(sorted(set(_floats(request.query["edges"], "edges", most=30))))
    async with request.app[keys.HUB].read_sessions() as s:
        seq = await rollup.catch_up(s)
        ctx, thresholds = await rs.load_context(s)
        spec = await _spec(request, s, thresholds, edges=edges)
        rows = await rs.contact_rows(s, spec, ctx)
    report = WaitDistributionOut(**dict(r.wait_distribution(rows, spec, ctx)), as_of_seq=seq)
    if not csv_out:
        return json_response(report)
    return csv_response(
        "wait-distribution",
        ["low_s", "high_s", "answered", "abandoned"],
        (b.model_dump() for b in report.bins),
    )


async def _people(
    s: AsyncSession, team: str | None, agent_id: int | None
) -> tuple[dict[int, tuple[str, str]], frozenset[int] | None]:
    query = select(Agent.id, Agent.display_name, Agent.username, Agent.role, Team.name).outerjoin(
        Team, Team.id == Agent.team_id
    )
    rows = (await s.execute(query)).all()
    members = None
    if team is not None:
        members = frozenset(a for a, _, _, _, t in rows if t == team)
    people = {
        a: (name or username, t or "")
        for a, name, username, role, t in rows
        if role == "agent"
        and (members is None or a in members)
        and (agent_id is None or a == agent_id)
    }
    return people, members


@api.route(
    "GET",
    "/api/v1/reports/agents",
    access="reports.read",
    summary="Per agent: holds, AHT, transfers, answers, CSAT, complaints, staffed and busy "
    "time, occupancy; ?format=csv",
    tag="reports",
    responses={200: AgentsOut},
    query=COMMON,
    also=CSV,
)
async def report_agents(request: web.Request) -> web.Response:
    csv_out = _wants_csv(request)
    team = request.query.get("team") or None
    async with request.app[keys.HUB].read_sessions() as s:
        seq = await rollup.catch_up(s)
        ctx, thresholds = await rs.load_context(s)
        # A team here means its members (elsewhere: the queues it serves).
        spec = await _spec(request, s, thresholds, group_by="agent", team_queues=False)
        people, members = await _people(s, team, spec.agent_id)
        rows = await rs.contact_rows(s, spec, ctx)
        if members is not None:
            rows = [(k, p) for k, p in rows if k.agent_id in members]
        work = await rs.agent_work(s, spec, now=time.time(), agents=members)
    report = AgentsOut(**dict(r.agents_report(rows, work, spec, people=people)), as_of_seq=seq)
    if not csv_out:
        return json_response(report)
    states = sorted({k for item in report.items for k in item.state_s})
    fields = [f for f in r.AgentRow.model_fields if f != "state_s"]
    return csv_response(
        "agents",
        [*fields, *(f"state_{st}_s" for st in states)],
        (
            {f: getattr(item, f) for f in fields}
            | {f"state_{st}_s": item.state_s.get(st, 0.0) for st in states}
            for item in report.items
        ),
    )


@api.route(
    "GET",
    "/api/v1/reports/staffing",
    access="reports.read",
    summary="Erlang C: agents needed for forecast arrivals per hour, AHT and a target service "
    "level; missing arrivals/AHT come from the range's history; ?format=csv",
    tag="reports",
    responses={200: StaffingOut},
    query={
        **COMMON,
        "arrivals_per_hour": "forecast, comma-separated (one row each); default: history",
        "aht_s": Param(
            description="average handle time incl. after-contact work; default: history",
            schema={"type": "number", "exclusiveMinimum": 0, "maximum": DAY_S},
        ),
        "target_sl": Param(
            description="target service level, 0-1 exclusive (default 0.8)",
            schema={"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        ),
        "threshold_s": Param(
            description="service-level threshold (default: the queue's, else 20)",
            schema={"type": "number", "minimum": 0, "maximum": DAY_S},
        ),
    },
    also=CSV,
)
async def report_staffing(request: web.Request) -> web.Response:
    csv_out = _wants_csv(request)
    forecast = request.query.get("arrivals_per_hour")
    arrivals = _floats(forecast, "arrivals_per_hour", most=168, upper=1e7) if forecast else None
    aht = _number(request, "aht_s", None, least=0.0, most=DAY_S)
    target = _number(request, "target_sl", 0.8, least=0.0, most=1.0)
    assert target is not None
    async with request.app[keys.HUB].read_sessions() as s:
        ctx, thresholds = await rs.load_context(s)
        spec = await _spec(request, s, thresholds)
        history: r.Summary | None = None
        if arrivals is None or aht is None:
            await rollup.catch_up(s)
            history = r.summary(await rs.contact_rows(s, spec, ctx), spec, ctx)
    queue = request.query.get("queue")
    default_t = float(thresholds.get(queue, 20)) if queue else 20.0
    threshold = _number(request, "threshold_s", default_t, least=0.0, most=DAY_S)
    assert threshold is not None
    if arrivals is None:
        assert history is not None
        hours = (spec.end - spec.start).total_seconds() / 3600
        arrivals = (round(history.total.contacts / hours, 3),)
    if aht is None:
        assert history is not None
        if history.total.aht_s is None:
            raise InvalidInput("aht_s is required: no handled contacts in the range")
        aht = history.total.aht_s + (history.total.acw_avg_s or 0.0)
    loads = [erlang.traffic(a, aht) for a in arrivals]
    if max(loads) > MAX_ERLANGS_PER_ROW or sum(loads) > MAX_ERLANGS_TOTAL:
        raise InvalidInput(
            f"arrivals_per_hour x aht_s / 3600 may reach {MAX_ERLANGS_PER_ROW:g} Erlangs a row "
            f"and {MAX_ERLANGS_TOTAL:g} in all: plan larger sites per queue"
        )
    try:
        plan = r.staffing(arrivals, aht_s=aht, target_sl=target, threshold_s=threshold)
    except ValueError as err:
        raise InvalidInput(str(err)) from None
    out = StaffingOut(
        **dict(plan),
        arrivals_from_history=forecast is None,
        aht_from_history=request.query.get("aht_s") in (None, ""),
    )
    if not csv_out:
        return json_response(out)
    header = ["table", *r.StaffingRow.model_fields]
    return csv_response(
        "staffing",
        header,
        [{"table": "forecast"} | row.model_dump() for row in out.rows]
        + [{"table": "around_first"} | row.model_dump() for row in out.around],
    )
