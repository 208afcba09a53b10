"""Ingest benchmark: signed Twilio SMS webhooks per second, hub vs a bare one-row handler.

Both servers run as one process each, side by side, on the same kind of database (a fresh
SQLite file each, or a fresh PostgreSQL database each on the same server, opened by the same
engine factory); the same load generator (this process)
sends N requests with C in flight, in rounds that alternate between the two.
The hub's figure includes signature check, parsing, identity, threading, storing, events,
routing and fan-out; the baseline only inserts the body. Target: ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from benchmarks.common import pg_admin, write_result
from benchmarks.procs import ROOT, hub_process, wait_ready
from channels.twilio_sms.testing.fake_api import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN
from channels.twilio_sms.testing.simulator import signed_inbound
from contract.testing import free_port

WARMUP = 200


def requests_for(base: str, n: int, customers: int) -> list[tuple[bytes, dict[str, str]]]:
    return [
        signed_inbound(
            base,
            DEMO_AUTH_TOKEN,
            DEMO_ACCOUNT_SID,
            from_=f"+1202555{i % customers:04d}",
            to="+14155550100",
            body=f"benchmark message {i}",
        )
        for i in range(n)
    ]


async def blast(url: str, reqs: list[tuple[bytes, dict[str, str]]], concurrency: int) -> float:
    """Send every request with ``concurrency`` in flight; returns requests per second."""
    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for r in reqs:
        queue.put_nowait(r)
    failures = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while not queue.empty():
            body, headers = queue.get_nowait()
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    failures += 1

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{failures} requests failed")
    return len(reqs) / elapsed


@asynccontextmanager
async def baseline_process(database_url: str | None = None) -> AsyncIterator[str]:
    """The bare one-row handler on its own fresh database (same engine settings)."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        database = database_url or f"sqlite+aiosqlite:///{tmp}/baseline.db"
        cmd = [sys.executable, "-m", "benchmarks.baseline_app", database, str(port)]
        proc = subprocess.Popen(cmd, env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(f"{base}/readyz")
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@asynccontextmanager
async def databases(kind: str, admin_url: str) -> AsyncIterator[tuple[str | None, str | None]]:
    """The hub's and the baseline's database URLs: None for fresh SQLite files, or two fresh
    PostgreSQL databases on the server of ``admin_url``, dropped afterwards."""
    if kind == "sqlite":
        yield None, None
        return
    stamp = f"{os.getpid()}_{int(time.time())}"
    names = (f"bench_ingest_hub_{stamp}", f"bench_ingest_base_{stamp}")
    root = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    for name in names:
        await pg_admin(f'CREATE DATABASE "{name}"', admin_url)
    try:
        yield f"{root}/{names[0]}", f"{root}/{names[1]}"
    finally:
        for name in names:
            await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin_url)


async def run(
    n: int,
    concurrency: int,
    customers: int,
    rounds: int,
    database: str = "sqlite",
    admin_url: str = "",
) -> dict[str, object]:
    """Both servers run side by side; rounds alternate between them so drift in the
    machine's load (it is shared) hits both alike. Rates are medians over the rounds."""
    env = {
        "HUB_TWILIO_ACCOUNT_SID": DEMO_ACCOUNT_SID,
        "HUB_TWILIO_AUTH_TOKEN": DEMO_AUTH_TOKEN,
        "HUB_TWILIO_API_BASE": "http://127.0.0.1:9",
    }
    per_round = max(1, n // rounds)
    rates: dict[str, list[float]] = {"hub": [], "baseline": []}
    async with (
        databases(database, admin_url) as (hub_db, base_db),
        hub_process(env, hub_db) as hub,
        baseline_process(base_db) as baseline,
    ):
        bases = {"hub": hub, "baseline": baseline}
        reqs = {
            name: requests_for(base, WARMUP + per_round * rounds, customers)
            for name, base in bases.items()
        }
        for name, base in bases.items():
            await blast(f"{base}/webhooks/twilio/messaging", reqs[name][:WARMUP], concurrency)
        for i in range(rounds):
            chunk = slice(WARMUP + i * per_round, WARMUP + (i + 1) * per_round)
            for name, base in bases.items():
                url = f"{base}/webhooks/twilio/messaging"
                rates[name].append(await blast(url, reqs[name][chunk], concurrency))
    hub_rate = statistics.median(rates["hub"])
    base_rate = statistics.median(rates["baseline"])
    return {
        "requests": per_round * rounds,
        "rounds": rounds,
        "concurrency": concurrency,
        "customers": customers,
        "database": (
            "sqlite (fresh file each, WAL)"
            if database == "sqlite"
            else "postgresql (fresh database each, same server)"
        ),
        "hub_per_s": round(hub_rate, 1),
        "baseline_per_s": round(base_rate, 1),
        "hub_rounds_per_s": [round(r, 1) for r in rates["hub"]],
        "baseline_rounds_per_s": [round(r, 1) for r in rates["baseline"]],
        "ratio": round(hub_rate / base_rate, 3),
        "target": "ratio >= 1.0" if database == "sqlite" else "ratio >= 0.8",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub bench ingest", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql",
        help="which databases, in order (results: ingest.json, ingest_postgresql.json)",
    )
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("HUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL database to create the two throwaway databases from",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for database in args.databases.split(","):
        result = asyncio.run(
            run(
                args.requests,
                args.concurrency,
                args.customers,
                args.rounds,
                database,
                args.admin_url,
            )
        )
        path = write_result("ingest" if database == "sqlite" else f"ingest_{database}", result)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(
                f"{database}: hub {result['hub_per_s']}/s vs bare handler "
                f"{result['baseline_per_s']}/s: ratio {result['ratio']} "
                f"(target {result['target']}); written to {path}"
            )
    return 0
