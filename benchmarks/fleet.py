"""Several real ``hub serve`` processes on one PostgreSQL + Redis, driven like a floor.

``Fleet`` starts N hub processes on a database of their own (dropped afterwards), the fake
Twilio and the API channel's callback receiver they send to, and can kill, restart and read
them. ``FloorRun`` sends signed Twilio SMS webhooks and API-channel contacts (a fifth) spread
over the processes (with provider retries: the same MessageSid or external_id again, to
another process, and every request without an answer sent again, as Twilio does) while
agent bots on console websockets accept offers, reply and close; a bot whose process dies
reconnects to another and resumes from its last seq. ``check_invariants`` then reads the
database, the bots' received frames and the fake's deliveries:

- every acknowledged message is stored exactly once;
- no conversation is assigned to an agent while another still holds it;
- every event an agent's console must show reached it (resume included);
- every reply was delivered exactly once: to the fake Twilio, or under one Idempotency-Key
  to the API callback.

Used by ``tests/cluster`` (the chaos scenario) and ``hub bench scale`` (throughput with 1,
2 and 3 processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from channels.twilio_sms.const import PATH_INBOUND
from channels.twilio_sms.testing.fake_api import FakeTwilio, start_fake_twilio
from channels.twilio_sms.testing.simulator import signed_inbound
from contract.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("HUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ACCOUNT_SID = "AC" + "f1ee7" * 6 + "00"
AUTH_TOKEN = "fleet-auth-token"  # noqa: S105 - the fake provider's, on 127.0.0.1
API_TOKEN = "fleet-api-token"  # noqa: S105 - a throwaway hub's
PUBLIC_URL = "http://hub.fleet.test"  # what the load balancer is called; signatures use it
OUR_NUMBER = "+14155550100"
PASSWORD = "fleet-password-1"  # noqa: S105 - the bots' on a throwaway database


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_plain(PG_ADMIN))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _require_success(done: subprocess.CompletedProcess[bytes]) -> None:
    if done.returncode != 0:
        raise RuntimeError(f"{done.args} failed: {done.stderr.decode()[-2000:]}")


@dataclass
class HubProcess:
    index: int
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Fleet:
    """N hub processes (role ``all``) sharing a fresh PostgreSQL database and Redis."""

    size: int = 3
    env_extra: dict[str, str] = field(default_factory=dict)
    processes: list[HubProcess] = field(default_factory=list)
    twilio: FakeTwilio | None = None
    database_url: str = ""
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fleet-")))

    def env(self, process: HubProcess) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        assert self.twilio is not None
        env.update(
            PYTHONPATH=str(ROOT),
            HUB_DATABASE_URL=self.database_url,
            HUB_REDIS_URL=REDIS,
            HUB_REDIS_PREFIX=f"fleet:{self.database_url.rsplit('/', 1)[-1]}",
            HUB_API_TOKEN=API_TOKEN,
            HUB_HTTP_HOST="127.0.0.1",
            HUB_HTTP_PORT=str(process.port),
            HUB_PUBLIC_URL=PUBLIC_URL,
            HUB_PROCESS_NAME=f"hub{process.index}",
            HUB_SMTP_ENABLED="false",
            HUB_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            HUB_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            HUB_TWILIO_API_BASE=self.twilio_base,
            HUB_TWILIO_FROM=OUR_NUMBER,
            HUB_API_CALLBACK_URL=self.sink_url,
            HUB_LOG_LEVEL="WARNING",
            HUB_LAST_AGENT_WAIT_S="0",
            HUB_WRAP_UP_S="0",
            **self.env_extra,
        )
        return env

    twilio_base: str = ""
    # What the API channel's callback received: (Idempotency-Key, reply text) per POST.
    api_posts: list[tuple[str, str]] = field(default_factory=list)
    _sink: web.AppRunner | None = None
    sink_url: str = ""

    async def _start_sink(self) -> None:
        async def receive(request: web.Request) -> web.Response:
            body = await request.json()
            self.api_posts.append((request.headers.get("Idempotency-Key", ""), body["text"]))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/callback", receive)
        self._sink = web.AppRunner(app, access_log=None)
        await self._sink.setup()
        port = free_port()
        await web.TCPSite(self._sink, "127.0.0.1", port).start()
        self.sink_url = f"http://127.0.0.1:{port}/callback"

    async def __aenter__(self) -> Fleet:
        name = f"fleet_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        await _admin(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        self.database_url = f"{base}/{name}"
        try:
            # Status callbacks go to the first process (the load balancer's URL is not real).
            self.processes = [
                HubProcess(i, free_port(), self.workdir / f"hub{i}.log") for i in range(self.size)
            ]
            await self._start_sink()
            self.twilio, self.twilio_base = await start_fake_twilio(
                account_sid=ACCOUNT_SID,
                auth_token=AUTH_TOKEN,
                callback_base=self.processes[0].url,
            )
            migrate = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "server.cli", "migrate"],
                env=self.env(self.processes[0]),
                capture_output=True,
                timeout=180,
                check=False,
            )
            _require_success(migrate)
            for process in self.processes:
                self.start(process.index)
            await asyncio.gather(*(self.wait_ready(p.index) for p in self.processes))
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self, index: int) -> None:
        process = self.processes[index]
        with process.log.open("ab") as log:
            process.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve"],
                env=self.env(process),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self, index: int) -> None:
        """SIGKILL: no drain, no lease release, sends in flight lost mid-way."""
        process = self.processes[index]
        if process.proc is not None:
            process.proc.send_signal(signal.SIGKILL)
            process.proc.wait(timeout=10)
        alive = [p for p in self.processes if p.alive]
        if self.twilio is not None and alive:
            # Twilio's status callbacks go through the load balancer: to a process alive.
            self.twilio.callback_base = alive[0].url

    async def wait_ready(self, index: int, limit_s: float = 60.0) -> None:
        url = self.processes[index].url + "/readyz"
        async with aiohttp.ClientSession() as session, asyncio.timeout(limit_s):
            while True:
                if not self.processes[index].alive:
                    raise RuntimeError(f"hub{index} exited:\n{self.log_tail(index)}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(url) as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)

    async def ready(self, index: int) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.processes[index].url + "/readyz") as resp,
        ):
            body: dict[str, Any] = await resp.json()
            return body

    async def leader(self) -> int | None:
        for process in self.processes:
            if process.alive:
                with contextlib.suppress(aiohttp.ClientError):
                    if (await self.ready(process.index))["router"] == "leader":
                        return process.index
        return None

    async def sql(self, query: str, *args: Any) -> list[Any]:
        import asyncpg

        conn = await asyncpg.connect(_plain(self.database_url))
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def steal_lease(self) -> None:
        """Take the router lease away from its holder (it finds out at its next renewal)."""
        await self.sql(
            "UPDATE leases SET holder = 'thief', token = token + 1, expires_at = now()"
            " WHERE name = 'router'"
        )

    def log_tail(self, index: int, lines: int = 40) -> str:
        text = self.processes[index].log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def logs(self) -> str:
        return "\n".join(
            f"--- hub{p.index} ---\n{self.log_tail(p.index)}"
            for p in self.processes
            if p.log.exists()
        )

    async def close(self) -> None:
        for process in self.processes:
            if process.alive and process.proc is not None:
                process.proc.send_signal(signal.SIGTERM)
        for process in self.processes:
            if process.proc is not None:
                try:
                    await asyncio.to_thread(process.proc.wait, 30)
                except subprocess.TimeoutExpired:
                    process.proc.kill()
                    process.proc.wait()
        if self.twilio is not None:
            await self.twilio.close()
        if self._sink is not None:
            await self._sink.cleanup()
        if self.database_url:
            name = self.database_url.rsplit("/", 1)[-1]
            with contextlib.suppress(Exception):
                await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------------------- agent bots


@dataclass
class AgentBot:
    """An agent at a console: accepts every offer, replies once per assignment, closes.

    Connects to one process; when that process dies it reconnects to the next one with
    ``resume_from`` = the last seq it processed."""

    username: str
    agent_id: int
    urls: list[str]
    start_at: int
    close_after_reply: bool = True
    received: set[int] = field(default_factory=set)
    last_seq: int | None = None
    reconnects: int = 0
    replies: list[str] = field(default_factory=list)
    offer_seen_at: dict[int, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _replied: set[tuple[int, int]] = field(default_factory=set)
    _pending: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        which = self.start_at
        while not stop.is_set():
            url = self.urls[which % len(self.urls)]
            try:
                await self._session(url, stop)
            except (aiohttp.ClientError, ConnectionError, TimeoutError, RuntimeError) as err:
                self.errors[type(err).__name__] += 1
            if stop.is_set():
                return
            which += 1
            self.reconnects += 1
            await asyncio.sleep(0.2)

    async def _session(self, url: str, stop: asyncio.Event) -> None:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.post(
                f"{url}/login", json={"username": self.username, "password": PASSWORD}
            ) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"login {resp.status}")
            async with http.ws_connect(f"{url}/ws/agent", heartbeat=5) as ws:
                await ws.send_json(
                    {"v": 1, "type": "hello", "data": {"resume_from": self.last_seq}}
                )
                welcome = await ws.receive_json(timeout=10)
                if self.last_seq is None:
                    self.last_seq = int(welcome["data"]["head"])
                await self._cmd(ws, "set_state", state="available")
                for cmd in list(self._pending.values()):
                    await ws.send_json(cmd)  # unanswered before the drop: same client_msg_id
                reader = asyncio.create_task(self._read(ws))
                stopper = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if reader in done:
                    reader.result()  # re-raise what ended it
                else:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await reader
                    await ws.close()

    async def _cmd(self, ws: aiohttp.ClientWebSocketResponse, name: str, **args: Any) -> None:
        cmid = f"{self.username}-{next(self._ids)}"
        frame = {"v": 1, "type": "cmd", "data": {"client_msg_id": cmid, "name": name, "args": args}}
        self._pending[cmid] = frame
        await ws.send_json(frame)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            f = json.loads(msg.data)
            kind = f.get("type")
            if kind in ("ack", "error"):
                self._pending.pop(f["data"].get("client_msg_id", ""), None)
                if kind == "error":
                    self.errors[f"cmd:{f['data'].get('code')}"] += 1
                continue
            if kind != "event":
                continue
            seq = int(f["seq"])
            self.received.add(seq)
            self.last_seq = seq
            data = f["data"]
            if data.get("agent_id") != self.agent_id:
                continue
            conv = data.get("conversation_id")
            if data["type"] == "offer.created":
                sent_at = data["payload"].get("preview", "").rpartition("@")[2]
                with contextlib.suppress(ValueError):
                    self.latencies.append(time.time() - float(sent_at))
                await self._cmd(ws, "accept", offer_id=data["payload"]["offer_id"])
            elif data["type"] == "conversation.assigned" and (conv, seq) not in self._replied:
                self._replied.add((conv, seq))
                token = f"reply-{self.username}-{conv}-{seq}"
                self.replies.append(token)
                await self._cmd(ws, "reply", conversation_id=conv, text=token)
                if self.close_after_reply:
                    await self._cmd(ws, "close", conversation_id=conv)
        raise ConnectionError("console socket closed")


# ---------------------------------------------------------------------------- the floor


@dataclass
class FloorRun:
    """Inbound SMS spread over the fleet with retries; bots answering; chaos on demand."""

    fleet: Fleet
    messages: int = 5000
    customers: int = 400
    agents: int = 8
    concurrency: int = 24
    retry_share: float = 0.1
    # Share of contacts that come through the API channel (POST /api/v1/inbound) instead.
    api_share: float = 0.2
    seed: int = 24
    # Bots close each conversation after replying (every later message reopens it and is
    # routed again); off, they keep what they have and the rest waits in the queue.
    close_after_reply: bool = True
    acked: set[tuple[str, str]] = field(default_factory=set)  # (channel, provider id)
    answers: Counter[int] = field(default_factory=Counter)
    ingest_latencies: list[float] = field(default_factory=list)
    bots: list[AgentBot] = field(default_factory=list)
    sent: int = 0
    duration_s: float = 0.0
    request_errors: Counter[str] = field(default_factory=Counter)

    async def create_agents(self) -> None:
        url = self.fleet.processes[0].url
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            for i in range(self.agents):
                body = {
                    "username": f"bot{i}",
                    "password": PASSWORD,
                    "capacity": {"sms": 5, "api": 5},
                }
                async with http.post(f"{url}/api/v1/agents", json=body) as resp:
                    if resp.status != 201:
                        raise RuntimeError(f"agent {i}: {resp.status} {await resp.text()}")
                    agent = await resp.json()
                urls = [p.url for p in self.fleet.processes]
                self.bots.append(
                    AgentBot(
                        f"bot{i}",
                        int(agent["id"]),
                        urls,
                        start_at=i,
                        close_after_reply=self.close_after_reply,
                    )
                )

    @contextlib.asynccontextmanager
    async def floor(self) -> AsyncIterator[None]:
        """The bots at work for as long as the block runs."""
        stop = asyncio.Event()
        tasks = [asyncio.create_task(bot.run(stop)) for bot in self.bots]
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait(tasks, timeout=15)
            for task in tasks:
                task.cancel()

    async def send_all(self, *, on_progress: Any = None) -> None:
        """Every message, acknowledged in the end (retried to another process until then)."""
        rng = random.Random(self.seed)
        plan: list[tuple[str, str, str]] = []
        for n in range(self.messages):
            customer = f"+1202555{rng.randrange(self.customers):04d}"
            ident = uuid.UUID(int=rng.getrandbits(128)).hex
            sid = f"api-{ident}" if rng.random() < self.api_share else f"SM{ident}"
            plan.append((sid, customer, f"m{n}"))
        queue: asyncio.Queue[tuple[int, tuple[str, str, str], int]] = asyncio.Queue()
        for n, item in enumerate(plan):
            queue.put_nowait((n, item, 0))
            if rng.random() < self.retry_share:
                queue.put_nowait((n, item, 1))  # the provider's retry, to another process
        started = time.perf_counter()

        async def worker(http: aiohttp.ClientSession) -> None:
            while True:
                try:
                    n, (sid, sender, text), attempt = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                target = self.fleet.processes[(n + attempt) % len(self.fleet.processes)]
                text = f"{text} @{time.time():.6f}"
                channel = "api" if sid.startswith("api-") else "sms"
                t0 = time.perf_counter()
                status = 0
                try:
                    if channel == "api":
                        async with http.post(
                            f"{target.url}/api/v1/inbound",
                            json={"from": sender, "text": text, "external_id": sid},
                            headers={"Authorization": f"Bearer {API_TOKEN}"},
                        ) as resp:
                            status = resp.status
                            await resp.read()
                    else:
                        body, headers = signed_inbound(
                            PUBLIC_URL,
                            AUTH_TOKEN,
                            ACCOUNT_SID,
                            from_=sender,
                            to=OUR_NUMBER,
                            body=text,
                            message_sid=sid,
                        )
                        async with http.post(
                            f"{target.url}{PATH_INBOUND}", data=body, headers=headers
                        ) as resp:
                            status = resp.status
                            await resp.read()
                except (aiohttp.ClientError, TimeoutError) as err:
                    self.request_errors[type(err).__name__] += 1
                self.answers[status] += 1
                self.sent += 1
                if 200 <= status < 300:
                    self.acked.add((channel, sid))
                    if attempt == 0:
                        self.ingest_latencies.append(time.perf_counter() - t0)
                else:
                    # No answer or a 5xx: Twilio tries again later, maybe another process.
                    await asyncio.sleep(0.05)
                    queue.put_nowait((n, (sid, sender, text), attempt + 1))
                if on_progress is not None:
                    await on_progress(self.sent)

        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            await asyncio.gather(*(worker(http) for _ in range(self.concurrency)))
        self.duration_s = time.perf_counter() - started

    async def settle(self, limit_s: float = 120.0) -> None:
        """Wait until nothing waits: every conversation closed (when the bots close them),
        every send recorded."""
        try:
            await self._settle(limit_s)
        except TimeoutError:
            raise RuntimeError(f"the floor did not settle: {await self.diagnose()}") from None

    async def diagnose(self) -> dict[str, Any]:
        conversations = await self.fleet.sql(
            "SELECT state, count(*) AS n FROM conversations GROUP BY state"
        )
        outbox = await self.fleet.sql("SELECT state, count(*) AS n FROM outbox GROUP BY state")
        offers = await self.fleet.sql("SELECT state, count(*) AS n FROM offers GROUP BY state")
        agents = await self.fleet.sql("SELECT username, state, state_reason FROM agents")
        return {
            "conversations": {r["state"]: r["n"] for r in conversations},
            "outbox": {r["state"]: r["n"] for r in outbox},
            "offers": {r["state"]: r["n"] for r in offers},
            "agents": [tuple(r) for r in agents],
            "bots": {b.username: dict(b.errors) for b in self.bots},
            "answers": dict(self.answers),
            "send_s": round(self.duration_s, 1),
        }

    async def _settle(self, limit_s: float) -> None:
        """Also quiet: no offer pending and the event log still for a whole poll, so the
        invariants read a floor where nothing is in flight (an accept committing between
        their reads of the events and of the offers would look like a lost assignment)."""
        last_head = -1
        async with asyncio.timeout(limit_s):
            while True:
                rows = await self.fleet.sql(
                    "SELECT"
                    " (SELECT count(*) FROM conversations WHERE state <> 'closed') AS open,"
                    " (SELECT count(*) FROM outbox WHERE state <> 'done') AS unsent,"
                    " (SELECT count(*) FROM offers WHERE state = 'pending') AS offered,"
                    " (SELECT seq FROM stream_head WHERE id = 1) AS head"
                )
                row = rows[0]
                closed = row["open"] == 0 or not self.close_after_reply
                quiet = row["offered"] == 0 and row["head"] == last_head
                if closed and row["unsent"] == 0 and quiet:
                    return
                last_head = row["head"]
                await asyncio.sleep(0.5)


# ---------------------------------------------------------------------------- invariants

RELEASES = {
    "conversation.closed",
    "conversation.abandoned",
    "conversation.queued",
    "conversation.wrap_up",
}


async def check_invariants(run: FloorRun) -> dict[str, Any]:
    """What the run proves; every list of problems is empty when it holds."""
    fleet = run.fleet
    problems: dict[str, Any] = {}

    stored = await fleet.sql(
        "SELECT channel, provider_id, count(*) AS n FROM messages"
        " WHERE direction = 'in' GROUP BY channel, provider_id"
    )
    counts = {(r["channel"], r["provider_id"]): r["n"] for r in stored}
    problems["acked_not_stored"] = sorted(s for s in run.acked if s not in counts)[:20]
    problems["stored_twice"] = sorted(s for s, n in counts.items() if n > 1)[:20]

    events = await fleet.sql("SELECT seq, type, conversation_id, agent_id FROM events ORDER BY seq")
    holder: dict[int, int] = {}
    doubled = []
    held_by: dict[int, list[tuple[int, int, int]]] = defaultdict(list)  # agent -> (conv, from, to)
    since: dict[int, int] = {}
    for e in events:
        conv = e["conversation_id"]
        if conv is None:
            continue
        if e["type"] == "conversation.assigned":
            if conv in holder and holder[conv] != e["agent_id"]:
                doubled.append((conv, holder[conv], e["agent_id"], e["seq"]))
            if conv in holder:
                held_by[holder[conv]].append((conv, since[conv], e["seq"]))
            holder[conv], since[conv] = e["agent_id"], e["seq"]
        elif e["type"] in RELEASES and conv in holder:
            held_by[holder.pop(conv)].append((conv, since.pop(conv), e["seq"]))
    problems["assigned_twice"] = doubled[:20]
    accepted = await fleet.sql(
        "SELECT conversation_id, count(*) AS n FROM offers WHERE state = 'accepted'"
        " GROUP BY conversation_id"
    )
    assignments = Counter(
        e["conversation_id"] for e in events if e["type"] == "conversation.assigned"
    )
    problems["offers_vs_assignments"] = [
        (r["conversation_id"], r["n"], assignments[r["conversation_id"]])
        for r in accepted
        if r["n"] != assignments[r["conversation_id"]]
    ][:20]

    missed: dict[str, list[tuple[int, str, int]]] = {}
    by_conv: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for e in events:
        if e["conversation_id"] is not None:
            by_conv[e["conversation_id"]].append((e["seq"], e["type"]))
    for bot in run.bots:
        first = min(bot.received, default=0)
        expected = {
            e["seq"]
            for e in events
            if e["agent_id"] == bot.agent_id
            and e["type"] in ("offer.created", "conversation.assigned")
            and e["seq"] >= first
        }
        for conv, start, end in held_by[bot.agent_id]:
            expected |= {
                seq
                for seq, kind in by_conv[conv]
                if start < seq < end and kind == "message.received"
            }
        lost = sorted(expected - bot.received)
        if lost:
            kinds = {e["seq"]: (e["type"], e["conversation_id"]) for e in events}
            missed[bot.username] = [(seq, *kinds[seq]) for seq in lost[:20]]
    problems["events_not_delivered"] = missed

    assert fleet.twilio is not None
    bodies = Counter(str(m.get("Body", "")) for m in fleet.twilio.sent)
    replies = await fleet.sql(
        "SELECT channel, text FROM messages WHERE direction = 'out' AND kind = 'message'"
    )
    keys_of: dict[str, set[str]] = defaultdict(set)  # API reply text -> Idempotency-Keys
    for key, text in fleet.api_posts:
        keys_of[text].add(key)
    stored_replies = [(r["channel"], r["text"]) for r in replies]
    problems["replies_not_delivered"] = [
        (channel, text)
        for channel, text in stored_replies
        if (bodies[text] if channel == "sms" else len(keys_of[text])) == 0
    ][:20]
    # SMS: once at Twilio; API: the receiver dedupes on the key, so one key per reply.
    problems["replies_delivered_twice"] = [
        *[("sms", t) for t, n in bodies.items() if n > 1],
        *[("api", t) for t, keys in keys_of.items() if len(keys) > 1],
    ][:20]
    figures = {
        "acked": len(run.acked),
        "stored": len(counts),
        "requests": run.sent,
        "answers": dict(sorted((str(k), v) for k, v in run.answers.items())),
        "assignments": sum(assignments.values()),
        "replies": len(stored_replies),
        "deliveries": sum(bodies.values()) + len(keys_of),
        "api_posts": len(fleet.api_posts),
        "by_channel": dict(Counter(channel for channel, _ in run.acked)),
        "reconnects": sum(b.reconnects for b in run.bots),
        "events": len(events),
    }
    return {"problems": problems, "figures": figures}


def failed(report: dict[str, Any]) -> bool:
    return any(bool(v) for v in report["problems"].values())
