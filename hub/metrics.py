"""Prometheus metrics: request and ingest counters, live gauges read at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Conversation, OutboxItem


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

    def render(self) -> bytes:
        return generate_latest(self.registry)
