"""SQLite calls made on the event loop's thread instead of aiosqlite's worker thread.

aiosqlite runs every call (cursor, execute, fetch, close, commit) on a worker thread and
hands the result back through the loop's self-pipe: four thread hand-offs per statement,
each costing more than the statement itself. A primary-key lookup or a one-row insert on a
local WAL database takes a few microseconds; a hand-off takes tens, plus contention for the
GIL. So the hub's SQLite connection runs its calls inline.

What could stall the loop, and how it doesn't:

- *Waiting for a lock* held by another process (a CLI writing to the same file). The
  connection's busy timeout is zero, so SQLite answers SQLITE_BUSY at once; the call is
  retried after an ``asyncio.sleep`` with backoff until ``lock_timeout_s`` has passed. A
  statement that failed with SQLITE_BUSY did not run, so running it again is safe.
- *Long reads* (reports over months of events): those go through a second engine with
  the stock threaded driver (``storage.db.create_read_engine``).
- *Commit*: in WAL mode with ``synchronous=NORMAL`` a commit appends to the log without an
  fsync. Checkpoints (copying the log into the database file) do sync, and a busy disk can
  make that take a second; so this connection never checkpoints by itself
  (``wal_autocheckpoint=0``) and, every ``CHECKPOINT_EVERY`` commits, a checkpoint runs on
  a thread of the loop's executor with a connection of its own (passive, plus a RESTART
  when the log has grown long: see ``checkpoint``).

Connecting and closing still go through aiosqlite's thread (its own code paths), which is
why the sqlite3 connection is opened with ``check_same_thread=False``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite

BUSY_FIRST_WAIT_S = 0.001
BUSY_MAX_WAIT_S = 0.05
CHECKPOINT_EVERY = 100  # commits; about SQLite's own 1,000-page default for our transactions
WAL_RESTART_FRAMES = 4096  # pages in the log (~16 MB) before it is made to start over
RESTART_WAIT_MS = 20  # how long a RESTART checkpoint may hold writers back for readers
WAL_SIZE_LIMIT = 32 << 20  # bytes a restarted log file is trimmed to (journal_size_limit)


def _is_busy(err: sqlite3.OperationalError) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(err) or "busy" in str(err)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose statements run on the calling (loop) thread."""

    lock_timeout_s: float = 30.0
    database: str = ""
    _commits: int = 0
    _checkpoint: asyncio.Future[None] | None = None

    async def commit(self) -> None:
        await super().commit()
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and self.database not in ("", ":memory:"):
            running = self._checkpoint is not None and not self._checkpoint.done()
            if not running:
                self._commits = 0
                loop = asyncio.get_running_loop()
                self._checkpoint = loop.run_in_executor(None, checkpoint, self.database)

    async def checkpointed(self) -> bool:
        """Wait for the checkpoint in progress, if any; False when none was ever started."""
        if self._checkpoint is None:
            return False
        with contextlib.suppress(sqlite3.Error):
            await self._checkpoint
        return True

    async def close(self) -> None:
        await self.checkpointed()
        await super().close()

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as err:
            if not _is_busy(err):
                raise
        return await self._retry_busy(partial(fn, *args, **kwargs))

    async def _retry_busy(self, call: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self.lock_timeout_s
        wait = BUSY_FIRST_WAIT_S
        while True:
            await asyncio.sleep(wait)
            try:
                return call()
            except sqlite3.OperationalError as err:
                if not _is_busy(err) or time.monotonic() >= deadline:
                    raise
            wait = min(wait * 2, BUSY_MAX_WAIT_S)


def checkpoint(database: str) -> None:
    """Copy what the write-ahead log holds into the database file (blocking: run it off the
    loop), and keep the log from growing without bound.

    The log starts over from its beginning only when a writer begins while every frame of
    it is copied. Under steady traffic that moment did not come after passive checkpoints,
    and the log grew by 6-11 MB/s at 200 messages/s. So once the log holds more than
    ``WAL_RESTART_FRAMES``, a RESTART checkpoint follows the passive one: it holds new
    writes back while it copies the few frames committed since and syncs, and the next
    commit starts the log over (``journal_size_limit`` trims the file). Our writers see
    SQLITE_BUSY meanwhile and wait on the loop (``InlineConnection._retry_busy``).
    """
    conn = sqlite3.connect(database, timeout=5)
    try:
        busy, logged, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if not busy and logged > WAL_RESTART_FRAMES:
            # While it waits for readers of older snapshots, RESTART holds writers back: a
            # report reading for seconds must not hold ingest up that long. It gives up
            # after a short wait instead, and the next checkpoint tries again.
            conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
    finally:
        conn.close()


def connect(database: str, *, lock_timeout_s: float = 30.0, **kwargs: Any) -> InlineConnection:
    """Like ``aiosqlite.connect``, for SQLAlchemy's ``async_creator_fn`` hook."""
    kwargs["check_same_thread"] = False
    kwargs["timeout"] = 0  # never wait inside SQLite: see the module docstring

    def connector() -> sqlite3.Connection:
        conn: sqlite3.Connection = sqlite3.connect(database, **kwargs)
        return conn

    conn = InlineConnection(connector, iter_chunk_size=64)
    conn.lock_timeout_s = lock_timeout_s
    conn.database = database
    conn._thread.daemon = True
    return conn
