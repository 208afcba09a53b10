"""Ingest benchmark: signed Twilio SMS webhooks per second, hub vs a bare one-row handler.

Both servers run as one process each on the same kind of database (a fresh SQLite file by
default); the same load generator (this process) sends N requests with C in flight to each.
The hub's figure includes signature check, parsing, identity, threading, storing, events,
routing and fan-out; the baseline only inserts the body. Target: ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

import aiohttp

from benchmarks.common import write_result
from benchmarks.procs import ROOT, free_port, hub_process, wait_ready
from channels.twilio_sms.fake_api import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN
from channels.twilio_sms.simulator import signed_inbound


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


async def run(n: int, concurrency: int, customers: int) -> dict[str, object]:
    env = {
        "HUB_TWILIO_ACCOUNT_SID": DEMO_ACCOUNT_SID,
        "HUB_TWILIO_AUTH_TOKEN": DEMO_AUTH_TOKEN,
        "HUB_TWILIO_API_BASE": "http://127.0.0.1:9",
    }
    async with hub_process(env) as base:
        reqs = requests_for(base, n + 200, customers)
        await blast(f"{base}/webhooks/twilio/messaging", reqs[:200], concurrency)  # warm-up
        hub_rate = await blast(f"{base}/webhooks/twilio/messaging", reqs[200:], concurrency)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env2 = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.baseline_app",
                f"sqlite+aiosqlite:///{tmp}/baseline.db",
                str(port),
            ],
            env=env2,
        )
        try:
            base2 = f"http://127.0.0.1:{port}"
            await wait_ready(f"{base2}/readyz")
            reqs2 = requests_for(base2, n + 200, customers)
            await blast(f"{base2}/webhooks/twilio/messaging", reqs2[:200], concurrency)
            base_rate = await blast(f"{base2}/webhooks/twilio/messaging", reqs2[200:], concurrency)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    return {
        "requests": n,
        "concurrency": concurrency,
        "customers": customers,
        "database": "sqlite (fresh file, WAL)",
        "hub_per_s": round(hub_rate, 1),
        "baseline_per_s": round(base_rate, 1),
        "ratio": round(hub_rate / base_rate, 3),
        "target": "ratio >= 0.5",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub bench ingest", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.requests, args.concurrency, args.customers))
    path = write_result("ingest", result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"hub {result['hub_per_s']}/s vs bare handler {result['baseline_per_s']}/s: "
            f"ratio {result['ratio']} (target >= 0.5); written to {path}"
        )
    return 0
