"""Web chat benchmark: N concurrent visitor sockets on one hub process, message round trip.

The hub runs as one process on a fresh SQLite database with one web chat site (origin
"self", identity off). This process opens N visitor websockets (``hello`` -> ``welcome``,
PROTOCOL.md) and keeps every one open for the whole run: they are the load, idle sockets
answering the server's heartbeats. Each visitor comes with a token of its own, minted
here in the protocol's token format: a hello with a well-formed token is a returning
visitor, so the per-address limit on new visitors (every socket comes from 127.0.0.1) does
not apply.

Then ``--messages`` timed round trips at ``--rate``: a random connected visitor sends a
``message`` with a unique ``client_msg_id``; timed from the send to its ``ack`` and to the
echo of the same message (the ``message`` frame the hub pushes to the visitor's tabs) on
the same socket. A message with no ack within 10 s is lost. No visitor is given more than
the protocol's 20 messages a minute. The hub's resident memory is read from
``/proc/<pid>/status`` before the sockets, with them, and after the round trips; its
event-loop lag and GC pauses over the round trips come from its ``/metrics``.

The baseline, in the same run and on the same machine: a bare aiohttp websocket app in a
process of its own that speaks the same frames (welcome, echo, ack) and stores nothing,
with the same N sockets and the same round trips. Its p99 is the denominator of the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from benchmarks.common import PauseCounts, pause_counts, pause_delta, percentile, write_result
from benchmarks.procs import ROOT, hub_process, stop, wait_ready
from channels.webchat.const import (
    HEARTBEAT_S,
    MAX_FRAME_BYTES,
    MESSAGES_PER_MIN,
    PATH_SOCKET,
    PROTOCOL_VERSION,
)
from contract.testing import free_port

SITE = "bench"
LOST_AFTER_S = 10.0
HELLO_TIMEOUT_S = 10.0
OPEN_CONCURRENCY = 50  # hellos in flight at once while the sockets are opened
SEED = 20_000
WEBCHAT = {"webchat": {"sites": {SITE: {"origins": ["self"], "identity": "off"}}}}
MiB = 1024 * 1024


# ---------------------------------------------------------------------------- the client
@dataclass
class Probe:
    """One timed message: when it was sent, acked and echoed (perf_counter seconds)."""

    sent: float
    ack: float | None = None
    echo: float | None = None


@dataclass
class Tracker:
    """Every timed message of a run, by client_msg_id; what the sockets read lands here."""

    probes: dict[str, Probe] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    done: int = 0  # probes with both ack and echo
    all_done: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    def frame(self, raw: str) -> None:
        now = time.perf_counter()
        frame = json.loads(raw)
        kind = frame.get("type")
        probe: Probe | None = None
        if kind == "ack":
            probe = self.probes.get(str(frame.get("client_msg_id")))
            if probe is not None and probe.ack is None:
                probe.ack = now
            else:
                probe = None
        elif kind == "message":
            text = str(frame.get("text", ""))
            if text.startswith("rt:"):
                probe = self.probes.get(text[3:])
                if probe is not None and probe.echo is None:
                    probe.echo = now
                else:
                    probe = None
        elif kind == "error":
            self.errors[str(frame.get("code"))] += 1
        if probe is not None and probe.ack is not None and probe.echo is not None:
            self.done += 1
            if self.done >= self.expected:
                self.all_done.set()


class VisitorSocket:
    """One visitor tab, leaner than ``ChatVisitor``: its reader only timestamps frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, tracker: Tracker) -> None:
        self.ws = ws
        self.tracker = tracker
        self.sent: deque[float] = deque()  # send times in the last minute (the rate limit)
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        # Read at once and always: an idle reader would leave the heartbeat pings unanswered.
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.tracker.frame(msg.data)

    def may_send(self, now: float) -> bool:
        while self.sent and now - self.sent[0] > 60.0:
            self.sent.popleft()
        return len(self.sent) < MESSAGES_PER_MIN - 1 and not self.ws.closed

    async def close(self) -> None:
        with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
            await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await self.reader


