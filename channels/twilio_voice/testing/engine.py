"""A stand-in for Twilio's voice platform: call legs, queues, bridges and a TwiML interpreter.

It knows nothing of the hub. It speaks Twilio's side of Programmable Voice to whatever URLs
it is given: signed form requests (``X-Twilio-Signature``), TwiML answers, status
callbacks. Durations run on an engine clock; with ``ManualClock`` a test moves time itself,
so queue times and call durations come out exact.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import random
import secrets
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlencode, urljoin

import aiohttp
from yarl import URL

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
DEFAULT_NUMBER = "+15005550006"
MAX_QUEUE_SIZE = 1000
DEFAULT_DIAL_TIMEOUT = 30.0
DEFAULT_CALL_TIMEOUT = 60.0
DEFAULT_GATHER_TIMEOUT = 5.0
DEFAULT_MAX_RECORD = 3600.0
SIGNATURE_HEADER = "X-Twilio-Signature"
APPLICATION_ERROR = "We are sorry, an application error has occurred. Goodbye."
# What Twilio lets a waitUrl document and a <Queue url> whisper do (channels.md §2.3).
WAIT_VERBS = frozenset({"Play", "Say", "Pause", "Hangup", "Redirect", "Leave", "Gather"})
WHISPER_VERBS = frozenset({"Play", "Say", "Pause", "Redirect"})
GATHER_NESTED = frozenset({"Say", "Play", "Pause"})
SIP_CODES = {"completed": "200", "busy": "486", "no-answer": "487", "canceled": "487"}

T = TypeVar("T")
Direction = Literal["inbound", "outbound-api", "outbound-dial"]
StatusOrder = Literal["ordered", "shuffled", "duplicated"]
_Ctx = Literal["call", "wait", "whisper"]
# How a document run ended early: the call hangs up, leaves its queue, or broke a rule.
_Stop = Literal["hangup", "leave", "error"]


# ---------------------------------------------------------------------------- clocks
class Clock(Protocol):
    """Engine time in seconds; every duration the engine reports is measured on it."""

    def now(self) -> float:
        """The current engine time."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once the engine time has reached ``deadline``."""
        ...


