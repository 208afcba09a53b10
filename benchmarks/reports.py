"""Reports benchmark: summary and timeseries over 1M events on PostgreSQL.

A database is created for the run (dropped afterwards) and filled server-side with
``generate_series``: contacts of 14 events each (created, inbound, auto-reply, offer,
accept, assignment or abandon, replies, statuses, wrap-up, close, CSAT) over 30 days, in 5
queues with business hours, 6 channels and 200 agents whose state changes twice a day. The
timed part is the code the report API runs (``hub.reports.rollup``, ``hub.reports.sql``,
``hub.reports``): fold the new events into the rollups, aggregate in SQL, finish in
Python. The one-off fold of the whole log is timed apart, as is a report right after
10,000 new events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.common import pg_admin, summary, write_result
from hub import reports as r
from hub.reports import rollup
from hub.reports import sql as rs
from storage.db import create_engine, migrate, session_factory

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PER_CONTACT = 14
AGENTS = 200
QUEUES = 5
DAYS = 30
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
HOURS = {
    "timezone": "Europe/Paris",
    "business_hours": {d: ["08:00", "20:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")},
}

# One row per (contact c, step k); abandoned contacts (c % 10 = 0) fill unused steps with
# delivery statuses so that every contact has PER_CONTACT events.
EVENTS_SQL = """
WITH base AS (
    SELECT c, k,
           {first_conv} + c AS conv,
           'q' || (c % {queues}) AS queue,
           (ARRAY['sms','email','whatsapp','webchat','telegram','api'])[1 + c % 6] AS channel,
           1 + (c % {agents}) AS agent,
           (c * 7919) % 120 AS wait,
           c % 10 = 0 AS gone,
           timestamptz '{start}' + make_interval(secs => {offset} + c * {spacing}) AS t0
    FROM generate_series(0, {contacts} - 1) c, generate_series(0, {per} - 1) k
), ev AS (
    SELECT conv, queue, channel, c,
        CASE
            WHEN k = 0 THEN 'conversation.created'
            WHEN k IN (1, 8) THEN 'message.received'
            WHEN k = 2 THEN 'message.sent'
            WHEN k = 5 AND gone THEN 'conversation.abandoned'
            WHEN k = 5 THEN 'conversation.assigned'
            WHEN gone THEN 'message.status'
            WHEN k = 3 THEN 'offer.created'
            WHEN k = 4 THEN 'offer.accepted'
            WHEN k IN (6, 9) THEN 'message.sent'
            WHEN k = 11 THEN 'conversation.wrap_up'
            WHEN k = 12 THEN 'conversation.closed'
            WHEN k = 13 AND c % 3 = 0 THEN 'message.received'
            ELSE 'message.status'
        END AS type,
        CASE WHEN k IN (0, 1, 2) OR (gone AND k <> 5) THEN NULL ELSE agent END AS agent_id,
        t0 + make_interval(secs => CASE
            WHEN k <= 2 THEN k * 0.5
            WHEN k <= 5 THEN wait + (k - 5) * 0.5
            ELSE wait + (k - 5) * 30 + 0.0
        END) AS at,
        CASE
            WHEN k = 0 THEN json_build_object('priority', 0, 'language', 'en')
            WHEN k = 1 THEN json_build_object('kind', 'message', 'text', 'hello, I need help')
            WHEN k = 2 THEN json_build_object('kind', 'auto_reply', 'text', 'We got it')
            WHEN k = 5 THEN json_build_object('wait_s', wait + (CASE WHEN gone THEN 30 ELSE 0 END))
            WHEN gone THEN json_build_object('status', 'delivered')
            WHEN k IN (6, 9) THEN json_build_object('text', 'Sure, let me check that for you')
            WHEN k = 8 THEN json_build_object('kind', 'message', 'text', 'thanks')
            WHEN k = 12 THEN json_build_object(
                'disposition', CASE WHEN c % 50 = 0 THEN 'complaint' ELSE 'resolved' END)
            WHEN k = 13 AND c % 3 = 0 THEN json_build_object('kind', 'csat', 'score', 1 + c % 5)
            ELSE json_build_object('status', 'delivered')
        END AS payload
    FROM base
)
INSERT INTO events (seq, type, conversation_id, customer_id, agent_id, queue, channel,
                    payload, created_at)
SELECT {first_seq} + row_number() OVER (ORDER BY at, conv, type), type, conv, conv, agent_id,
       queue, channel, payload, at
FROM ev
"""

STATES_SQL = """
INSERT INTO events (seq, type, conversation_id, customer_id, agent_id, queue, channel,
                    payload, created_at)
SELECT {first_seq} + row_number() OVER (ORDER BY at, a), 'agent.state_changed', NULL, NULL, a,
       '', '', json_build_object('state', st, 'previous', ''), at