async def open_visitors(
    session: aiohttp.ClientSession, base: str, n: int, tracker: Tracker
) -> tuple[list[VisitorSocket], dict[str, Any]]:
    """Open ``n`` sockets, each with a token minted here; what it took."""
    url = base.replace("http", "ws", 1) + f"{PATH_SOCKET}?site={SITE}"
    sem = asyncio.Semaphore(OPEN_CONCURRENCY)
    hellos: list[float] = []
    refused: Counter[str] = Counter()

    async def one() -> VisitorSocket | None:
        token = secrets.token_urlsafe(32)  # 43 of [A-Za-z0-9_-]: a returning visitor
        async with sem:
            t0 = time.perf_counter()
            try:
                ws = await session.ws_connect(
                    url, headers={"Origin": base}, max_msg_size=MAX_FRAME_BYTES
                )
            except aiohttp.WSServerHandshakeError as err:
                refused[f"http_{err.status}"] += 1
                return None
            except (aiohttp.ClientError, OSError):
                refused["connect"] += 1
                return None
            try:
                await ws.send_json(
                    {"type": "hello", "v": PROTOCOL_VERSION, "token": token, "last_id": 0}
                )
                welcome = await ws.receive_json(timeout=HELLO_TIMEOUT_S)
            except (TimeoutError, TypeError, ValueError, aiohttp.ClientError):
                refused["no_welcome"] += 1
                await ws.close()
                return None
            if welcome.get("type") != "welcome" or welcome.get("token") != token:
                refused[str(welcome.get("code") or welcome.get("type"))] += 1
                await ws.close()
                return None
            hellos.append((time.perf_counter() - t0) * 1000)
        return VisitorSocket(ws, tracker)

    start = time.perf_counter()
    opened = [v for v in await asyncio.gather(*(one() for _ in range(n))) if v is not None]
    took = time.perf_counter() - start
    return opened, {
        "opened": len(opened),
        "refused": sum(refused.values()),
        "refused_by": dict(refused),
        "seconds": round(took, 2),
        "per_s": round(len(opened) / took, 1) if took else None,
        "hello_to_welcome_ms": stats(hellos),
    }


async def round_trips(
    visitors: list[VisitorSocket], tracker: Tracker, messages: int, rate: float, tag: str
) -> dict[str, Any]:
    """``messages`` timed messages at ``rate`` from random visitors; their figures."""
    rng = random.Random(SEED)
    tracker.expected = messages
    interval = 1.0 / rate
    lags: list[float] = []
    probe_task = asyncio.create_task(_lag_probe(lags))
    skipped_full = 0
    # A collection of this process's heap (thousands of sockets) would stop its loop and
    # count frames that arrived on time as late: frozen and off for the bounded phase.
    gc.collect()
    gc.freeze()
    gc.disable()
    start = time.perf_counter()
    last_sent = start
    try:
        for k in range(messages):
            delay = start + k * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.perf_counter()
            visitor = rng.choice(visitors)
            tries = 0
            while not visitor.may_send(now):
                skipped_full += 1
                tries += 1
                if tries > 10 * len(visitors):
                    raise RuntimeError("no visitor may send: too few sockets for this rate")
                visitor = rng.choice(visitors)
            cid = f"{tag}{k}"
            visitor.sent.append(now)
            last_sent = time.perf_counter()
            tracker.probes[cid] = Probe(sent=last_sent)
            await visitor.ws.send_json(
                {"type": "message", "client_msg_id": cid, "text": f"rt:{cid}"}
            )
        achieved = messages / (time.perf_counter() - start)
        with contextlib.suppress(TimeoutError):
            remaining = last_sent + LOST_AFTER_S - time.perf_counter()
            await asyncio.wait_for(tracker.all_done.wait(), max(remaining, 0.0))
        probe_task.cancel()
    finally:
        gc.enable()
        gc.unfreeze()
    acks, echoes = [], []
    by_second: dict[int, list[float]] = {}
    for p in tracker.probes.values():
        if p.ack is not None and p.ack - p.sent <= LOST_AFTER_S:
            acks.append((p.ack - p.sent) * 1000)
            by_second.setdefault(int(p.sent - start), []).append(acks[-1])
        if p.echo is not None and p.echo - p.sent <= LOST_AFTER_S:
            echoes.append((p.echo - p.sent) * 1000)
    return {
        "achieved_rate_per_s": round(achieved, 1),
        "timed": len(tracker.probes),
        "acked": len(acks),
        "lost": len(tracker.probes) - len(acks),
        "echoed": len(echoes),
        "echo_lost": len(tracker.probes) - len(echoes),
        "errors": dict(tracker.errors),
        "ack_ms": stats(acks),
        "echo_ms": stats(echoes),
        # Per second of the phase, by send time: [median, max] ack ms (where the tail is).
        "ack_ms_by_second": [
            [round(statistics.median(v), 1), round(max(v), 1)] for _, v in sorted(by_second.items())
        ],
        "visitors_used": sum(1 for v in visitors if v.sent),
        "picks_over_rate_limit": skipped_full,
        "client_loop_lag_ms": {
            "p99": round(percentile(lags, 99), 2) if lags else None,
            "max": round(max(lags), 2) if lags else None,
            "over_10ms": sum(lag > 10 for lag in lags),
        },
    }


