"""Mail parsing in worker processes: a slow or hostile mail never holds the hub's event loop."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from functools import partial

from channels.email.payloads import ParsedEmail, parse_email

logger = logging.getLogger(__name__)


class ParseTimeout(Exception):
    """A mail took longer than the parse time limit; its worker was killed."""


class ParsePool:
    """A small pool of parsing processes, started on first use and replaced after a kill.

    Processes rather than threads: a thread parsing 1 MiB of tag soup still takes the GIL from
    the event loop, and a stuck one cannot be stopped.
    """

    def __init__(self, *, workers: int, timeout: float) -> None:
        self.workers = workers
        self.timeout = timeout
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: forking the hub itself would copy its threads' locks (aiosqlite).
            context = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self._pool

    async def parse(
        self, raw: bytes, *, attachment_max_bytes: int, mail_from: str | None
    ) -> ParsedEmail:
        """``parse_email`` in a worker; ParseTimeout past the limit (queueing included)."""
        pool = self._executor()
        job = partial(
            parse_email, raw, attachment_max_bytes=attachment_max_bytes, mail_from=mail_from
        )
        future = asyncio.get_running_loop().run_in_executor(pool, job)
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            logger.warning("email: parsing %d bytes took over %ss", len(raw), self.timeout)
            # The other mails in flight on this pool fail too (451, their senders retry).
            self._kill(pool)
            raise ParseTimeout from None

    def _kill(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
        processes = getattr(pool, "_processes", None) or {}
        for process in list(processes.values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        """Stop the workers (waiting for them off the loop)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