FROM (
    SELECT a, d, s,
           CASE WHEN s = 0 THEN 'available' ELSE 'offline' END AS st,
           timestamptz '{start}' + make_interval(days => d, hours => CASE WHEN s = 0 THEN 6
                                                                     ELSE 20 END) AS at
    FROM generate_series(1, {agents}) a, generate_series(0, {days} - 1) d,
         generate_series(0, 1) s
) x
"""


async def _fill(url: str, events: int) -> int:
    """Agent state events first (seq order is time order per writer), then contacts."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for i in range(QUEUES):
            await conn.execute(
                "INSERT INTO queues (name, steps, selection, priority, sl_threshold_s, options)"
                " VALUES ($1, '[]', 'longest_idle', 0, 20, $2::json)",
                f"q{i}",
                json.dumps(HOURS),
            )
        states = AGENTS * DAYS * 2
        await conn.execute(
            STATES_SQL.format(first_seq=0, start=START.isoformat(), agents=AGENTS, days=DAYS)
        )
        contacts = (events - states) // PER_CONTACT
        await conn.execute(
            EVENTS_SQL.format(
                first_seq=states,
                first_conv=1,
                contacts=contacts,
                per=PER_CONTACT,
                queues=QUEUES,
                agents=AGENTS,
                start=START.isoformat(),
                offset=0,
                spacing=DAYS * 86400 / contacts,
            )
        )
        total = int(await conn.fetchval("SELECT count(*) FROM events"))
        await conn.execute("UPDATE stream_head SET seq = $1", total)
        await conn.execute("ANALYZE")
        return total
    finally:
        await conn.close()


async def _append(url: str, count: int, first_conv: int) -> int:
    """Add ``count`` events (new contacts on the last day), as live traffic would."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        head = int(await conn.fetchval("SELECT seq FROM stream_head"))
        contacts = count // PER_CONTACT
        await conn.execute(
            EVENTS_SQL.format(
                first_seq=head,
                first_conv=first_conv,
                contacts=contacts,
                per=PER_CONTACT,
                queues=QUEUES,
                agents=AGENTS,
                start=(START + timedelta(days=DAYS - 1)).isoformat(),
                offset=0,
                spacing=86400 / contacts,
            )
        )
        head += contacts * PER_CONTACT
        await conn.execute("UPDATE stream_head SET seq = $1", head)
        return contacts * PER_CONTACT
    finally:
        await conn.close()


Report = Callable[[Any], Awaitable[object]]


def _reports() -> dict[str, Report]:
    end = START + timedelta(days=DAYS)
    paris = r.zone("Europe/Paris")

    def spec(**kw: Any) -> r.ReportSpec:
        return r.ReportSpec(start=START, end=end, tz=paris, thresholds=(20.0, 60.0), **kw)

    async def run_summary(s: Any, **kw: Any) -> object:
        await rollup.catch_up(s)
        ctx, _ = await rs.load_context(s)
        sp = spec(**kw)
        return r.summary(await rs.contact_rows(s, sp, ctx, by_channel=True), sp, ctx)

    async def run_series(s: Any, bucket: r.Bucket) -> object:
        await rollup.catch_up(s)
        ctx, _ = await rs.load_context(s)
        sp = spec(bucket=bucket)
        return r.timeseries(await rs.contact_rows(s, sp, ctx), sp, ctx)

    return {
        "summary": lambda s: run_summary(s),
        "summary_by_queue": lambda s: run_summary(s, group_by="queue"),
        "timeseries_hour": lambda s: run_series(s, "hour"),
        "timeseries_day": lambda s: run_series(s, "day"),
    }


async def _time(url: str, report: Report, runs: int) -> list[float]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    timings: list[float] = []
    try:
        for i in range(runs + 3):
            async with sessions() as s:
                started = time.perf_counter()
                await report(s)
                elapsed = time.perf_counter() - started
            if i >= 3:  # warm-up: connection, plan cache
                timings.append(elapsed * 1000)
    finally:
        await engine.dispose()
    return timings


async def _once(url: str, work: Callable[[Any], Awaitable[object]]) -> float:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            started = time.perf_counter()
            await work(s)
            return time.perf_counter() - started
    finally:
        await engine.dispose()


async def run(events: int, runs: int, admin_url: str) -> dict[str, Any]:
    name = f"hubbench_{uuid.uuid4().hex[:8]}"
    await pg_admin(f'CREATE DATABASE "{name}"', admin_url)
    url = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    out: dict[str, Any] = {"load_average_at_start": os.getloadavg()}
    try:
        await migrate(url)
        started = time.perf_counter()
        total = await _fill(url, events)
        out["events"] = total
        out["fill_seconds"] = round(time.perf_counter() - started, 1)
        out["rollup_fold_all_seconds"] = round(await _once(url, rollup.catch_up), 2)
        reports = _reports()
        timings = {key: summary(await _time(url, fn, runs)) for key, fn in reports.items()}
        out["report_ms"] = timings
        added = await _append(url, 10_000, first_conv=10_000_000)
        out["appended_events"] = added
        out["summary_after_append_ms"] = round(await _once(url, reports["summary"]) * 1000, 1)
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin_url)
    out["load_average_at_end"] = os.getloadavg()
    out["target"] = "median report over 1M events < 1000 ms"
    out["range_days"] = DAYS
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub bench reports", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per report")
    parser.add_argument(
        "--admin-url", default=ADMIN_URL, help="PostgreSQL server to create a DB on"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.events, args.runs, args.admin_url))
    path = write_result("reports", result)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{result['events']:,} events; one-off fold into rollups "
        f"{result['rollup_fold_all_seconds']} s"
    )
    for key, figures in result["report_ms"].items():
        print(f"  {key:18} median {figures['median']:7.1f} ms  p95 {figures['p95']:7.1f} ms")
    print(
        f"  summary right after {result['appended_events']:,} new events: "
        f"{result['summary_after_append_ms']} ms (fold included)"
    )
    print(f"written to {path}")
    return 0