async def measure(
    base: str,
    visitors: int,
    messages: int,
    rate: float,
    tag: str,
    pid: int | None,
    metrics: bool,
) -> dict[str, Any]:
    """Open the sockets on one server, time the round trips, close everything."""
    tracker = Tracker()
    connector = aiohttp.TCPConnector(limit=0)  # a websocket holds its connection
    session = aiohttp.ClientSession(connector=connector)
    opened: list[VisitorSocket] = []
    try:
        rss_before = rss_bytes(pid)
        opened, connect = await open_visitors(session, base, visitors, tracker)
        _progress(f"{tag}: {connect['opened']} sockets open in {connect['seconds']} s")
        await asyncio.sleep(1.0)  # let the hellos' garbage settle before reading memory
        rss_open = rss_bytes(pid)
        before: PauseCounts | None = await pause_counts(session, base) if metrics else None
        _progress(f"{tag}: {messages} messages at {rate}/s")
        result = await round_trips(opened, tracker, messages, rate, tag)
        if before is not None:
            result["hub_pauses"] = pause_delta(before, await pause_counts(session, base))
        rss_after = rss_bytes(pid)
        result = {"connect": connect, **result}
        result["open_at_end"] = sum(1 for v in opened if not v.ws.closed)
        result["rss_mib"] = {
            "before_sockets": _mib(rss_before),
            "with_sockets": _mib(rss_open),
            "after_round_trips": _mib(rss_after),
        }
        if rss_before is not None and rss_open is not None and opened:
            result["rss_kib_per_socket"] = round((rss_open - rss_before) / len(opened) / 1024, 1)
        return result
    finally:
        for i in range(0, len(opened), 200):
            await asyncio.gather(*(v.close() for v in opened[i : i + 200]))
        await session.close()


# ---------------------------------------------------------------------------- the baseline
def baseline_app() -> web.Application:
    """The same frames as the hub's visitor socket, nothing stored, nothing checked but
    the frame's type: what a websocket round trip costs aiohttp itself."""
    ids = itertools.count(1)

    async def socket(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_FRAME_BYTES)
        await ws.prepare(request)
        first = await ws.receive(timeout=HELLO_TIMEOUT_S)
        if first.type != aiohttp.WSMsgType.TEXT:
            return ws
        hello = json.loads(first.data)
        await ws.send_json(
            {
                "type": "welcome",
                "v": PROTOCOL_VERSION,
                "token": hello.get("token"),
                "visitor": {"name": "", "email": "", "verified": False},
                "config": {},
                "status": {"type": "status", "state": "new"},
                "messages": [],
            }
        )
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if frame.get("type") != "message":
                continue
            msg_id = next(ids)
            await ws.send_json(
                {
                    "type": "message",
                    "id": msg_id,
                    "direction": "in",
                    "author": "",
                    "text": frame.get("text", ""),
                    "at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                    "attachments": [],
                }
            )
            await ws.send_json(
                {"type": "ack", "client_msg_id": frame.get("client_msg_id"), "id": msg_id}
            )
        return ws

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get(PATH_SOCKET, socket)
    app.router.add_get("/readyz", ready)
    return app


def serve_baseline(port: int) -> None:
    web.run_app(baseline_app(), host="127.0.0.1", port=port, print=None, access_log=None)


