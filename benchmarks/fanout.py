"""Fan-out benchmark: one event to N console sockets, against a raw ``websockets.broadcast``.

The hub runs as one process on a fresh SQLite database. One supervisor logs in once and
opens N ``/ws/supervisor`` sockets (the whole floor's events reach each); every round posts
one inbound message from a new customer and times, from the request, until the
``conversation.created`` frame it causes is on every socket: the first and the last
arrival. The baseline is a bare
``websockets`` server in its own process holding N sockets of the same client: a control
message makes it ``websockets.broadcast`` a frame of the hub's size to all of them, timed
the same way. Both include what comes before the fan-out (the hub: the HTTP request,
identity, storage and the commit; the baseline: one control frame), so the hub's
first arrival is reported too, and the fan-out itself is the spread from the first socket
to the last: ``ratio_spread`` compares that with the broadcast's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from benchmarks.common import summary, write_result
from benchmarks.procs import ROOT, hub_process, stop
from contract.testing import free_port

AUTH = {"Authorization": "Bearer bench-token"}
PASSWORD = "bench-password"  # noqa: S105 - a throwaway account of a throwaway database


class Sockets:
    """N client sockets and when each saw each key (arrivals may come before the trigger's
    answer names the key)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}
        self.waiters: dict[str, asyncio.Event] = {}
        self.count = 0
        self.missed = 0  # arrivals that never came
        self.closed = 0  # sockets the server closed
        self.tasks: list[asyncio.Task[None]] = []

    def _event(self, key: str) -> asyncio.Event:
        return self.waiters.setdefault(key, asyncio.Event())

    def saw(self, key: str) -> None:
        got = self.arrivals.setdefault(key, [])
        got.append(time.perf_counter())
        if len(got) >= self.count:
            self._event(key).set()

    async def all_saw(self, key: str) -> list[float]:
        """Every socket's arrival; after 15 s, those that came (``missed`` counts the rest:
        a socket the server closed, e.g. as too slow a reader, never gets it)."""
        try:
            await asyncio.wait_for(self._event(key).wait(), 15)
        except TimeoutError:
            got = self.arrivals.get(key, [])
            self.missed += self.count - len(got)
            if not got:
                raise
        self.waiters.pop(key, None)
        return self.arrivals.pop(key)

    async def read(self, ws: aiohttp.ClientWebSocketResponse, key_of: Any) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                key = key_of(msg.data)
                if key:
                    self.saw(key)
        self.closed += 1


def _hub_key(raw: str) -> str | None:
    """A new conversation (a floor event every supervisor socket gets): its id."""
    if "conversation.created" not in raw:
        return None
    frame = json.loads(raw)
    data = frame.get("data") or {}
    if frame.get("type") != "event" or data.get("type") != "conversation.created":
        return None
    return f"c{data.get('conversation_id')}"


def _base_key(raw: str) -> str | None:
    return str(json.loads(raw).get("tag")) or None


async def _rounds(socks: Sockets, trigger: Any, rounds: int, label: str) -> dict[str, Any]:
    first: list[float] = []
    last: list[float] = []
    socks.missed = 0
    for i in range(rounds):
        t0 = time.perf_counter()
        key = await trigger(f"fan-{label}-{i}-{time.monotonic_ns()}")
        got = await socks.all_saw(key)
        first.append((min(got) - t0) * 1000)
        last.append((max(got) - t0) * 1000)
        await asyncio.sleep(0.05)
    return {"first_ms": first, "last_ms": last, "missed": socks.missed, "closed": socks.closed}


# ---------------------------------------------------------------------------- the hub
async def hub_side(sizes: list[int], rounds: int) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    async with hub_process({"HUB_OFFLINE_GRACE_S": "600"}) as base:
        http = aiohttp.ClientSession()
        async with http.post(
            f"{base}/api/v1/agents",
            json={"username": "sup", "password": PASSWORD, "role": "supervisor"},
            headers=AUTH,
        ) as resp:
            assert resp.status == 201, await resp.text()
        session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            connector=aiohttp.TCPConnector(limit=0),
        )
        async with session.post(
            f"{base}/login", json={"username": "sup", "password": PASSWORD}
        ) as resp:
            assert resp.status == 200, await resp.text()
        socks = Sockets()
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        counter = iter(range(10**9))

        async def trigger(tag: str) -> str:
            # A new customer each time: a new conversation, announced to the whole floor.
            body = {"from": f"+1303556{next(counter):04d}", "text": tag, "external_id": tag}
            async with http.post(f"{base}/api/v1/inbound", json=body, headers=AUTH) as r:
                assert r.status == 201, await r.text()
                return f"c{(await r.json())['conversation_id']}"

        try:
            for size in sizes:
                while len(sockets) < size:
                    batch = min(200, size - len(sockets))
                    new = await asyncio.gather(
                        *(
                            session.ws_connect(f"{base}/ws/supervisor", max_msg_size=0)
                            for _ in range(batch)
                        )
                    )
                    for ws in new:
                        await ws.send_json({"v": 1, "type": "hello", "data": {"resume_from": None}})
                        socks.tasks.append(asyncio.create_task(socks.read(ws, _hub_key)))
                    sockets.extend(new)
                socks.count = len(sockets)
                await asyncio.sleep(1.0)  # welcome snapshots delivered before timing
                out[size] = await _rounds(socks, trigger, rounds, f"h{size}")
                _progress(
                    f"hub: {size} sockets, last arrival median {_med(out[size]['last_ms'])} ms"
                )
        finally:
            for ws in sockets:
                await ws.close()
            for task in socks.tasks:
                task.cancel()
            await session.close()
            await http.close()
    return out