class RealClock:
    """Engine time is wall time (monotonic) times ``speed``."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed

    def now(self) -> float:
        """Monotonic seconds times the speed."""
        return time.monotonic() * self.speed

    async def sleep_until(self, deadline: float) -> None:
        """Sleep the real time that the engine time needs to reach ``deadline``."""
        # Re-check after each sleep: asyncio's timer may wake a little early.
        while (left := deadline - self.now()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left / self.speed)


class ManualClock:
    """Engine time that moves only when a test calls ``advance``; sleepers wake on it."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._moved = asyncio.Event()

    def now(self) -> float:
        """The time the test has advanced to."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward; every sleeper whose deadline has passed wakes up."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += seconds
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def sleep_until(self, deadline: float) -> None:
        """Wait (without polling) until ``advance`` has moved time past ``deadline``."""
        while self._now < deadline:
            await self._moved.wait()


# ---------------------------------------------------------------------------- scripts
@dataclass(frozen=True, slots=True)
class Speech:
    """A spoken answer to a <Gather input="speech">."""

    text: str
    confidence: float = 0.9


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """What the person on a leg does; times are engine-seconds."""

    # Answers to successive (non-queue) Gathers: digits, Speech, or None for silence.
    inputs: list[str | Speech | None] = field(default_factory=list)
    # (seconds in a queue, digits): typed into the Gather running in the waitUrl (kept
    # until one runs).
    press_in_queue: tuple[float, str] | None = None
    abandon_after_s: float | None = None  # hang up after this long in a queue
    talk_s: float | None = None  # hang up this long after being bridged (None: stay)
    record_s: float = 3.0  # how long the person speaks into a <Record>
    record_end: str = "#"  # how a recording ends: a key, "hangup", or "" (silence)
    transcript: str = ""  # what a transcription of that recording says


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """Someone calling our number (``to`` defaults to the engine's number)."""

    number: str
    script: Script = field(default_factory=Script)
    to: str | None = None


@dataclass(frozen=True, slots=True)
class Callee:
    """How a called party (REST call or <Dial> target) behaves."""

    answer: Literal["answer", "no-answer", "busy", "failed"] = "answer"
    talk_s: float | None = None  # hang up this long after answering (None: stay)
    ring_s: float = 0.0
    script: Script = field(default_factory=Script)


@dataclass(frozen=True, slots=True)
class Instructions:
    """Where a leg's TwiML comes from: a URL to fetch or a TwiML string."""

    url: str = ""
    method: str = "POST"
    twiml: str | None = None


# ---------------------------------------------------------------------------- records
@dataclass(slots=True)
class Exchange:
    """One HTTP request the engine made and the answer it got (status None: unreachable)."""

    url: str
    params: dict[str, str]
    status: int | None
    body: str
    method: str = "POST"
    kind: str = ""  # twiml, action, wait, whisper, status, transcription, recording-status
    call_sid: str = ""


@dataclass(slots=True, eq=False)
class Bridge:
    """Two legs connected; ``ended`` is None while they talk."""

    a_sid: str
    b_sid: str
    started: float
    ended: float | None = None
    over: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    timers: list[asyncio.Task[None]] = field(default_factory=list, repr=False)

    @property
    def duration(self) -> int:
        """Whole engine-seconds bridged so far (Twilio rounds down)."""
        end = self.ended if self.ended is not None else self.started
        return int(end - self.started)


@dataclass(slots=True)
class Recording:
    """A recording a <Record> made."""

    sid: str
    call_sid: str
    duration: int
    transcript: str
    started: datetime


@dataclass(slots=True, eq=False)
class Leg:
    """One call leg; ``log`` is the transcript of what it executed as (verb, detail)."""

    sid: str
    from_: str
    to: str
    direction: Direction
    parent_sid: str | None = None
    status: str = "queued"
    log: list[tuple[str, str]] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    created_at: float = 0.0
    answered_at: float | None = None
    ended_at: float | None = None
    script: Script = field(default_factory=Script, repr=False)
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_events: frozenset[str] = frozenset({"completed"})
    # Run-time state.
    _inputs: deque[str | Speech | None] = field(default_factory=deque, repr=False)
    _hangup_at: float | None = None
    _redirect: Instructions | None = None
    _interrupt: asyncio.Future[None] | None = None
    _final_status: str | None = None
    _passive: bool = False  # a dialed party: no TwiML of its own, only bridged
    _finished: bool = False
    _sequence: int = 0
    _held: list[dict[str, str]] = field(default_factory=list, repr=False)
    _timers: list[asyncio.Task[None]] = field(default_factory=list, repr=False)
    _digits: str | None = None
    _digits_ready: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _pressed: bool = False

    @property
    def hanging_up(self) -> bool:
        """The leg has hung up (or is ending)."""
        return self._hangup_at is not None

    @property
    def duration(self) -> int:
        """Whole engine-seconds from answer to end (0 when never answered)."""
        if self.answered_at is None or self.ended_at is None:
            return 0
        return int(self.ended_at - self.answered_at)


@dataclass(slots=True, eq=False)
class _Dequeue:
    """A <Dial><Queue> taking a waiting caller."""

    agent: Leg
    url: str | None
    method: str
    at: float
    ready: asyncio.Future[Bridge | None]


@dataclass(slots=True, eq=False)
class _Member:
    leg: Leg
    since: float
    # "leave" / "hangup" / "error" from the hold music, or the dequeue that took it.
    outcome: asyncio.Future[str | _Dequeue]


@dataclass(slots=True, eq=False)
class Queue:
    """A named call queue (created on demand, FIFO)."""

    name: str
    sid: str
    members: list[_Member] = field(default_factory=list)
    joined: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def add(self, member: _Member) -> None:
        """Append a caller and wake whoever waits for one."""
        self.members.append(member)
        joined, self.joined = self.joined, asyncio.Event()
        joined.set()

    def remove(self, member: _Member) -> None:
        """Take a member out (no-op when already gone)."""
        with contextlib.suppress(ValueError):
            self.members.remove(member)

    def pop_waiting(self) -> _Member | None:
        """The first member still waiting, taken out of the queue."""
        for member in self.members:
            if not member.outcome.done() and not member.leg.hanging_up:
                self.members.remove(member)
                return member
        return None

    @property
    def legs(self) -> list[Leg]:
        """The waiting legs, head first."""
        return [m.leg for m in self.members]


@dataclass(frozen=True, slots=True)
class _Doc:
    url: str  # relative URLs in it resolve against this ("" for inline TwiML)
    root: ET.Element


class _Interrupted(Exception):
    """The leg hung up or was redirected by REST while a verb was running."""


class TwimlError(Exception):
    """A TwiML fetch failed or its answer was not TwiML (Twilio's 11200 / 12100)."""


_Outcome = _Doc | _Stop | None
_Handler = Callable[[Leg, _Doc, ET.Element, _Ctx], Awaitable[_Outcome]]


# ---------------------------------------------------------------------------- helpers
def new_sid(prefix: str) -> str:
    """A Twilio-shaped sid: two letters and 32 lower-case hex digits."""
    return prefix + secrets.token_hex(16)


def compute_signature(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    """X-Twilio-Signature: HMAC-SHA1 of the URL + every name+value sorted by name, base64.

    Written from Twilio's published algorithm; tests cross-check it with twilio's own
    RequestValidator.
    """
    data = url + "".join(name + value for name, value in sorted(params))
    mac = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def rfc2822_now() -> str:
    """The current time as Twilio writes Timestamp (RFC 2822, +0000)."""
    return format_datetime(datetime.now(UTC))


def _number(value: str | None, default: float) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except ValueError:
        return default


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _attrs(el: ET.Element) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(el.attrib.items()))


def _text(el: ET.Element) -> str:
    return (el.text or "").strip()


async def _first(*starts: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """Return when the first of the started awaitables finishes; cancel the rest.

    Given as functions, not coroutines: a ``_first`` that never runs (its leg hung up
    first) then leaves no coroutine behind that was never awaited."""
    tasks = [asyncio.ensure_future(start()) for start in starts]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _forever() -> None:
    await asyncio.Event().wait()


def parse_twiml(body: str, content_type: str, url: str) -> ET.Element:
    """A <Response> element from an answer, as Twilio reads one (channels.md §2.3)."""
    if content_type.startswith("audio/"):
        root = ET.Element("Response")
        ET.SubElement(root, "Play").text = url
        return root
    try:
        # TwiML from the local app under test, not hostile input.
        root = ET.fromstring(body)  # noqa: S314
    except ET.ParseError as err:
        if content_type == "text/plain":
            root = ET.Element("Response")
            ET.SubElement(root, "Say").text = body
            return root
        raise TwimlError(f"12100 Document parse failure: {url}: {err}") from err
    if root.tag != "Response":
        raise TwimlError(f"12100 Document parse failure: {url}: root is <{root.tag}>")
    return root


# ---------------------------------------------------------------------------- engine
class CallEngine:
    """Twilio's call world: legs, queues, bridges; talks to the app over signed HTTP.

    Tests read ``legs``, ``exchanges``, ``errors``, ``violations``, ``bridges``,
    ``recordings``; they steer with ``place_call``, ``hangup``, ``callee`` and the clock.
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        voice_url: str,
        status_url: str | None = None,
        number: str = DEFAULT_NUMBER,
        clock: Clock | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.voice_url = voice_url
        self.status_url = status_url
        self.number = number
        self.clock: Clock = clock or RealClock()
        # Policy for every called party (REST call or <Dial> target); tests replace it.
        self.callee: Callable[[str], Callee] = lambda _to: Callee()
        self.status_order: StatusOrder = "ordered"
        self.rng = random.Random(0)  # noqa: S311 - shuffles test callbacks, not secrets
        self.http_timeout = 10.0
        self.wait_pause_s = 0.02  # least real time one waitUrl round costs
        self.say_s = 0.0  # engine-seconds one <Say> lasts
        self.play_s = 0.0  # engine-seconds one <Play> lasts
        self.transcription_delay_s = 0.01
        self.api_base = "http://127.0.0.1"  # where RecordingUrl points (set by the REST fake)
        self.legs: dict[str, Leg] = {}
        self.exchanges: list[Exchange] = []
        self.errors: list[str] = []
        self.violations: list[str] = []
        self.bridges: list[Bridge] = []
        self.queues: dict[str, Queue] = {}
        self.recordings: dict[str, Recording] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._closing = False
        self._handlers: dict[str, _Handler] = {
            "Say": self._say,
            "Play": self._play,
            "Pause": self._pause,
            "Gather": self._gather,
            "Enqueue": self._enqueue,
            "Leave": self._leave,
            "Hangup": self._hangup_verb,
            "Redirect": self._redirect_verb,
            "Reject": self._reject,
            "Record": self._record,
            "Dial": self._dial,
        }

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> None:
        """Create the HTTP client the engine calls the app with."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.http_timeout)
            )

    async def close(self) -> None:
        """Cancel every call and timer; close the HTTP client."""
        self._closing = True
        while self._tasks:
            tasks = tuple(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _at(self, deadline: float, action: Callable[[], None]) -> asyncio.Task[None]:
        """Run ``action`` once the engine clock reaches ``deadline``."""

        async def fire() -> None:
            await self.clock.sleep_until(deadline)
            action()

        return self._spawn(fire())

    # ------------------------------------------------------------------ test controls
    async def place_call(self, caller: Caller) -> Leg:
        """An inbound call to our number: its Voice URL is requested at once."""
        leg = self._new_leg(
            from_=caller.number,
            to=caller.to or self.number,
            direction="inbound",
            script=caller.script,
        )
        leg.status = "ringing"
        leg.status_callback = self.status_url
        self._spawn(self._drive(leg, Instructions(url=self.voice_url)))
        return leg

    def create_call(
        self,
        *,
        to: str,
        from_: str,
        instructions: Instructions,
        status_callback: str | None = None,
        status_events: Iterable[str] = (),
        status_method: str = "POST",
        timeout: float = DEFAULT_CALL_TIMEOUT,
    ) -> Leg:
        """An outbound-api call (what POST Calls.json starts)."""
        events = frozenset(status_events) or frozenset({"completed"})
        leg = self._new_leg(from_=from_, to=to, direction="outbound-api")
        leg.status_callback = status_callback
        leg.status_callback_method = status_method
        leg.status_events = events
        self._spawn(self._drive_outbound(leg, instructions, timeout))
        return leg

    def hangup(self, sid: str, *, at: float | None = None) -> None:
        """Hang up a leg now (either party, any time); ``at`` backdates the engine time."""
        leg = self.legs[sid]
        if leg.hanging_up or leg._finished:
            return
        leg._hangup_at = self.clock.now() if at is None else at
        if leg.answered_at is not None:
            leg.status = "completed"
        self._interrupt(leg)
        for bridge in self.bridges:
            if bridge.ended is None and sid in (bridge.a_sid, bridge.b_sid):
                self._end_bridge(bridge, leg._hangup_at)
        if leg._passive:
            self._spawn(self._finish(leg))

    def redirect(self, sid: str, instructions: Instructions) -> None:
        """Move a live call to new TwiML (REST update): its current verb stops."""
        leg = self.legs[sid]
        if leg._finished or leg.hanging_up:
            raise ValueError("call is not in progress")
        if leg._passive:
            raise ValueError("the fake cannot redirect a dialed leg")
        leg._redirect = instructions
        self._interrupt(leg)

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - the tests' spelling; bounded below
    ) -> None:
        """Wait (bounded) until ``predicate()`` is true; TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            # Any predicate over the engine's state, so poll rather than wire an event.
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(0.005)

    def leg_by_to(self, number: str) -> Leg | None:
        """The newest leg called ``number``."""
        found = [leg for leg in self.legs.values() if leg.to == number]
        return found[-1] if found else None

    def queue(self, name: str) -> Queue:
        """The queue called ``name`` (created on demand, as <Enqueue> does)."""
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = Queue(name=name, sid=new_sid("QU"))
        return queue

    def exchanges_to(self, path: str, kind: str | None = None) -> list[Exchange]:
        """Exchanges whose URL path is ``path`` (and of ``kind``, when given)."""
        return [
            e
            for e in self.exchanges
            if URL(e.url).path == path and (kind is None or e.kind == kind)
        ]

    # ------------------------------------------------------------------ legs
    def _new_leg(
        self,
        *,
        from_: str,
        to: str,
        direction: Direction,
        parent_sid: str | None = None,
        script: Script | None = None,
    ) -> Leg:
        script = script or Script()
        leg = Leg(
            sid=new_sid("CA"),
            from_=from_,
            to=to,
            direction=direction,
            parent_sid=parent_sid,
            created_at=self.clock.now(),
            script=script,
        )
        leg._inputs.extend(script.inputs)
        self.legs[leg.sid] = leg
        return leg

    def _interrupt(self, leg: Leg) -> None:
        if leg._interrupt is not None and not leg._interrupt.done():
            leg._interrupt.set_result(None)

    def _answer(self, leg: Leg) -> None:
        leg.answered_at = self.clock.now()
        leg.status = "in-progress"

    async def _guard(self, leg: Leg, aw: Awaitable[T]) -> T:
        """Await ``aw`` unless the leg hangs up or is redirected first (_Interrupted)."""
        if leg.hanging_up or leg._redirect is not None:
            if isinstance(aw, Coroutine):
                aw.close()
            raise _Interrupted
        if leg._interrupt is None or leg._interrupt.done():
            leg._interrupt = asyncio.get_running_loop().create_future()
        interrupt = leg._interrupt
        task = asyncio.ensure_future(aw)
        try:
            await asyncio.wait((task, interrupt), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise _Interrupted

    async def _sleep(self, leg: Leg, seconds: float) -> None:
        await self._guard(leg, self.clock.sleep_until(self.clock.now() + seconds))

    async def _drive(self, leg: Leg, instructions: Instructions) -> None:
        try:
            await self._script(leg, instructions)
        except asyncio.CancelledError:
            leg.ended.set()
            raise
        except Exception as err:  # the fake's own bug: keep it visible, end the call
            logger.exception("fake Twilio voice: call %s crashed", leg.sid)
            self.errors.append(f"internal error on {leg.sid}: {err!r}")
        await self._finish(leg)

    async def _drive_outbound(self, leg: Leg, instructions: Instructions, limit_s: float) -> None:
        try:
            leg.status = "initiated"
            await self._progress(leg, "initiated")
            leg.status = "ringing"
            await self._progress(leg, "ringing")
            callee = self.callee(leg.to)
            leg.script = callee.script
            leg._inputs.extend(callee.script.inputs)
            result = await self._ring(leg, callee, limit_s)
            if result != "answer":
                leg._final_status = result
            else:
                self._answer(leg)
                await self._progress(leg, "answered")
                self._talk_timer(leg, callee)
                await self._script(leg, instructions)
        except asyncio.CancelledError:
            leg.ended.set()
            raise
        except Exception as err:  # the fake's own bug: keep it visible, end the call
            logger.exception("fake Twilio voice: call %s crashed", leg.sid)
            self.errors.append(f"internal error on {leg.sid}: {err!r}")
        await self._finish(leg)

    def _talk_timer(self, leg: Leg, callee: Callee) -> None:
        if callee.talk_s is not None and leg.answered_at is not None:
            deadline = leg.answered_at + callee.talk_s
            leg._timers.append(self._at(deadline, self._hangup_later(leg, deadline)))

    async def _ring(self, leg: Leg, callee: Callee, limit_s: float) -> str:
        """Ring a called party: "answer", or the status the call ends with."""
        if callee.answer in ("busy", "failed"):
            return callee.answer
        start = self.clock.now()
        try:
            if callee.answer == "no-answer" or callee.ring_s >= limit_s:
                await self._guard(leg, self.clock.sleep_until(start + limit_s))
                return "no-answer"
            if callee.ring_s > 0:
                await self._guard(leg, self.clock.sleep_until(start + callee.ring_s))
        except _Interrupted:
            return "canceled"
        return "answer"

    async def _script(self, leg: Leg, instructions: Instructions) -> None:
        """Run a leg's TwiML until it ends; a REST redirect starts over with new TwiML."""
        while True:
            try:
                try:
                    doc = await self._load(leg, instructions)
                except TwimlError as err:
                    self.errors.append(f"{leg.sid}: {err}")
                    if leg.answered_at is None:
                        self._answer(leg)
                    leg.log.append(("Say", APPLICATION_ERROR))
                    return
                first = next(iter(doc.root), None)
                if leg.answered_at is None and (first is None or first.tag != "Reject"):
                    self._answer(leg)
                await self._run(leg, doc, "call")
            except _Interrupted:
                redirect = leg._redirect
                if leg.hanging_up or redirect is None:
                    return
                leg._redirect = None
                leg.log.append(("Redirected", redirect.url or "TwiML"))
                instructions = redirect
            else:
                return

    async def _load(self, leg: Leg, instructions: Instructions) -> _Doc:
        if instructions.twiml is not None:
            return _Doc("", parse_twiml(instructions.twiml, "text/xml", "TwiML"))
        return await self._fetch(leg, instructions.url, instructions.method, {}, "twiml")

    async def _finish(self, leg: Leg) -> None:
        """End a leg once: final status, status callbacks, ``ended``."""
        if leg._finished:
            return
        leg._finished = True
        if leg._hangup_at is None:
            leg._hangup_at = self.clock.now()
        self._interrupt(leg)
        leg.ended_at = leg._hangup_at
        answered = leg.answered_at is not None
        leg.status = leg._final_status or ("completed" if answered else "canceled")
        for bridge in self.bridges:
            if bridge.ended is None and leg.sid in (bridge.a_sid, bridge.b_sid):
                self._end_bridge(bridge, leg._hangup_at)
        for queue in self.queues.values():
            for member in [m for m in queue.members if m.leg is leg]:
                queue.remove(member)
        for timer in leg._timers:
            timer.cancel()
        try:
            if not self._closing:
                await self._progress(leg, "completed")
                await self._flush_held(leg)
        finally:
            leg.ended.set()

    # ------------------------------------------------------------------ HTTP
    def _params(self, leg: Leg) -> dict[str, str]:
        """The standard parameters of every request about a leg (channels.md §2.1)."""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": leg.sid,
            "CallStatus": leg.status,
            "Called": leg.to,
            "Caller": leg.from_,
            "Direction": leg.direction,
            "From": leg.from_,
            "To": leg.to,
        }
        if leg.parent_sid:
            params["ParentCallSid"] = leg.parent_sid
        return params

    async def _send(
        self, url: str, method: str, params: dict[str, str], *, kind: str, call_sid: str
    ) -> tuple[Exchange, str]:
        """One signed request as Twilio makes it; (exchange, answer content type)."""
        method = "GET" if method.strip().upper() == "GET" else "POST"
        try:
            target = str(URL(url))
        except (ValueError, TypeError):
            target = url
        headers = {
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": f"{secrets.token_hex(16)}-{secrets.token_hex(8)}",
        }
        data: str | None = None
        if method == "GET":
            if params:
                target += ("&" if "?" in target else "?") + urlencode(list(params.items()))
            headers[SIGNATURE_HEADER] = compute_signature(target, (), self.auth_token)
        else:
            data = urlencode(list(params.items()))
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers[SIGNATURE_HEADER] = compute_signature(target, params.items(), self.auth_token)
        status: int | None = None
        content_type = ""
        if self._session is None:
            await self.open()
        assert self._session is not None
        try:
            async with self._session.request(
                method, URL(target, encoded=True), data=data, headers=headers, max_redirects=10
            ) as resp:
                body = await resp.text(errors="replace")
                status = resp.status
                content_type = resp.content_type
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            body = f"{type(err).__name__}: {err}"
        exchange = Exchange(target, params, status, body, method, kind, call_sid)
        self.exchanges.append(exchange)
        return exchange, content_type

    async def _fetch(
        self, leg: Leg, url: str, method: str, extra: dict[str, str], kind: str
    ) -> _Doc:
        """Request TwiML for a leg (interrupted by hangup or redirect)."""
        params = self._params(leg) | extra
        exchange, content_type = await self._guard(
            leg, self._send(url, method, params, kind=kind, call_sid=leg.sid)
        )
        if exchange.status is None or not 200 <= exchange.status < 300:
            raise TwimlError(
                f"11200 HTTP retrieval failure: {method} {url} -> {exchange.status}"
                f" {exchange.body[:200]}"
            )
        return _Doc(url, parse_twiml(exchange.body, content_type, url))

    async def _notify(
        self, leg: Leg, url: str | None, method: str, extra: dict[str, str], kind: str
    ) -> None:
        """Request a URL whose answer cannot change the call (it has hung up)."""
        if url:
            await self._send(url, method, self._params(leg) | extra, kind=kind, call_sid=leg.sid)

    async def _then(
        self, leg: Leg, url: str | None, method: str, extra: dict[str, str]
    ) -> _Outcome:
        """POST a verb's action and continue with its TwiML (None: next verb).

        A call that has already hung up still gets its action requested (Twilio does so);
        the answer is ignored.
        """
        if leg.hanging_up:
            await self._notify(leg, url, method, extra, "action")
            return "hangup"
        if not url:
            return None
        return await self._fetch(leg, url, method, extra, "action")

    @staticmethod
    def _resolve(doc: _Doc, ref: str | None) -> str | None:
        """A URL from TwiML, relative to the document that contained it."""
        if ref is None or not ref.strip():
            return None
        return urljoin(doc.url, ref.strip()) if doc.url else ref.strip()

    # ------------------------------------------------------------------ status callbacks
    async def _progress(self, leg: Leg, event: str) -> None:
        """A status callback for ``event`` when the leg asked for it."""
        if not leg.status_callback or event not in leg.status_events:
            return
        params = self._params(leg)
        params["CallStatus"] = {"answered": "in-progress"}.get(event, leg.status)
        if event == "completed":
            params["CallDuration"] = str(leg.duration)
            if leg.status == "completed":
                params["Duration"] = str(-(-leg.duration // 60))
            params["SipResponseCode"] = SIP_CODES.get(leg.status, "500")
        params["Timestamp"] = rfc2822_now()
        params["CallbackSource"] = "call-progress-events"
        params["SequenceNumber"] = str(leg._sequence)
        leg._sequence += 1
        if self.status_order == "shuffled":
            leg._held.append(params)
            return
        await self._post_status(leg, params)
        if self.status_order == "duplicated":
            await self._post_status(leg, params)

    async def _flush_held(self, leg: Leg) -> None:
        held, leg._held = leg._held, []
        if len(held) > 1:
            shuffled = held[:]
            self.rng.shuffle(shuffled)
            held = shuffled if shuffled != held else held[::-1]
        for params in held:
            await self._post_status(leg, params)

    async def _post_status(self, leg: Leg, params: dict[str, str]) -> None:
        assert leg.status_callback is not None
        await self._send(
            leg.status_callback,
            leg.status_callback_method,
            params,
            kind="status",
            call_sid=leg.sid,
        )

    # ------------------------------------------------------------------ the interpreter
    async def _run(self, leg: Leg, doc: _Doc, ctx: _Ctx) -> _Stop | None:
        """Execute documents until one runs out (None) or stops the call early."""
        while True:
            following: _Doc | None = None
            for el in doc.root:
                outcome = await self._verb(leg, doc, el, ctx)
                if isinstance(outcome, _Doc):
                    following = outcome
                    break
                if outcome is not None:
                    return outcome
            if following is None:
                return None
            doc = following

    async def _verb(self, leg: Leg, doc: _Doc, el: ET.Element, ctx: _Ctx) -> _Outcome:
        verb = str(el.tag)
        allowed = {"wait": WAIT_VERBS, "whisper": WHISPER_VERBS}.get(ctx)
        if allowed is not None and verb not in allowed:
            where = "a waitUrl document" if ctx == "wait" else "a <Queue url> whisper"
            self.violations.append(
                f"{leg.sid}: <{verb}> is not allowed in {where} ({doc.url or 'TwiML'})"
            )
            return "error" if ctx == "wait" else None
        handler = self._handlers.get(verb)
        if handler is None:
            self.errors.append(f"12200 Schema validation warning: unknown verb <{verb}>")
            return None
        try:
            return await handler(leg, doc, el, ctx)
        except TwimlError as err:
            self.errors.append(f"{leg.sid}: {err}")
            if ctx == "call":
                leg.log.append(("Say", APPLICATION_ERROR))
                return "hangup"
            return "error"

    async def _media(self, leg: Leg, el: ET.Element, seconds: float) -> None:
        loops = int(_number(el.get("loop"), 1))
        if loops == 0:  # loop="0": until something else ends it (hold music)
            await self._guard(leg, _forever())
        elif seconds * loops > 0:
            await self._sleep(leg, seconds * loops)

    async def _say(self, leg: Leg, doc: _Doc, el: ET.Element, ctx: _Ctx) -> _Outcome:
        leg.log.append(("Say", _text(el)))
        await self._media(leg, el, self.say_s)
        return None

    async def _play(self, leg: Leg, doc: _Doc, el: ET.Element, ctx: _Ctx) -> _Outcome:
        digits = el.get("digits")
        leg.log.append(
            ("Play", f"digits:{digits}" if digits else self._resolve(doc, el.text) or "")
        )
        await self._media(leg, el, self.play_s)
        return None

    async def _pause(self, leg: Leg, doc: _Doc, el: ET.Element, ctx: _Ctx) -> _Outcome:
        length = _number(el.get("length"), 1.0)
        leg.log.append(("Pause", f"{length:g}"))
        await self._sleep(leg, length)
        return None

    async def _leave(self, leg: Leg, doc: _Doc, el: ET.Element, ctx: _Ctx) -> _Outcome:
        leg.log.append(("Leave", ""))
        return "leave" if ctx == "wait" else None

    async def _hangup_verb(self, leg: Leg, doc: _Doc, el: ET.Element, ctx: _Ctx) -> _Outcome:
        leg.log.append(("Hangup", ""))
        return "hangup"

    async def _reject(self, leg: Leg, doc: _Doc, el: ET.Element, ctx: _Ctx) -> _Outcome:
        reason = el.get("reason", "rejected")
        leg.log.append(("Reject", reason))
        if leg.answered_at is None:
            # Twilio: busy -> busy, rejected -> no-answer; the call is never answered.
            leg._final_status = "busy" if reason == "busy" else "no-answer"
        return "hangup"

    async def _redirect_verb(self, leg: Leg, doc: _Doc, el: ET.Element, ctx: _Ctx) -> _Outcome:
        url = self._resolve(doc, el.text)
        leg.log.append(("Redirect", url or ""))
        if url is None:
            raise TwimlError("12100 Document parse failure: <Redirect> without a URL")
        await asyncio.sleep(self.wait_pause_s)  # a redirect loop must not spin
        return await self._fetch(leg, url, el.get("method", "POST"), {}, "twiml")

    # ------------------------------------------------------------------ Gather
    async def _gather(self, leg: Leg, doc: _Doc, el: ET.Element, ctx: _Ctx) -> _Outcome:
        inputs = (el.get("input") or "dtmf").split()
        timeout = _number(el.get("timeout"), DEFAULT_GATHER_TIMEOUT)
        leg.log.append(("Gather", _attrs(el)))
        for child in el:
            if child.tag in GATHER_NESTED:
                stop = await self._verb(leg, doc, child, ctx)
                if stop is not None:
                    return stop
            else:
                self.errors.append(f"12200 Schema validation warning: <{child.tag}> in <Gather>")
        answer = await (self._press(leg, timeout) if ctx == "wait" else self._input(leg, timeout))
        params: dict[str, str] = {}
        if isinstance(answer, Speech) and "speech" in inputs:
            params["SpeechResult"] = answer.text
            params["Confidence"] = str(answer.confidence)
        elif isinstance(answer, str) and answer and "dtmf" in inputs:
            finish = el.get("finishOnKey", "#")
            finished_on = ""
            if finish and finish in answer:
                answer, finished_on = answer[: answer.index(finish)], finish
            num = el.get("numDigits")
            if num and num.isdigit():
                answer = answer[: int(num)]
            params["Digits"] = answer
            params["FinishedOnKey"] = finished_on
        elif not _true(el.get("actionOnEmptyResult")):
            return None  # no input: Twilio falls through to the next verb
        params["msg"] = "Gather End"
        action = self._resolve(doc, el.get("action")) or doc.url
        return await self._then(leg, action, el.get("method", "POST"), params)

    async def _input(self, leg: Leg, silence_s: float) -> str | Speech | None:
        answer = leg._inputs.popleft() if leg._inputs else None
        if answer is None or answer == "":
            await self._sleep(leg, silence_s)
        return answer

    async def _press(self, leg: Leg, limit_s: float) -> str | None:
        """Digits the caller types while on hold (``press_in_queue``), or None at timeout."""
        deadline = self.clock.now() + limit_s
        while leg._digits is None:
            if self.clock.now() >= deadline:
                return None
            await self._guard(
                leg,
                _first(leg._digits_ready.wait, lambda: self.clock.sleep_until(deadline)),
            )
        digits, leg._digits = leg._digits, None
        leg._digits_ready.clear()
        return digits

    def _type_digits(self, leg: Leg, digits: str) -> None:
        leg._pressed = True
        leg._digits = digits
        leg._digits_ready.set()

    # ------------------------------------------------------------------ Enqueue
    def _queue_params(
        self, queue: Queue, result: str, since: float, until: float
    ) -> dict[str, str]:
        return {
            "QueueResult": result,
            "QueueSid": queue.sid,
            "QueueTime": str(int(max(until - since, 0))),
        }

    def _wait_params(self, queue: Queue, member: _Member) -> dict[str, str]:
        now = self.clock.now()
        waits = [now - m.since for m in queue.members]
        position = queue.members.index(member) + 1 if member in queue.members else 1
        return {
            "QueuePosition": str(position),
            "QueueSid": queue.sid,
            "QueueTime": str(int(now - member.since)),
            "AvgQueueTime": str(int(sum(waits) / len(waits)) if waits else 0),
            "CurrentQueueSize": str(len(queue.members)),
            "MaxQueueSize": str(MAX_QUEUE_SIZE),
        }

    def _queue_timers(self, leg: Leg, since: float) -> list[asyncio.Task[None]]:
        """The caller's scripted moves while queued: abandon, press digits."""
        timers: list[asyncio.Task[None]] = []
        script = leg.script
        if script.abandon_after_s is not None:
            deadline = since + script.abandon_after_s
            timers.append(self._at(deadline, self._hangup_later(leg, deadline)))
        if script.press_in_queue is not None and not leg._pressed:
            after, digits = script.press_in_queue
            timers.append(self._at(since + after, lambda: self._type_digits(leg, digits)))
        leg._timers.extend(timers)
        return timers

    async def _enqueue(self, leg: Leg, doc: _Doc, el: ET.Element, ctx: _Ctx) -> _Outcome:
        name = _text(el)
        action = self._resolve(doc, el.get("action"))
        method = el.get("method", "POST")
        queue = self.queue(name)
        leg.log.append(("Enqueue", name))
        limit = int(_number(el.get("maxQueueSize"), MAX_QUEUE_SIZE))
        if len(queue.members) >= min(limit, MAX_QUEUE_SIZE):
            return await self._then(leg, action, method, {"QueueResult": "queue-full"})
        member = _Member(leg, self.clock.now(), asyncio.get_running_loop().create_future())
        queue.add(member)
        timers = self._queue_timers(leg, member.since)
        wait_url = el.get("waitUrl")
        hold = self._spawn(
            self._hold(leg, queue, member, self._resolve(doc, wait_url), el.get("waitUrlMethod"))
        )

        async def leave_queue() -> None:
            queue.remove(member)
            for timer in timers:
                timer.cancel()
            hold.cancel()
            await asyncio.gather(hold, return_exceptions=True)

        try:
            got = await self._guard(leg, asyncio.shield(member.outcome))
        except _Interrupted:
            await leave_queue()
            result = "hangup" if leg.hanging_up else "redirected"
            until = leg._hangup_at if leg._hangup_at is not None else self.clock.now()
            params = self._queue_params(queue, result, member.since, until)
            await self._notify(leg, action, method, params, "action")
            raise
        await leave_queue()
        if isinstance(got, _Dequeue):
            return await self._dequeued(leg, queue, member, got, action, method)
        params = self._queue_params(queue, got, member.since, self.clock.now())
        if got == "hangup":  # <Hangup/> in the waitUrl
            self.hangup(leg.sid)
            await self._notify(leg, action, method, params, "action")
            return "hangup"
        return await self._then(leg, action, method, params)

    async def _hold(
        self, leg: Leg, queue: Queue, member: _Member, wait_url: str | None, method: str | None
    ) -> None:
        """The waitUrl loop; its end (leave / hangup / error) becomes the member's outcome."""
        try:
            outcome: _Stop = await self._hold_loop(leg, queue, member, wait_url, method or "POST")
        except _Interrupted:
            return
        except Exception as err:  # the fake's own bug: keep it visible, fail the wait
            logger.exception("fake Twilio voice: hold loop of %s crashed", leg.sid)
            self.errors.append(f"internal error on {leg.sid}: {err!r}")
            outcome = "error"
        if not member.outcome.done():
            member.outcome.set_result(outcome)

    async def _hold_loop(
        self, leg: Leg, queue: Queue, member: _Member, wait_url: str | None, method: str
    ) -> _Stop:
        if wait_url is None:  # Twilio's own hold music (or silence): nothing to ask
            leg.log.append(("Play", "hold music"))
            await self._guard(leg, _forever())
        assert wait_url is not None
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                doc = await self._fetch(
                    leg, wait_url, method, self._wait_params(queue, member), "wait"
                )
            except TwimlError as err:
                self.errors.append(f"{leg.sid}: {err}")
                return "error"
            stop = await self._run(leg, doc, "wait")
            if stop is not None:
                return stop
            await asyncio.sleep(max(self.wait_pause_s - (loop.time() - began), 0.001))

    async def _dequeued(
        self,
        leg: Leg,
        queue: Queue,
        member: _Member,
        dequeue: _Dequeue,
        action: str | None,
        method: str,
    ) -> _Outcome:
        """A <Dial><Queue> took this caller: whisper, bridge, then the Enqueue action."""
        bridge: Bridge | None = None
        try:
            if dequeue.url:
                params = {
                    "QueueSid": queue.sid,
                    "QueueTime": str(int(dequeue.at - member.since)),
                    "DequeingCallSid": dequeue.agent.sid,
                }
                try:
                    doc = await self._fetch(leg, dequeue.url, dequeue.method, params, "whisper")
                    await self._run(leg, doc, "whisper")
                except TwimlError as err:
                    self.errors.append(f"{leg.sid}: whisper: {err}")
            if dequeue.agent.hanging_up or dequeue.ready.done():
                if not dequeue.ready.done():
                    dequeue.ready.set_result(None)
            else:
                bridge = self._bridge(dequeue.agent, leg)
                dequeue.ready.set_result(bridge)
                await self._guard(leg, bridge.over.wait())
        except _Interrupted:
            if not dequeue.ready.done():
                dequeue.ready.set_result(None)
            if bridge is not None:
                self._end_bridge(bridge, leg._hangup_at)
            if bridge is not None:
                result = "bridged" if leg.hanging_up else "redirected-from-bridged"
            else:
                result = "hangup" if leg.hanging_up else "redirected"
            params = self._queue_params(queue, result, member.since, dequeue.at)
            await self._notify(leg, action, method, params, "action")
            raise
        result = "bridged" if bridge is not None else "system-error"
        params = self._queue_params(queue, result, member.since, dequeue.at)
        return await self._then(leg, action, method, params)

    # ------------------------------------------------------------------ bridges
    def _bridge(self, a: Leg, b: Leg) -> Bridge:
        bridge = Bridge(a_sid=a.sid, b_sid=b.sid, started=self.clock.now())
        self.bridges.append(bridge)
        for leg in (a, b):
            talk = leg.script.talk_s
            if talk is not None:
                deadline = bridge.started + talk
                bridge.timers.append(self._at(deadline, self._hangup_later(leg, deadline)))
        return bridge

    def _hangup_later(self, leg: Leg, at: float) -> Callable[[], None]:
        return lambda: self.hangup(leg.sid, at=at)

    def _end_bridge(self, bridge: Bridge, at: float | None) -> None:
        if bridge.ended is not None:
            return
        end = self.clock.now() if at is None else at
        bridge.ended = max(end, bridge.started)
        bridge.over.set()
        for timer in bridge.timers:
            timer.cancel()

    # ------------------------------------------------------------------ Dial
    async def _dial(self, leg: Leg, doc: _Doc, el: ET.Element, ctx: _Ctx) -> _Outcome:
        action = self._resolve(doc, el.get("action"))
        method = el.get("method", "POST")
        timeout = _number(el.get("timeout"), DEFAULT_DIAL_TIMEOUT)
        caller_id = el.get("callerId") or leg.from_
        queue_el: ET.Element | None = None
        targets: list[tuple[str, ET.Element | None]] = []
        for child in el:
            if child.tag == "Queue":
                queue_el = child
            elif child.tag in ("Number", "Sip"):
                targets.append((_text(child), child))
            elif child.tag == "Client":
                identity = child.find("Identity")
                name = _text(identity) if identity is not None else _text(child)
                targets.append((f"client:{name}", child))
            else:
                self.errors.append(f"{leg.sid}: the fake does not dial <{child.tag}>")
        if queue_el is None and not targets and _text(el):
            targets.append((_text(el), None))
        if queue_el is not None:
            url = self._resolve(doc, queue_el.get("url"))
            outcome = await self._dial_queue(
                leg, _text(queue_el), url, queue_el.get("method", "POST"), timeout
            )
        elif targets:
            outcome = await self._dial_targets(leg, doc, targets, caller_id, timeout)
        else:
            raise TwimlError("12100 Document parse failure: <Dial> with nothing to dial")
        status, dialed_sid, duration, bridged, interrupted = outcome
        params = {
            "DialCallStatus": status,
            "DialCallDuration": str(duration),
            "DialBridged": "true" if bridged else "false",
        }
        if dialed_sid:
            params["DialCallSid"] = dialed_sid
        if interrupted:
            if leg.hanging_up:
                await self._notify(leg, action, method, params, "action")
            raise _Interrupted
        return await self._then(leg, action, method, params)

    async def _dial_queue(
        self, leg: Leg, name: str, url: str | None, method: str, limit_s: float
    ) -> tuple[str, str | None, int, bool, bool]:
        """Bridge the first caller in ``name``: (status, sid, duration, bridged, interrupted)."""
        queue = self.queue(name)
        leg.log.append(("Dial", f"queue:{name}"))
        deadline = self.clock.now() + limit_s
        dequeue: _Dequeue | None = None
        bridge: Bridge | None = None
        member: _Member | None = None
        try:
            while (member := queue.pop_waiting()) is None:
                if self.clock.now() >= deadline:
                    return "no-answer", None, 0, False, False
                await self._guard(
                    leg, _first(queue.joined.wait, lambda: self.clock.sleep_until(deadline))
                )
            dequeue = _Dequeue(
                leg, url, method, self.clock.now(), asyncio.get_running_loop().create_future()
            )
            member.outcome.set_result(dequeue)
            bridge = await self._guard(leg, asyncio.shield(dequeue.ready))
            if bridge is None:
                return "failed", member.leg.sid, 0, False, False
            await self._guard(leg, bridge.over.wait())
        except _Interrupted:
            if dequeue is not None and not dequeue.ready.done():
                dequeue.ready.set_result(None)
            if bridge is not None:
                self._end_bridge(bridge, leg._hangup_at)
                return "completed", bridge.b_sid, bridge.duration, True, True
            return "canceled", member.leg.sid if member else None, 0, False, True
        return "completed", member.leg.sid, bridge.duration, True, False

    async def _dial_targets(
        self,
        leg: Leg,
        doc: _Doc,
        targets: list[tuple[str, ET.Element | None]],
        caller_id: str,
        limit_s: float,
    ) -> tuple[str, str | None, int, bool, bool]:
        """Ring every target at once; the first to answer is bridged, the rest canceled."""
        children: list[Leg] = []
        for target, noun in targets:
            child = self._new_leg(
                from_=caller_id, to=target, direction="outbound-dial", parent_sid=leg.sid
            )
            if noun is not None and noun.get("statusCallback"):
                child.status_callback = self._resolve(doc, noun.get("statusCallback"))
                child.status_callback_method = noun.get("statusCallbackMethod", "POST")
                events = (noun.get("statusCallbackEvent") or "completed").split()
                child.status_events = frozenset(events)
            leg.log.append(("Dial", target))
            children.append(child)
        rings = [self._spawn(self._ring_child(child, limit_s)) for child in children]
        try:
            winner = await self._guard(leg, self._first_answer(rings))
        except _Interrupted:
            for task in rings:
                task.cancel()
            await asyncio.gather(*rings, return_exceptions=True)
            for child in children:
                child._final_status = child._final_status or "canceled"
                await self._finish(child)
            return "canceled", None, 0, False, True
        for task in rings:
            task.cancel()
        await asyncio.gather(*rings, return_exceptions=True)
        for child in children:
            if child is not winner and not child._finished:
                child._final_status = "canceled"
                await self._finish(child)
        if winner is None:
            statuses = [c._final_status or "no-answer" for c in children]
            status = next((s for s in ("busy", "failed") if s in statuses), "no-answer")
            if len(children) == 1:
                status = statuses[0]
            return status, children[0].sid if len(children) == 1 else None, 0, False, False
        bridge = self._bridge(leg, winner)
        try:
            await self._guard(leg, bridge.over.wait())
        except _Interrupted:
            self._end_bridge(bridge, leg._hangup_at)
            self.hangup(winner.sid, at=bridge.ended)
            return "completed", winner.sid, bridge.duration, True, True
        self.hangup(winner.sid, at=bridge.ended)
        return "completed", winner.sid, bridge.duration, True, False

    async def _ring_child(self, child: Leg, limit_s: float) -> Leg | None:
        child.status = "initiated"
        await self._progress(child, "initiated")
        child.status = "ringing"
        await self._progress(child, "ringing")
        callee = self.callee(child.to)
        child.script = callee.script
        result = await self._ring(child, callee, limit_s)
        if result != "answer":
            child._final_status = "busy" if result == "canceled" else result
            await self._finish(child)
            return None
        self._answer(child)
        child._passive = True
        await self._progress(child, "answered")
        self._talk_timer(child, callee)
        return child

    @staticmethod
    async def _first_answer(rings: list[asyncio.Task[Leg | None]]) -> Leg | None:
        for next_done in asyncio.as_completed(rings):
            child = await next_done
            if child is not None:
                return child
        return None

    # ------------------------------------------------------------------ Record
    def recording_url(self, recording_sid: str) -> str:
        """Where the REST fake serves a recording (no extension: WAV)."""
        return (
            f"{self.api_base}/{API_VERSION}/Accounts/{self.account_sid}/Recordings/{recording_sid}"
        )

    async def _record(self, leg: Leg, doc: _Doc, el: ET.Element, ctx: _Ctx) -> _Outcome:
        leg.log.append(("Record", _attrs(el)))
        script = leg.script
        max_length = _number(el.get("maxLength"), DEFAULT_MAX_RECORD)
        speaking = min(script.record_s, max_length)
        start = self.clock.now()
        started = datetime.now(UTC)
        hung_up = False
        digits = ""
        try:
            await self._guard(leg, self.clock.sleep_until(start + speaking))
            if script.record_s <= max_length:
                if script.record_end == "hangup":
                    self.hangup(leg.sid, at=start + speaking)
                    hung_up = True
                elif script.record_end in el.get("finishOnKey", "1234567890*#"):
                    digits = script.record_end
        except _Interrupted:
            if not leg.hanging_up:
                raise
            hung_up = True
        if hung_up:
            digits = "hangup"
        end = leg._hangup_at if hung_up and leg._hangup_at is not None else start + speaking
        recording = Recording(
            sid=new_sid("RE"),
            call_sid=leg.sid,
            duration=int(max(end - start, 0)),
            transcript=script.transcript,
            started=started,
        )
        self.recordings[recording.sid] = recording
        url = self.recording_url(recording.sid)
        params = {
            "RecordingUrl": url,
            "RecordingSid": recording.sid,
            "RecordingDuration": str(recording.duration),
            "Digits": digits,
        }
        status_cb = self._resolve(doc, el.get("recordingStatusCallback"))
        if status_cb:
            self._spawn(
                self._recording_status(
                    leg, recording, status_cb, el.get("recordingStatusCallbackMethod", "POST")
                )
            )
        transcribe_cb = self._resolve(doc, el.get("transcribeCallback"))
        if transcribe_cb and (_true(el.get("transcribe")) or el.get("transcribe") is None):
            self._spawn(self._transcription(leg, recording, transcribe_cb))
        action = self._resolve(doc, el.get("action")) or doc.url
        if hung_up:
            await self._notify(leg, action, el.get("method", "POST"), params, "action")
            return "hangup"
        return await self._then(leg, action, el.get("method", "POST"), params)

    async def _recording_status(
        self, leg: Leg, recording: Recording, url: str, method: str
    ) -> None:
        params = {
            "AccountSid": self.account_sid,
            "CallSid": leg.sid,
            "RecordingSid": recording.sid,
            "RecordingUrl": self.recording_url(recording.sid),
            "RecordingStatus": "completed",
            "RecordingDuration": str(recording.duration),
            "RecordingChannels": "1",
            "RecordingStartTime": format_datetime(recording.started),
            "RecordingSource": "RecordVerb",
            "RecordingTrack": "inbound",
        }
        await self._send(url, method, params, kind="recording-status", call_sid=leg.sid)

    async def _transcription(self, leg: Leg, recording: Recording, url: str) -> None:
        await asyncio.sleep(self.transcription_delay_s)  # transcriptions arrive later
        sid = new_sid("TR")
        params = self._params(leg) | {
            "TranscriptionSid": sid,
            "TranscriptionText": recording.transcript,
            "TranscriptionStatus": "completed",
            "TranscriptionUrl": (
                f"{self.api_base}/{API_VERSION}/Accounts/{self.account_sid}/Transcriptions/{sid}"
            ),
            "RecordingSid": recording.sid,
            "RecordingUrl": self.recording_url(recording.sid),
        }
        await self._send(url, "POST", params, kind="transcription", call_sid=leg.sid)
