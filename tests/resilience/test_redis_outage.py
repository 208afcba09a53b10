"""Redis cut off from two hub processes on one PostgreSQL: they say they are not ready but
keep storing and answering webhooks, and an agent on one process still sees what a webhook
on the other caused, from storage, until Redis is back and carries the events again."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import pytest

from channels.twilio_sms.testing.fake_api import FakeTwilio
from hub.bus import RedisBus
from tests.agent_console.test_gateway import Console
from tests.resilience.conftest import (
    Served,
    ServeHub,
    agent_console,
    db_value,
    offer_for,
    redis_via,
    stored_messages,
    twilio_settings,
    until,
)
from tests.resilience.proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

CUSTOMER = "+12025550171"
CUT_FOR_S = 4.0
# The poll reads the stored head every second and waits one more gap timeout for the bus.
FALLBACK_WITHIN_S = 6.0
# A supervised loop's backoff doubles from 0.5 s; after a 4 s cut its next try is <= 8 s off.
RECOVER_WITHIN_S = 30.0


def bus(served: Served) -> RedisBus:
    bus = served.hub.bus
    assert isinstance(bus, RedisBus), "the hub runs without Redis"
    return bus


async def metric(served: Served, line_start: str) -> float:
    """The value of the /metrics sample whose line starts with ``line_start``."""
    async with asyncio.timeout(10), served.session.get(f"{served.base}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    values = [float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(line_start)]
    assert len(values) == 1, (line_start, values)
    return values[0]


async def fanout_ok(served: Served) -> bool:
    """Ready, with the Redis reader's loop working."""
    status, body = await served.ready()
    return status == 200 and body["loops"]["fanout"]["state"] == "ok"


async def message_reaches(
    console: Console, conversation_id: int, text: str, *, sent_at: float, limit_s: float
) -> float:
    """Seconds from ``sent_at`` until the console has the ``message.received`` of ``text``."""

    def arrived() -> bool:
        return any(
            e["type"] == "message.received"
            and e["conversation_id"] == conversation_id
            and text in str(e["payload"])
            for e in console.events
        )

    async with asyncio.timeout(limit_s):
        while not arrived():
            await console.next_frame()
    return time.monotonic() - sent_at


async def test_two_processes_keep_storing_and_delivering_while_redis_is_cut_off(
    redis_proxy: TcpProxy,  # first: torn down after the hubs have stopped
    redis_prefix: str,
    pg_url: str,
    fake_twilio: tuple[FakeTwilio, str],
    serve_hub: ServeHub,
) -> None:
    shared: dict[str, Any] = {
        "redis_url": redis_via(redis_proxy),
        "redis_prefix": redis_prefix,
        "lease_ttl_s": 1.0,
        **twilio_settings(fake_twilio[1]),
    }
    one = await serve_hub(pg_url, **shared)
    two = await serve_hub(pg_url, **shared)
    for served in (one, two):
        await until(
            functools.partial(fanout_ok, served), limit_s=10, what="fanout reading at start"
        )
        status, body = await served.ready()
        assert status == 200, body
        assert body["checks"] == {"database": "ok", "redis": "ok", "loops": "ok"}

    # Before: the agent (console on one) takes a contact that came in through two.
    agent_id, console = await agent_console(one, "ann")
    latencies: dict[str, float] = {}
    n = 0
    sent_at = 0.0

    async def sms_on_two(text: str) -> int:
        """The conversation of a new SMS webhook on two, answered 200 and stored."""
        nonlocal n, sent_at
        n += 1
        sent_at = time.monotonic()
        sid = f"SM{n:032x}"
        status, answer = await two.sms(sid=sid, sender=CUSTOMER, text=text)
        assert status == 200, answer
        assert await stored_messages(pg_url, sid) == 1
        conv: int = await db_value(
            pg_url, "SELECT conversation_id FROM messages WHERE provider_id = $1", sid
        )
        return conv

    try:
        conv = await sms_on_two("hello from two")
        offer = await offer_for(console, conv, limit_s=10)
        assert offer["agent_id"] == agent_id
        assert (await console.cmd("accept", offer_id=offer["payload"]["offer_id"]))["type"] == "ack"
        assert await sms_on_two("before the cut") == conv
        latencies["before"] = await message_reaches(
            console, conv, "before the cut", sent_at=sent_at, limit_s=5
        )
        received_before = bus(one).received
        assert received_before > 0, "one got nothing over Redis"

        # During: Redis unreachable for both processes.
        await redis_proxy.cut()
        cut_at = time.monotonic()
        for served in (one, two):

            async def redis_down(served: Served = served) -> bool:
                status, body = await served.ready()
                return status == 503 and body["checks"]["redis"].startswith("error")

            await until(redis_down, limit_s=10, what="/readyz 503 with checks.redis an error")
        status, body = await one.ready()
        assert body["checks"]["database"] == "ok", body
        assert body["status"] == "unavailable"
        assert await metric(one, "hub_bus_connected ") == 0

        during = 0
        while time.monotonic() - cut_at < CUT_FOR_S or during < 2:
            during += 1
            text = f"during the cut {during}"
            assert await sms_on_two(text) == conv  # answered 200 and stored
            latencies[f"during {during}"] = await message_reaches(
                console, conv, text, sent_at=sent_at, limit_s=FALLBACK_WITHIN_S
            )
        # What reached the console meanwhile came from storage, not over Redis.
        assert bus(one).received == received_before

        # After: Redis back; ready again, the fan-out loop working, events over Redis.
        await redis_proxy.restore()
        restored_at = time.monotonic()
        for served in (one, two):
            await until(
                functools.partial(fanout_ok, served),
                limit_s=RECOVER_WITHIN_S,
                what="/readyz 200 and fanout ok after the cut",
            )
            status, body = await served.ready()
            assert body["checks"] == {"database": "ok", "redis": "ok", "loops": "ok"}, body
            assert all(loop["state"] in ("ok", "standby") for loop in body["loops"].values())
        ready_after_s = time.monotonic() - restored_at
        assert await metric(one, "hub_bus_connected ") == 1
        assert await metric(one, 'hub_loop_up{loop="fanout"}') == 1
        assert redis_proxy.accepted > 0

        received_restored = bus(one).received
        assert await sms_on_two("after the cut") == conv
        latencies["after"] = await message_reaches(
            console, conv, "after the cut", sent_at=sent_at, limit_s=5
        )

        async def carried_by_redis() -> bool:
            return bus(one).received > received_restored

        await until(carried_by_redis, limit_s=5, what="the event reaching one over Redis")
        print(
            f"redis cut {CUT_FOR_S:.0f} s: ready again {ready_after_s:.1f} s after restore; "
            "webhook on two -> event on one's console: "
            + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in latencies.items())
        )
    finally:
        await console.close()