# ---------------------------------------------------------------------------- the baseline
BASELINE = """
import asyncio, json, sys
from websockets.asyncio.server import broadcast, serve

clients = set()
PAD = "x" * int(sys.argv[2])

async def handler(ws):
    if ws.request.path == "/control":
        async for message in ws:
            broadcast(clients, json.dumps({"type": "event", "tag": message, "pad": PAD}))
            await ws.send("sent")
        return
    clients.add(ws)
    try:
        await ws.wait_closed()
    finally:
        clients.discard(ws)

async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), max_size=None) as server:
        await server.serve_forever()

asyncio.run(main())
"""


@asynccontextmanager
async def baseline_process(frame_bytes: int) -> AsyncIterator[str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", BASELINE, str(port), str(frame_bytes)], env=env)
    try:
        url = f"ws://127.0.0.1:{port}"
        for _ in range(200):
            try:
                async with aiohttp.ClientSession() as s, s.ws_connect(url + "/probe"):
                    break
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
        yield url
    finally:
        stop(proc)


async def baseline_side(
    sizes: list[int], rounds: int, frame_bytes: int
) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    async with baseline_process(frame_bytes) as url:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        control = await session.ws_connect(url + "/control")
        socks = Sockets()
        sockets: list[aiohttp.ClientWebSocketResponse] = []

        async def trigger(tag: str) -> str:
            await control.send_str(tag)
            await control.receive()
            return tag

        try:
            for size in sizes:
                while len(sockets) < size:
                    batch = min(200, size - len(sockets))
                    new = await asyncio.gather(
                        *(session.ws_connect(url + "/client") for _ in range(batch))
                    )
                    for ws in new:
                        socks.tasks.append(asyncio.create_task(socks.read(ws, _base_key)))
                    sockets.extend(new)
                socks.count = len(sockets)
                await asyncio.sleep(0.5)
                out[size] = await _rounds(socks, trigger, rounds, f"b{size}")
                _progress(f"baseline: {size} sockets, last median {_med(out[size]['last_ms'])} ms")
        finally:
            for ws in sockets:
                await ws.close()
            await control.close()
            for task in socks.tasks:
                task.cancel()
            await session.close()
    return out


def _med(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else float("nan")


def _progress(text: str) -> None:
    print(f"[fanout] {text}", file=sys.stderr, flush=True)


def _raise_fd_limit(sockets: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * sockets + 512
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


async def run(sizes: list[int], rounds: int, frame_bytes: int) -> dict[str, Any]:
    hub = await hub_side(sizes, rounds)
    base = await baseline_side(sizes, rounds, frame_bytes)
    rows: list[dict[str, Any]] = []
    for size in sizes:
        h_last, b_last = _med(hub[size]["last_ms"]), _med(base[size]["last_ms"])
        h_spread = round(h_last - _med(hub[size]["first_ms"]), 2)
        b_spread = round(b_last - _med(base[size]["first_ms"]), 2)
        rows.append(
            {
                "sockets": size,
                "hub_first_ms": summary(hub[size]["first_ms"]),
                "hub_last_ms": summary(hub[size]["last_ms"]),
                "baseline_first_ms": summary(base[size]["first_ms"]),
                "baseline_last_ms": summary(base[size]["last_ms"]),
                "ratio_last_median": round(h_last / b_last, 3) if b_last else None,
                "hub_spread_ms": h_spread,
                "baseline_spread_ms": b_spread,
                "ratio_spread": round(h_spread / b_spread, 3) if b_spread > 0 else None,
                "hub_missed": hub[size]["missed"],
                "hub_sockets_closed": hub[size]["closed"],
                "baseline_missed": base[size]["missed"],
            }
        )
    return {
        "sizes": sizes,
        "rounds": rounds,
        "frame_bytes": frame_bytes,
        "database": "sqlite (fresh file, WAL), one hub process",
        "results": rows,
        "target": "fan-out (first to last socket) at 1,000 sockets within 1.3x of "
        "websockets.broadcast's",
        "note": "both sides' clients run in this driver process on the same cores",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub bench fanout", description=__doc__)
    parser.add_argument("--sizes", default="100,1000,3000", help="socket counts, ascending")
    parser.add_argument("--rounds", type=int, default=7, help="events timed per size")
    parser.add_argument("--frame-bytes", type=int, default=600, help="baseline frame padding")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    _raise_fd_limit(max(sizes))
    result = asyncio.run(run(sizes, args.rounds, args.frame_bytes))
    path = write_result("fanout", result)
    if args.json:
        print(json.dumps(result, indent=2))
    for row in result["results"]:
        print(
            f"{row['sockets']:>5} sockets: hub last {row['hub_last_ms']['median']:.1f} ms "
            f"(first {row['hub_first_ms']['median']:.1f}), broadcast last "
            f"{row['baseline_last_ms']['median']:.1f} ms; spread hub {row['hub_spread_ms']} vs "
            f"broadcast {row['baseline_spread_ms']} ms, ratio {row['ratio_spread']}"
        )
    print(f"written to {path}")
    return 0
