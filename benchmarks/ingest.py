"""Ingest benchmark: signed Twilio SMS webhooks per second, hub vs a bare one-row handler.

Both servers run as one process each, side by side, on the same kind of database (a fresh
SQLite file each, opened by the same engine factory); the same load generator (this process)
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

from benchmarks.common import write_result
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
async def baseline_process() -> AsyncIterator[str]:
    """The bare one-row handler on its own fresh SQLite file (same engine settings)."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        database = f"sqlite+aiosqlite:///{tmp}/baseline.db"
        cmd = [sys.executable, "-m", "benchmarks.baseline_app", database, str(port)]
        proc = subprocess.Popen(cmd, env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(f"{base}/readyz")
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=20)


async def run(n: int, concurrency: int, customers: int, rounds: int) -> dict[str, object]:
    """Both servers run side by side; rounds alternate between them so drift in the
    machine's load (it is shared) hits both alike. Rates are medians over the rounds."""
    env = {
        "HUB_TWILIO_ACCOUNT_SID": DEMO_ACCOUNT_SID,
        "HUB_TWILIO_AUTH_TOKEN": DEMO_AUTH_TOKEN,
        "HUB_TWILIO_API_BASE": "http://127.0.0.1:9",
    }
    per_round = max(1, n // rounds)
    rates: dict[str, list[float]] = {"hub": [], "baseline": []}
    async with hub_process(env) as hub, baseline_process() as baseline:
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
        "database": "sqlite (fresh file each, WAL)",
        "hub_per_s": round(hub_rate, 1),
        "baseline_per_s": round(base_rate, 1),
        "hub_rounds_per_s": [round(r, 1) for r in rates["hub"]],
        "baseline_rounds_per_s": [round(r, 1) for r in rates["baseline"]],
        "ratio": round(hub_rate / base_rate, 3),
        "target": "ratio >= 0.5",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub bench ingest", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.requests, args.concurrency, args.customers, args.rounds))
    path = write_result("ingest", result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"hub {result['hub_per_s']}/s vs bare handler {result['baseline_per_s']}/s: "
            f"ratio {result['ratio']} (target >= 0.5); written to {path}"
        )
    return 0
