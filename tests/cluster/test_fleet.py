"""Three hub processes on one PostgreSQL + Redis under a floor's load, one SIGKILLed and the
router lease taken from another mid-run: nothing acknowledged is lost or doubled, nothing
is assigned twice, every agent sees what is theirs, every reply is delivered once."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from benchmarks.fleet import Fleet, FloorRun, check_invariants, failed
from tests.conftest import _require_service

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
async def services() -> None:
    import asyncpg
    import redis.asyncio as aioredis

    from benchmarks.fleet import PG_ADMIN, REDIS

    try:
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.close()
        client = aioredis.from_url(REDIS)
        await client.ping()
        await client.aclose()
    except Exception as err:
        _require_service("PostgreSQL and Redis", err)


async def test_three_processes_lose_and_double_nothing_through_a_kill_and_a_lease_theft(
    services: None,
) -> None:
    env = {"HUB_LEASE_TTL_S": "2", "HUB_OUTBOX_STALE_S": "4", "HUB_OFFER_TIMEOUT_S": "8"}
    async with asyncio.timeout(420), Fleet(size=3, env_extra=env) as fleet:
        run = FloorRun(fleet, messages=5000, customers=400, agents=8)
        await run.create_agents()
        chaos: dict[str, Any] = {}

        async def on_progress(sent: int) -> None:
            if sent == 1500 and "killed" not in chaos:
                # The router's process dies hardest: no drain, no lease release.
                victim = await fleet.leader()
                chaos["killed"] = victim if victim is not None else 1
                fleet.kill(chaos["killed"])
                chaos["killed_at"] = time.monotonic()
            elif sent >= 3000 and "stolen_from" not in chaos:
                chaos["stolen_from"] = None  # once
                # Another process took the dead one's lease over (after its TTL); take it
                # from that one too.
                async with asyncio.timeout(30):
                    while (leader := await fleet.leader()) is None:  # noqa: ASYNC110 - polls HTTP
                        await asyncio.sleep(0.1)
                chaos["stolen_from"] = leader
                await fleet.steal_lease()

        async with run.floor():
            await run.send_all(on_progress=on_progress)
            await run.settle(limit_s=150)
        leader = await fleet.leader()
        report = await check_invariants(run)
        chaos.pop("killed_at", None)
        report["chaos"] = {**chaos, "leader_at_end": leader}
        print(json.dumps(report, indent=1))
        assert "killed" in chaos
        assert chaos["stolen_from"] is not None, "no process led after the kill"
        assert leader is not None
        assert leader != chaos["killed"]
        if failed(report):
            pytest.fail(f"invariants broken: {json.dumps(report)}\n{fleet.logs()}")
        figures = report["figures"]
        assert figures["acked"] == run.messages  # every message got through in the end
        assert figures["stored"] == run.messages
        assert figures["assignments"] > 0
        assert figures["replies"] == figures["assignments"]
        assert figures["reconnects"] > 0  # the killed process's consoles moved and resumed
        assert set(figures["by_channel"]) == {"sms", "api"}
