"""PostgreSQL connections killed again and again under load: the hub answers honestly (2xx
only for what it stored, 5xx for what the sender must send again), says it is not ready,
and recovers by itself: ready again, every loop working, contacts routed and replies sent."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from channels.twilio_sms.testing.fake_api import FakeTwilio
from tests.resilience.conftest import (
    Served,
    ServeHub,
    agent_console,
    database_name,
    db_value,
    offer_for,
    stored_counts,
    terminate_backends,
    twilio_settings,
    until,
)

pytestmark = pytest.mark.postgres

# The outage: every connection to the hub's database terminated every 100 ms for 3 s.
KILL_FOR_S = 3.0
KILL_EVERY_S = 0.1
# Senders of each kind at once (more overlap with the kills: more refusals to retry).
SENDERS = 3
# Readiness pollers at once. A killed pooled connection is replaced at its next checkout
# (pre-ping), so the database check fails only when a kill lands inside the check itself:
# one poller every 20 ms saw that once in ~120 answers, four every 10 ms 8 to 19 times.
READY_WATCHERS = 4
# How soon after the outage the hub must be ready again with no loop failing. The loops'
# backoff doubles from 0.5 s to 30 s; after 3 s of failures the next try is at most ~8 s off.
RECOVER_WITHIN_S = 30.0
SENDER_SMS = "+12025550161"
SENDER_API = "+12025550162"
AFTER = "+12025550163"


@pytest.fixture
async def served(serve_hub: ServeHub, pg_url: str, fake_twilio: tuple[FakeTwilio, str]) -> Served:
    return await serve_hub(pg_url, **twilio_settings(fake_twilio[1]))


class Traffic:
    """Signed SMS webhooks and API contacts, each with its own provider id and the text
    ``message <id>``, sent one after another; every answer is kept."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.answers: dict[str, list[tuple[int, str]]] = {}
        self.kinds: dict[str, str] = {}
        self._ids = itertools.count(1)

    async def send(self, kind: str, provider_id: str) -> tuple[int, str]:
        text = f"message {provider_id}"
        if kind == "sms":
            answer = await self.served.sms(sid=provider_id, sender=SENDER_SMS, text=text)
        else:
            answer = await self.served.api_inbound(
                external_id=provider_id, sender=SENDER_API, text=text
            )
        self.kinds[provider_id] = kind
        self.answers.setdefault(provider_id, []).append(answer)
        return answer

    async def run(self, kind: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            n = next(self._ids)
            await self.send(kind, f"SM{n:032x}" if kind == "sms" else f"api-outage-{n}")
            await asyncio.sleep(0.02)

    def last_status(self, provider_id: str) -> int:
        return self.answers[provider_id][-1][0]


async def watch_ready(served: Served, stop: asyncio.Event, seen: list[dict[str, Any]]) -> None:
    while not stop.is_set():
        status, body = await served.ready()
        seen.append({**body, "http_status": status})
        await asyncio.sleep(0.01)


def summary(seen: list[dict[str, Any]]) -> dict[str, int]:
    """How many readiness answers there were of each status and set of checks."""
    counts: dict[str, int] = {}
    for r in seen:
        key = f"{r['http_status']} {sorted(r['checks'].items())}"
        counts[key] = counts.get(key, 0) + 1
    return counts


async def test_killed_connections_lose_nothing_acknowledged_and_the_hub_recovers_by_itself(
    served: Served, pg_url: str, fake_twilio: tuple[FakeTwilio, str]
) -> None:
    fake = fake_twilio[0]
    status, body = await served.ready()
    assert status == 200, body
    traffic = Traffic(served)

    stop = asyncio.Event()
    seen: list[dict[str, Any]] = []
    background = [
        *(asyncio.create_task(traffic.run(kind, stop)) for kind in ("sms", "api") * SENDERS),
        *(asyncio.create_task(watch_ready(served, stop, seen)) for _ in range(READY_WATCHERS)),
    ]
    try:
        terminated = await terminate_backends(
            database_name(pg_url), seconds=KILL_FOR_S, every_s=KILL_EVERY_S
        )
    finally:
        stop.set()
        async with asyncio.timeout(60):
            await asyncio.gather(*background)
    assert terminated > 0, "the hub held no connection to terminate"

    # During: not ready, at least once, because of the database.
    down = [r for r in seen if r["http_status"] == 503 and r["checks"]["database"] != "ok"]
    assert down, f"/readyz never said the database was down: {summary(seen)}"
    assert all(r["checks"]["database"].startswith("error") for r in down), summary(seen)
    assert all(r["status"] == "unavailable" for r in down)

    # After: ready again without a restart, with every loop working.
    async def ready_again() -> bool:
        status, body = await served.ready()
        return status == 200 and all(loop["state"] == "ok" for loop in body["loops"].values())

    took = await until(ready_again, limit_s=RECOVER_WITHIN_S, what="/readyz 200, every loop ok")
    status, body = await served.ready()
    assert body["checks"] == {"database": "ok", "loops": "ok"}, body
    assert {"router", "outbox", "lease"} <= set(body["loops"]), body["loops"]

    # Every answer was a success or a server error, and a success meant stored.
    statuses = [s for answers in traffic.answers.values() for s, _ in answers]
    assert all(200 <= s < 300 or 500 <= s < 600 for s in statuses), sorted(set(statuses))
    refused = sorted(pid for pid in traffic.answers if traffic.last_status(pid) >= 500)
    counts = await stored_counts(pg_url, list(traffic.answers))
    lost = [pid for pid, n in counts.items() if pid not in refused and n != 1]
    assert not lost, f"answered 2xx but stored {[(p, counts[p]) for p in lost]}"
    assert all(counts[pid] in (0, 1) for pid in refused), {p: counts[p] for p in refused}

    # The senders retry what was refused: then everything is stored exactly once.
    for pid in refused:

        async def accepted(pid: str = pid) -> bool:
            return 200 <= (await traffic.send(traffic.kinds[pid], pid))[0] < 300

        await until(accepted, limit_s=RECOVER_WITHIN_S, what=f"{pid} accepted again")
    counts = await stored_counts(pg_url, list(traffic.answers))
    assert set(counts.values()) == {1}, {p: n for p, n in counts.items() if n != 1}
    print(
        f"outage: {terminated} connections terminated, {len(traffic.answers)} contacts "
        f"({len(refused)} refused, then stored on retry); {len(seen)} readiness answers: "
        f"{summary(seen)}; ready with every loop ok {took:.1f} s after; loops {body['loops']}"
    )

    # The loops work: a new contact is routed and offered to an available agent over the
    # console, and the agent's reply reaches the provider through the outbox.
    agent_id, console = await agent_console(served, "ann")
    try:
        sid = "SM" + "e" * 32
        assert (await served.sms(sid=sid, sender=AFTER, text="after the outage"))[0] == 200
        conv = await db_value(
            pg_url, "SELECT conversation_id FROM messages WHERE provider_id = $1", sid
        )
        offer = await offer_for(console, conv, limit_s=15)
        assert offer["agent_id"] == agent_id
        taken = await console.cmd("accept", offer_id=offer["payload"]["offer_id"])
        assert taken["type"] == "ack", taken
        replied = await console.cmd("reply", conversation_id=conv, text="We are back")
        assert replied["type"] == "ack", replied

        async def delivered() -> bool:
            return any(m.get("Body") == "We are back" and m.get("To") == AFTER for m in fake.sent)

        await until(delivered, limit_s=15, what="the agent's reply sent to Twilio")
    finally:
        await console.close()