@asynccontextmanager
async def baseline_process() -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = (
        "import sys; from benchmarks.chat import serve_baseline; serve_baseline(int(sys.argv[1]))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(port)], env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(f"{base}/readyz")
        yield base, proc.pid
    finally:
        stop(proc)


# ---------------------------------------------------------------------------- process facts
def hub_pid() -> int | None:
    """The ``hub serve`` child of this process (``hub_process`` yields only its URL)."""
    for children in Path("/proc/self/task").glob("*/children"):
        try:
            pids = children.read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"server.cli" in cmdline and b"serve" in cmdline:
                return int(pid)
    return None


def rss_bytes(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / MiB, 1)


def _raise_fd_limit(sockets: int) -> None:
    """Each socket is a descriptor here and one in the server (which inherits this limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = sockets + 512
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def stats(values: list[float]) -> dict[str, float | int | None]:
    def r(x: float) -> float | None:
        return round(x, 2) if values else None

    return {
        "n": len(values),
        "median": r(statistics.median(values)) if values else None,
        "p90": r(percentile(values, 90)),
        "p99": r(percentile(values, 99)),
        "max": r(max(values)) if values else None,
        "mean": r(statistics.fmean(values)) if values else None,
    }


async def _lag_probe(lags: list[float], every_s: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every_s
        await asyncio.sleep(every_s)
        lags.append(max(0.0, loop.time() - due) * 1000)


def _progress(text: str) -> None:
    print(f"[chat] {text}", file=sys.stderr, flush=True)


def show(s: dict[str, Any]) -> str:
    return f"median {s['median']} / p90 {s['p90']} / p99 {s['p99']} / max {s['max']} ms"


def _ratio(hub: Any, base: Any) -> float | None:
    if not isinstance(hub, float | int) or not isinstance(base, float | int) or not base:
        return None
    return round(hub / base, 2)


# ---------------------------------------------------------------------------- the suite
async def run(visitors: int, messages: int, rate: float) -> dict[str, Any]:
    _raise_fd_limit(visitors)
    started = time.perf_counter()
    env = {"HUB_CHANNELS": json.dumps(WEBCHAT)}
    async with hub_process(env) as base:
        pid = hub_pid()
        hub = await measure(base, visitors, messages, rate, "h", pid, metrics=True)
    async with baseline_process() as (base, pid):
        baseline = await measure(base, visitors, messages, rate, "b", pid, metrics=False)
    ratios: dict[str, float | None] = {}
    for key in ("ack_ms", "echo_ms"):
        for q in ("median", "p99"):
            ratios[f"{key[:-3]}_{q}"] = _ratio(hub[key][q], baseline[key][q])
    return {
        "visitors": visitors,
        "target_rate_per_s": rate,
        "messages": messages,
        "database": "sqlite, one hub process",
        "target": "2,000 visitor sockets on one process, round-trip p99 reported",
        "hub": hub,
        "baseline": baseline,
        "ratio_hub_to_baseline": ratios,
        "runtime_s": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub bench chat", description=__doc__)
    parser.add_argument("--visitors", type=int, default=2000, help="visitor sockets kept open")
    parser.add_argument("--messages", type=int, default=2000, help="timed round trips")
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-save", action="store_true", help="do not write benchmarks/results/chat.json"
    )
    args = parser.parse_args(argv)
    if args.visitors < 1 or args.messages < 1 or args.rate <= 0:
        parser.error("--visitors, --messages and --rate must be positive")
    result = asyncio.run(run(args.visitors, args.messages, args.rate))
    path = "nowhere (--no-save)" if args.no_save else str(write_result("chat", result))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        hub, bl = result["hub"], result["baseline"]
        print(
            f"{hub['connect']['opened']} visitor sockets ({hub['connect']['refused']} refused), "
            f"{hub['achieved_rate_per_s']}/s, lost {hub['lost']}\n"
            f"  hub ack:      {show(hub['ack_ms'])}\n"
            f"  baseline ack: {show(bl['ack_ms'])}\n"
            f"  ack p99 ratio {result['ratio_hub_to_baseline']['ack_p99']}, "
            f"hub RSS {hub['rss_mib']['with_sockets']} MiB with the sockets; written to {path}"
        )
    return 0
