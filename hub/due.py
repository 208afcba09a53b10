"""A background worker over rows that fall due: claim a batch, work each in its own task
(bounded), sleep until the next is due or something wakes it. The outbox and the media
fetcher are both one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import MutableSet

from hub.supervise import Loop


class DueWorker:
    """Subclasses say what is due (``_claim``, ``_next_due_in``) and what to do (``_work``)."""

    batch = 32
    concurrency = 8
    # Wake the loop after each finished item (its failure may have scheduled a sooner try).
    wake_after_each = False

    def __init__(self, running: MutableSet[DueWorker]) -> None:
        self._running = running  # the module's set of live workers, for its wake_all()
        self._wake = asyncio.Event()
        self._sem = asyncio.Semaphore(self.concurrency)
        self._inflight: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, health: Loop | None = None) -> None:
        """Work due rows until cancelled; an error ends the run (its supervisor restarts it).
        ``health`` hears of every claim that worked."""
        self._running.add(self)
        try:
            await self._start()
            while True:
                self._wake.clear()
                claimed = await self._claim()
                if health is not None:
                    health.ok()
                for row_id in claimed:
                    await self._sem.acquire()
                    task = asyncio.create_task(self._work(row_id))
                    self._inflight.add(task)
                    task.add_done_callback(self._done)
                if len(claimed) == self.batch:
                    continue
                delay = await self._next_due_in()
                with contextlib.suppress(TimeoutError):
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                    # cancellation that lands as the wait ends, and the loop would not stop.
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
        finally:
            self._running.discard(self)
            # Let work in flight record its outcome before the engine goes away; a cancelled
            # half-written transaction would leave the database driver hanging.
            if self._inflight:
                await asyncio.wait(tuple(self._inflight), timeout=10)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._sem.release()
        if self.wake_after_each:
            self.wake()

    async def drain(self) -> None:
        """Wait until every item in flight has finished (tests, shutdown)."""
        while self._inflight:
            await asyncio.wait(tuple(self._inflight))

    async def _start(self) -> None:
        """Once, before the first claim."""

    async def _claim(self) -> list[int]:
        raise NotImplementedError

    async def _next_due_in(self) -> float:
        raise NotImplementedError

    async def _work(self, row_id: int) -> None:
        raise NotImplementedError
