"""Latency benchmark: inbound message -> frame on the assigned agent's console websocket.

The hub runs as one process on a fresh SQLite database. This process logs in N agents,
connects their ``/ws/agent`` websockets (and optionally S supervisors on ``/ws/supervisor``),
gives every agent one assigned conversation, then sends inbound messages into random
conversations at a fixed rate through the API channel and times each from the moment its
request is sent to the moment the ``message.received`` frame carrying it arrives on the
assigned agent's socket. Frames that never arrive are counted as lost.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from typing import Any

import aiohttp

from benchmarks.common import pause_counts, pause_delta, summary, write_result
from benchmarks.procs import hub_process

AUTH = {"Authorization": "Bearer bench-token"}
PASSWORD = "bench-password"  # noqa: S105 - throwaway accounts of a throwaway database


class AgentSocket:
    """One connected console; records when each tagged message arrives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.arrivals: dict[str, float] = {}
        self.offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.ids = itertools.count()

    async def reader(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            kind = frame["type"]
            if kind == "event":
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


async def run(agents: int, supervisors: int, rate: float, messages: int) -> dict[str, Any]:
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

        readers: list[asyncio.Task[None]] = []

        async def login(name: str, path: str) -> tuple[aiohttp.ClientSession, AgentSocket]:
            async with sem:
                session, ws = await _connect(base, name, path)
            sock = AgentSocket(ws)
            # Read at once: an idle reader would leave the server's heartbeat pings unanswered.
            readers.append(asyncio.create_task(sock.reader()))
            return session, sock

        conns = await asyncio.gather(*(login(n, "/ws/agent") for n in names))
        sup_conns = await asyncio.gather(*(login(n, "/ws/supervisor") for n in sups))
        sockets = [s for _, s in conns]
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
        sent: dict[str, tuple[float, AgentSocket]] = {}
        interval = 1.0 / rate
        before = await pause_counts(http, base)
        start = time.perf_counter()

        async def send(k: int) -> None:
            i = k % len(conv_ids)
            tag = f"lat:{k}"
            sent[tag] = (time.perf_counter(), owner[conv_ids[i]])
            async with http.post(
                f"{base}/api/v1/inbound",
                json={"from": f"+1303555{i:04d}", "text": tag, "external_id": f"m{k}"},
                headers=AUTH,
            ) as resp:
                await resp.read()

        tasks = []
        for k in range(messages):
            target = start + k * interval
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(k)))
        await asyncio.gather(*tasks)
        achieved = messages / (time.perf_counter() - start)
        await asyncio.sleep(3)  # let the last frames arrive
        pauses = pause_delta(before, await pause_counts(http, base))
        latencies = []
        lost = 0
        for tag, (t0, sock) in sent.items():
            t1 = sock.arrivals.get(tag)
            if t1 is None:
                lost += 1
            else:
                latencies.append((t1 - t0) * 1000)
        for r in readers:
            r.cancel()
        for session, sock in [*conns, *sup_conns]:
            await sock.ws.close()
            await session.close()
        await http.close()
    stats = summary(latencies)
    return {
        "agents": agents,
        "supervisors": supervisors,
        "target_rate_per_s": rate,
        "achieved_rate_per_s": round(achieved, 1),
        "messages": messages,
        "latency_ms": {k: round(v, 2) if isinstance(v, float) else v for k, v in stats.items()},
        "lost": lost,
        "hub_pauses": pauses,
        "database": "sqlite, one hub process",
        "target": "p99 <= 25 ms, lost == 0",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub bench latency", description=__doc__)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--supervisors", type=int, default=0)
    parser.add_argument("--rate", type=float, default=200.0, help="inbound messages per second")
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.agents, args.supervisors, args.rate, args.messages))
    name = "latency" if not args.supervisors else f"latency_{args.supervisors}_supervisors"
    path = write_result(name, result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        lat = result["latency_ms"]
        print(
            f"{args.agents} agents, {result['achieved_rate_per_s']}/s: p50 {lat['median']} ms, "
            f"p99 {lat['p99']} ms, lost {result['lost']}; written to {path}"
        )
    return 0
