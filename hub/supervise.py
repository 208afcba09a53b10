"""Supervised background loops: restarted with backoff after an error, their health visible.

Every loop that keeps the hub working (router, outbox, media fetch, rollups, fan-out, the
stream poll) runs under a ``Supervisor``. A loop that raises is logged and started again
after a growing pause (0.5 s doubling to 5 s), so a database restart or a Redis outage
costs a few retries, never the loop. Loops that catch their own errors report them with
``Loop.failed`` and their recovery with ``Loop.ok``. ``/readyz`` and ``/metrics`` read
``Supervisor.loops``: a loop whose last attempt failed makes the process not ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

logger = logging.getLogger(__name__)

LoopState = Literal["starting", "ok", "failing", "standby", "stopped"]
BACKOFF_FIRST_S = 0.5
# Low: a failing round is cheap, and readiness returns only once the loop has worked again.
BACKOFF_CAP_S = 5.0


@dataclass(slots=True)
class Loop:
    """One supervised loop's health."""

    name: str
    state: LoopState = "starting"
    restarts: int = 0
    last_error: str = ""
    failures: int = 0  # consecutive, for the backoff
    since: float = field(default_factory=time.monotonic)
    on_failure: Callable[[str], None] | None = None
    backoff_cap_s: float = BACKOFF_CAP_S

    def ok(self) -> None:
        """The loop did a round of its work."""
        if self.state != "ok":
            self.state = "ok"
            self.since = time.monotonic()
        self.failures = 0

    def standby(self) -> None:
        """The loop waits for something that is not an error (a lease another process holds)."""
        if self.state != "standby":
            self.state = "standby"
            self.since = time.monotonic()
        self.failures = 0

    def failed(self, err: BaseException) -> None:
        """A round failed; the loop carries on (or is restarted) after a backoff."""
        self.state = "failing"
        self.failures += 1
        self.last_error = f"{type(err).__name__}: {err}"[:300]
        self.since = time.monotonic()
        if self.on_failure is not None:
            self.on_failure(self.name)

    @property
    def healthy(self) -> bool:
        return self.state != "failing"

    def backoff_s(self) -> float:
        """The pause before the next try after ``failures`` failures in a row."""
        return float(min(self.backoff_cap_s, BACKOFF_FIRST_S * 2.0 ** max(0, self.failures - 1)))

    def as_json(self) -> dict[str, object]:
        return {"state": self.state, "restarts": self.restarts, "last_error": self.last_error}


LoopBody = Callable[[Loop], Awaitable[None]]


class Supervisor:
    """Runs named loops for the app's lifetime and restarts the ones that fail."""

    def __init__(self, on_failure: Callable[[str], None] | None = None) -> None:
        self.loops: dict[str, Loop] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._on_failure = on_failure

    def spawn(self, name: str, body: LoopBody, *, backoff_cap_s: float = BACKOFF_CAP_S) -> Loop:
        """Run ``body(loop)`` until cancelled; an exception restarts it after a backoff
        (doubling up to ``backoff_cap_s``)."""
        if name in self._tasks:
            raise RuntimeError(f"loop {name!r} already runs")
        loop = self.loops.get(name) or Loop(name, on_failure=self._on_failure)
        loop.backoff_cap_s = backoff_cap_s
        self.loops[name] = loop
        self._tasks[name] = asyncio.create_task(self._supervise(loop, body), name=name)
        return loop

    def track(self, name: str) -> Loop:
        """The health of a loop this supervisor does not run itself (it reports in)."""
        loop = self.loops.get(name)
        if loop is None:
            loop = self.loops[name] = Loop(name, on_failure=self._on_failure)
        return loop

    async def _supervise(self, loop: Loop, body: LoopBody) -> None:
        while True:
            try:
                await body(loop)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                loop.failed(err)
                loop.restarts += 1
                delay = loop.backoff_s()
                logger.exception("loop %s failed; restarting in %.1f s", loop.name, delay)
                await asyncio.sleep(delay)
                continue
            loop.state = "stopped"
            return

    async def stop(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if name in self.loops:
            self.loops[name].state = "stopped"

    async def stop_all(self) -> None:
        for name in reversed(list(self._tasks)):
            await self.stop(name)

    def failing(self) -> list[str]:
        return sorted(name for name, loop in self.loops.items() if not loop.healthy)


async def pause_after_failure(loop: Loop, err: BaseException, what: str) -> None:
    """For loops that survive their own errors: record, log, and wait out the backoff."""
    loop.failed(err)
    delay = loop.backoff_s()
    logger.warning("%s failed (%s); retrying in %.1f s", what, loop.last_error, delay)
    await asyncio.sleep(delay)
