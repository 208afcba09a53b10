"""``hub bench scale``: contacts per second with 1, 2 and 3 hub processes on PostgreSQL + Redis.

Each round starts a fresh fleet (``benchmarks.fleet``): N ``hub serve`` processes (role
``all``) on a new database, the fake Twilio, 8 console bots that accept, reply and close.
The load is signed Twilio SMS webhooks spread round-robin over the processes, 10% of them
sent twice (provider retries), from a fixed number of concurrent senders; the bots keep the
conversations they get (each customer has one), so the figure is the ingest's, not the
pace at which 8 bots can close conversations. Reported per
round: contacts acknowledged per second, webhook latency, inbound-to-offer latency on a
console, and where the CPU went (hub processes, PostgreSQL, Redis, this driver), read from
/proc, so the report says what limits the figure on this machine. Every round also checks
the fleet's invariants (nothing lost, doubled or assigned twice). Ratios are against the
first round, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from pathlib import Path
from typing import Any

from benchmarks.common import summary, write_result
from benchmarks.fleet import Fleet, FloorRun, check_invariants, failed

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip().startswith(name):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _cpu_snapshot(fleet: Fleet) -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "hub": sum(_cpu_of(p.proc.pid) for p in fleet.processes if p.proc is not None),
        "postgres": sum(_cpu_of(pid) for pid in _pids_named("postgres")),
        "redis": sum(_cpu_of(pid) for pid in _pids_named("redis-server")),
        "driver": own.ru_utime + own.ru_stime,
    }


def _ms(figures: dict[str, float]) -> dict[str, float]:
    return {k: v if k == "n" else round(v * 1000, 1) for k, v in figures.items()}


async def _transactions(fleet: Fleet) -> dict[str, int]:
    """Commits and rollbacks of the fleet's database so far (PostgreSQL's statistics)."""
    rows = await fleet.sql(
        "SELECT xact_commit, xact_rollback, deadlocks FROM pg_stat_database"
        " WHERE datname = current_database()"
    )
    return {k: int(v) for k, v in dict(rows[0]).items()}


async def one_round(
    processes: int, messages: int, concurrency: int, retries: float = 0.1
) -> dict[str, Any]:
    env = {"HUB_LEASE_TTL_S": "5"}
    async with Fleet(size=processes, env_extra=env) as fleet:
        run = FloorRun(
            fleet,
            messages=messages,
            customers=max(50, messages // 10),
            agents=8,
            concurrency=concurrency,
            retry_share=retries,
            close_after_reply=False,  # one conversation per customer: the load is the ingest
        )
        await run.create_agents()
        async with run.floor():
            await asyncio.sleep(1.0)  # the bots log in and become available
            before = _cpu_snapshot(fleet)
            xact = await _transactions(fleet)
            await run.send_all()
            after = _cpu_snapshot(fleet)
            xact = {k: v - xact[k] for k, v in (await _transactions(fleet)).items()}
            await run.settle(limit_s=120)
        report = await check_invariants(run)
    seconds = run.duration_s
    cpu = {k: round(after[k] - before[k], 2) for k in before}
    cores = os.cpu_count() or 1
    busy = sum(cpu.values()) / (seconds * cores)
    offer = [x for bot in run.bots for x in bot.latencies]
    return {
        "processes": processes,
        "messages": messages,
        "requests": run.sent,
        "seconds": round(seconds, 2),
        "contacts_per_s": round(messages / seconds, 1),
        "webhook_ms": _ms(summary(run.ingest_latencies)),
        "offer_ms": _ms(summary(offer)),
        "cpu_s": cpu,
        "cpu_share": {k: round(v / max(sum(cpu.values()), 1e-9), 2) for k, v in cpu.items()},
        "machine_busy": round(busy, 2),
        "transactions": xact,
        "invariants_hold": not failed(report),
        "problems": {k: v for k, v in report["problems"].items() if v},
        "figures": report["figures"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hub bench scale",
        description="Contacts/s with 1, 2 and 3 hub processes on PostgreSQL + Redis "
        "(needs both, at HUB_TEST_PG_URL and HUB_TEST_REDIS_URL or their defaults).",
    )
    parser.add_argument("--processes", default="1,2,3", help="process counts to run, in order")
    parser.add_argument("--messages", type=int, default=3000, help="inbound messages per round")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent senders")
    parser.add_argument(
        "--retries", type=float, default=0.1, help="share of messages the provider sends twice"
    )
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.processes.split(",") if n.strip()]
    rounds = []
    for n in counts:
        result = asyncio.run(one_round(n, args.messages, args.concurrency, args.retries))
        rounds.append(result)
        print(
            f"{n} process(es): {result['contacts_per_s']} contacts/s, webhook p50/p99 "
            f"{result['webhook_ms']['median']}/{result['webhook_ms']['p99']} ms, offer p50 "
            f"{result['offer_ms']['median']} ms, machine busy {result['machine_busy']:.0%}, "
            f"cpu {result['cpu_share']}, "
            f"invariants {'hold' if result['invariants_hold'] else 'BROKEN'}",
            flush=True,
        )
        if result["problems"]:
            print(f"  broken: {result['problems']}", flush=True)
    base = rounds[0]["contacts_per_s"]
    for r in rounds:
        r["ratio_to_first"] = round(r["contacts_per_s"] / base, 2) if base else None
    path = write_result(
        "scale",
        {
            "rounds": rounds,
            "note": "ratio_to_first: contacts/s against the first round of this run; all "
            "processes, PostgreSQL, Redis and the driver share this machine's CPUs",
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    print(f"written {path}")
    return 0 if all(r["invariants_hold"] for r in rounds) else 1
