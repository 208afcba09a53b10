"""Prometheus metrics: request and ingest counters, live gauges read at scrape time."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.reports import rollup
from hub.reports import sql as reports_sql
from hub.supervise import Loop
from storage.models import Conversation, OutboxItem

logger = logging.getLogger(__name__)
# A scrape folds at most this many new events into the report rollups (bounded scrape time).
SCRAPE_FOLD_LIMIT = 50_000


PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LAG_PROBE_S = 0.1


class Metrics:
    """One registry per app, so several apps (tests) never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "hub_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "hub_http_request_seconds", "HTTP request latency", ["route"], registry=r
        )
        self.ingested = Counter(
            "hub_ingest",
            "Inbound contacts by channel and result",
            ["channel", "result"],
            registry=r,
        )
        self.conversations = Gauge(
            "hub_conversations", "Conversations by queue and state", ["queue", "state"], registry=r
        )
        self.outbox = Gauge("hub_outbox_items", "Outbox rows by state", ["state"], registry=r)
        self.stream_seq = Gauge("hub_stream_seq", "Last delivered event seq", registry=r)
        self.ws_clients = Gauge(
            "hub_websocket_clients", "Connected console websockets", ["kind"], registry=r
        )
        # The supervisor dashboard's live queue figures (today = since the queue's midnight).
        self.queue_waiting = Gauge(
            "hub_queue_waiting", "Conversations waiting (queued or offered)", ["queue"], registry=r
        )
        self.queue_longest_wait = Gauge(
            "hub_queue_longest_wait_seconds",
            "Age of the longest waiting one",
            ["queue"],
            registry=r,
        )
        self.queue_contacts = Gauge(
            "hub_queue_contacts_today", "Arrivals today in business hours", ["queue"], registry=r
        )
        self.queue_service_level = Gauge(
            "hub_queue_service_level_today",
            "Share of today's contacts within the queue's threshold",
            ["queue", "threshold_s", "mode"],
            registry=r,
        )
        self.queue_abandonment = Gauge(
            "hub_queue_abandonment_rate_today",
            "Abandoned / (answered + abandoned)",
            ["queue"],
            registry=r,
        )
        self.queue_asa = Gauge(
            "hub_queue_asa_seconds_today", "Average speed of answer today", ["queue"], registry=r
        )

        # A stream subscriber that fell too far behind and rebuilt from storage; a console
        # dropped for not reading (its queue overflowed, or its socket took nothing).
        self.stream_lagged = Counter(
            "hub_stream_lagged", "Stream subscriptions that lagged", ["subscriber"], registry=r
        )
        self.console_dropped = Counter(
            "hub_console_dropped", "Console websockets dropped as too slow", ["reason"], registry=r
        )

        # How late the loop runs a timer, and how long the collector stops the process: the
        # two things that turn a fast median into a slow tail for every connected console.
        self.loop_lag = Histogram(
            "hub_event_loop_lag_seconds",
            "Delay of a 100 ms timer beyond its due time",
            buckets=PAUSE_BUCKETS,
            registry=r,
        )
        self.gc_pause = Histogram(
            "hub_gc_pause_seconds",
            "Garbage collector pauses",
            ["generation"],
            buckets=PAUSE_BUCKETS,
            registry=r,
        )

        # Background loops (hub.supervise), the router lease and the bus between processes.
        self.loop_up = Gauge(
            "hub_loop_up", "1 while a background loop works, 0 while it fails", ["loop"], registry=r
        )
        self.loop_restarts = Gauge(
            "hub_loop_restarts",
            "Times a background loop failed and restarted",
            ["loop"],
            registry=r,
        )
        self.router_leader = Gauge(
            "hub_router_leader", "1 in the process that holds the router lease", registry=r
        )
        self.bus_connected = Gauge(
            "hub_bus_connected", "1 while the bus to the other processes reads (Redis)", registry=r
        )

    def loops(self, loops: Iterable[Loop], *, bus: object) -> None:
        """Set the loop, lease and bus gauges (each scrape; no storage read)."""
        for loop in loops:
            self.loop_up.labels(loop=loop.name).set(0 if loop.state == "failing" else 1)
            self.loop_restarts.labels(loop=loop.name).set(loop.restarts)
            if loop.name == "router":
                self.router_leader.set(1 if loop.state in ("ok", "failing") else 0)
        self.bus_connected.set(1 if getattr(bus, "connected", False) else 0)

    async def refresh(self, session: AsyncSession, stream_seq: int) -> None:
        """Read the live gauges from storage (called by the /metrics handler)."""
        self.conversations.clear()
        rows = await session.execute(
            select(Conversation.queue, Conversation.state, func.count())
            .where(Conversation.state != "closed")
            .group_by(Conversation.queue, Conversation.state)
        )
        for queue, state, count in rows:
            self.conversations.labels(queue=queue, state=state).set(count)
        self.outbox.clear()
        for state, count in await session.execute(
            select(OutboxItem.state, func.count())
            .where(OutboxItem.state != "done")
            .group_by(OutboxItem.state)
        ):
            self.outbox.labels(state=state).set(count)
        self.stream_seq.set(stream_seq)
        await self._refresh_queues(session)

    async def _refresh_queues(self, session: AsyncSession) -> None:
        now = datetime.now(UTC)
        for gauge in (self.queue_waiting, self.queue_longest_wait):
            gauge.clear()
        rows = await session.execute(
            select(Conversation.queue, func.count(), func.min(Conversation.waiting_since))
            .where(Conversation.state.in_(("queued", "offered")))
            .group_by(Conversation.queue)
        )
        for queue, count, oldest in rows:
            self.queue_waiting.labels(queue=queue).set(count)
            if oldest is not None:
                if oldest.tzinfo is None:  # SQLite aggregates lose the column's type
                    oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=UTC)
                wait = (now - oldest).total_seconds()
                self.queue_longest_wait.labels(queue=queue).set(max(0.0, wait))
        try:
            await rollup.catch_up(session, max_events=SCRAPE_FOLD_LIMIT)
            today = await reports_sql.today_by_queue(session, now)
        except Exception:
            logger.exception("today's queue figures are unavailable")
            return
        for gauge in (
            self.queue_contacts,
            self.queue_service_level,
            self.queue_abandonment,
            self.queue_asa,
        ):
            gauge.clear()
        for queue, (kpis, threshold) in today.items():
            self.queue_contacts.labels(queue=queue).set(kpis.contacts)
            for level in kpis.service_levels:
                if level.threshold_s != threshold:
                    continue
                for mode in ("counting_abandons", "answered_only"):
                    value = getattr(level, mode)
                    if value is not None:
                        self.queue_service_level.labels(
                            queue=queue, threshold_s=str(threshold), mode=mode
                        ).set(value)
            if kpis.abandonment_rate is not None:
                self.queue_abandonment.labels(queue=queue).set(kpis.abandonment_rate)
            if kpis.asa_s is not None:
                self.queue_asa.labels(queue=queue).set(kpis.asa_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def watch_pauses(metrics: Metrics) -> None:
    """Observe event-loop lag and garbage-collector pauses until cancelled."""
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            pause = time.perf_counter() - started.pop()
            metrics.gc_pause.labels(generation=str(info["generation"])).observe(pause)

    gc.callbacks.append(on_gc)
    loop = asyncio.get_running_loop()
    try:
        while True:
            due = loop.time() + LAG_PROBE_S
            await asyncio.sleep(LAG_PROBE_S)
            metrics.loop_lag.observe(max(0.0, loop.time() - due))
    finally:
        gc.callbacks.remove(on_gc)
