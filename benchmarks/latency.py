"""Latency benchmark: inbound message -> frame on the assigned agent's console websocket.

The hub runs as one process on a fresh SQLite database. This process logs in N agents,
connects their ``/ws/agent`` websockets, gives every agent one assigned conversation, then
sends inbound messages at a fixed rate through the API channel: most into the agents'
conversations, each timed from the moment its request is sent to the moment the
``message.received`` frame carrying it arrives on the assigned agent's socket (frames that
never arrive are counted as lost); a share from new customers, whose conversations queue
and give the floor something to show. The hub's event-loop lag and GC pauses over the phase
come from its ``/metrics``.

With ``--supervisors S`` there are three phases: without supervisors, with S supervisor
dashboards on ``/ws/supervisor``, and without again; the supervisors' cost is the middle
phase's p99 against the two around it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import statistics
import sys
import time
from typing import Any

import aiohttp

from benchmarks.common import pause_counts, pause_delta, percentile, summary, write_result
from benchmarks.procs import hub_process

AUTH = {"Authorization": "Bearer bench-token"}
PHASES = ("without_supervisors", "with_supervisors", "without_again")
PASSWORD = "bench-password"  # noqa: S105 - throwaway accounts of a throwaway database


class AgentSocket:
    """One connected console; records when each tagged message arrives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.arrivals: dict[str, float] = {}
        self.offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.ids = itertools.count()
        self.frames = 0

    async def reader(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            kind = frame["type"]
            if kind == "event":
                self.frames += 1
                data = frame["data"]
                if data["type"] == "message.received":
                    text = data["payload"].get("text", "")
                    if text.startswith("lat:"):
                        self.arrivals[text] = time.perf_counter()
                elif data["type"] == "offer.created":
                    self.offers.put_nowait(data)
            elif kind in ("ack", "error"):
                fut = self.acks.pop(frame["data"]["client_msg_id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(frame)

    async def cmd(self, name: str, **args: Any) -> dict[str, Any]:
        cmid = f"b{next(self.ids)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.acks[cmid] = fut
        await self.ws.send_json(
            {"v": 1, "type": "cmd", "data": {"client_msg_id": cmid, "name": name, "args": args}}
        )
        return await fut


async def _connect(
    base: str, username: str, path: str
) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.post(
        f"{base}/login", json={"username": username, "password": PASSWORD}
    ) as resp:
        assert resp.status == 200, await resp.text()
    ws = await session.ws_connect(f"{base}{path}", max_msg_size=0)
    await ws.send_json({"v": 1, "type": "hello", "data": {"resume_from": None}})
    return session, ws


async def run(
    agents: int, supervisors: int, rate: float, messages: int, new_share: float
) -> dict[str, Any]:
    async with hub_process({"HUB_OFFER_TIMEOUT_S": "60", "HUB_OFFLINE_GRACE_S": "600"}) as base:
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        sem = asyncio.Semaphore(8)  # argon2 hashing is deliberately slow; do not swamp the hub

        async def create(name: str, role: str) -> None:
            async with (
                sem,
                http.post(
                    f"{base}/api/v1/agents",
                    json={"username": name, "password": PASSWORD, "role": role},
                    headers=AUTH,
                ) as resp,
            ):
                assert resp.status == 201, await resp.text()

        names = [f"a{i:04d}" for i in range(agents)]
        sups = [f"s{i:03d}" for i in range(supervisors)]
        await asyncio.gather(*(create(n, "agent") for n in names))
        await asyncio.gather(*(create(n, "supervisor") for n in sups))
        _progress(f"created {agents} agents and {supervisors} supervisors")

        readers: list[asyncio.Task[None]] = []

        async def login(name: str, path: str) -> tuple[aiohttp.ClientSession, AgentSocket]:
            async with sem:
                session, ws = await _connect(base, name, path)
            sock = AgentSocket(ws)
            # Read at once: an idle reader would leave the server's heartbeat pings unanswered.
            readers.append(asyncio.create_task(sock.reader()))
            return session, sock

        conns = await asyncio.gather(*(login(n, "/ws/agent") for n in names))
        sockets = [s for _, s in conns]
        _progress(f"connected {len(sockets)} consoles")
        # One conversation per agent: agents go available one at a time, so each takes one.
        owner: dict[int, AgentSocket] = {}
        for i, sock in enumerate(sockets):
            await sock.cmd("set_state", state="available")
            async with http.post(
                f"{base}/api/v1/inbound",
                json={"from": f"+1303555{i:04d}", "text": "start", "external_id": f"s{i}"},
                headers=AUTH,
            ) as resp:
                conv = (await resp.json())["conversation_id"]
            offer = await asyncio.wait_for(sock.offers.get(), 30)
            await sock.cmd("accept", offer_id=offer["payload"]["offer_id"])
            await sock.cmd("set_state", state="away", reason="benchmark")
            owner[conv] = sock
        conv_ids = list(owner)
        _progress(f"assigned {len(conv_ids)} conversations")
        counter = itertools.count()

        async def phase() -> dict[str, Any]:
            """``messages`` inbound at ``rate``: most into the agents' conversations (timed),
            ``new_share`` from new customers, whose conversations queue (floor events)."""
            sent: dict[str, tuple[float, AgentSocket]] = {}
            every = round(1 / new_share) if new_share > 0 else 0

            async def send(k: int) -> None:
                if every and k % every == every - 1:
                    body = {"from": f"+1404{k:07d}", "text": "new", "external_id": f"n{k}"}
                else:
                    i = k % len(conv_ids)
                    tag = f"lat:{k}"
                    sent[tag] = (time.perf_counter(), owner[conv_ids[i]])
                    body = {"from": f"+1303555{i:04d}", "text": tag, "external_id": f"m{k}"}
                async with http.post(f"{base}/api/v1/inbound", json=body, headers=AUTH) as resp:
                    await resp.read()

            interval = 1.0 / rate
            before = await pause_counts(http, base)
            _progress(f"phase: {messages} messages at {rate}/s")
            # The load generator's own loop lag: a late client inflates the figures too.
            lags: list[float] = []
            probe = asyncio.create_task(_lag_probe(lags))
            # A collection of the load generator's own heap (500 sockets and their sessions)
            # stopped its loop for ~110 ms: frames that arrived on time were read late and
            # counted late. Its heap is frozen and its collector off for the phase, which is
            # bounded; the hub's own collections are measured, not avoided (hub_pauses).
            gc.collect()
            gc.freeze()
            gc.disable()
            start = time.perf_counter()
            tasks = []
            try:
                for n in range(messages):
                    delay = start + n * interval - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(send(next(counter))))
                await asyncio.gather(*tasks)
                achieved = messages / (time.perf_counter() - start)
                probe.cancel()
                await asyncio.sleep(3)  # let the last frames arrive
            finally:
                gc.enable()
                gc.unfreeze()
            pauses = pause_delta(before, await pause_counts(http, base))
            latencies = []
            for tag, (t0, sock) in sent.items():
                t1 = sock.arrivals.get(tag)
                if t1 is not None:
                    latencies.append((t1 - t0) * 1000)
            stats = summary(latencies)
            return {
                "achieved_rate_per_s": round(achieved, 1),
                "timed": len(sent),
                "latency_ms": {k: round(v, 2) for k, v in stats.items()},
                "lost": len(sent) - len(latencies),
                "hub_pauses": pauses,
                "client_loop_lag_ms": {
                    "p99": round(percentile(lags, 99), 2) if lags else None,
                    "max": round(max(lags), 2) if lags else None,
                    "over_10ms": sum(lag > 10 for lag in lags),
                },
            }

        result: dict[str, Any] = {
            "agents": agents,
            "target_rate_per_s": rate,
            "messages_per_phase": messages,
            "new_customer_share": new_share,
            "database": "sqlite, one hub process",
            "target": "p99 <= 25 ms, lost == 0",
        }
        if not supervisors:
            result |= await phase()
        else:
            # Without, with, without again: the supervisors' cost is the with-phase against
            # the two around it, so drift in a shared machine's load counts against neither.
            first = await phase()
            sup_conns = await asyncio.gather(*(login(n, "/ws/supervisor") for n in sups))
            for _, sock in sup_conns:
                sock.arrivals.clear()
            frames_before = sum(sock.frames for _, sock in sup_conns)
            middle = await phase()
            middle["supervisor_event_frames"] = sum(s.frames for _, s in sup_conns) - frames_before
            for session, sock in sup_conns:
                await sock.ws.close()
                await session.close()
            last = await phase()
            around = statistics.median([first["latency_ms"]["p99"], last["latency_ms"]["p99"]])
            result |= {
                "supervisors": supervisors,
                "without_supervisors": first,
                "with_supervisors": middle,
                "without_again": last,
                "p99_ratio_with_to_without": round(middle["latency_ms"]["p99"] / around, 3),
                "target_supervisors": "p99 with / without <= 1.2",
            }
        for r in readers:
            r.cancel()
        for session, sock in conns:
            await sock.ws.close()
            await session.close()
        await http.close()
    return result


def _progress(text: str) -> None:
    """Setup takes minutes (argon2 hashes, one offer at a time): say where it is."""
    print(f"[latency] {text}", file=sys.stderr, flush=True)


async def _lag_probe(lags: list[float], every_s: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every_s
        await asyncio.sleep(every_s)
        lags.append(max(0.0, loop.time() - due) * 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub bench latency", description=__doc__)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument(
        "--supervisors",
        type=int,
        default=0,
        help="also measure with this many supervisor dashboards connected (three phases)",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="inbound messages per second")
    parser.add_argument("--messages", type=int, default=4000, help="messages per phase")
    parser.add_argument(
        "--new-share",
        type=float,
        default=0.1,
        help="share of messages from new customers (conversations that queue: floor events)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-save", action="store_true", help="do not write benchmarks/results/latency*.json"
    )
    args = parser.parse_args(argv)
    result = asyncio.run(
        run(args.agents, args.supervisors, args.rate, args.messages, args.new_share)
    )
    name = "latency" if not args.supervisors else f"latency_{args.supervisors}_supervisors"
    path = "nowhere (--no-save)" if args.no_save else str(write_result(name, result))
    if args.json:
        print(json.dumps(result, indent=2))
    elif not args.supervisors:
        lat = result["latency_ms"]
        print(
            f"{args.agents} agents, {result['achieved_rate_per_s']}/s: p50 {lat['median']} ms, "
            f"p99 {lat['p99']} ms, lost {result['lost']}; written to {path}"
        )
    else:
        p99 = [result[k]["latency_ms"]["p99"] for k in PHASES]
        print(
            f"{args.agents} agents, p99 without / with {args.supervisors} supervisors / without: "
            f"{p99[0]} / {p99[1]} / {p99[2]} ms, ratio {result['p99_ratio_with_to_without']} "
            f"(target <= 1.2); written to {path}"
        )
    return 0
