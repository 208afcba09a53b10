"""SQLite on the loop's thread: locks held elsewhere are waited for without stalling the loop,
and a flush of many new rows goes out as one INSERT whose ids line up with the objects."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import delete, event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import sqlite_inline
from storage.db import create_engine, create_read_engine, migrate_sync, session_factory
from storage.models import Customer
from tests.conftest import in_thread


async def _ticking(ticks: list[float]) -> None:
    while True:
        ticks.append(time.monotonic())
        await asyncio.sleep(0.005)


async def test_a_write_waits_for_another_process_lock_while_the_loop_runs(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (a INTEGER)"))
    other = sqlite3.connect(path, isolation_level=None)  # stands in for another process
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (0)")
    ticks: list[float] = []
    ticker = asyncio.create_task(_ticking(ticks))

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))

    writer = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not writer.done(), "the write went through while another connection held the lock"
    # The loop kept turning while the write waited: no gap between ticks near the wait.
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) >= 20, f"loop stalled: {len(ticks)} ticks in 0.3 s"
    assert max(gaps) < 0.1, f"loop stalled for {max(gaps):.3f} s"
    other.execute("COMMIT")
    await asyncio.wait_for(writer, 5)
    ticker.cancel()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT a FROM t ORDER BY a"))).scalars().all() == [0, 1]
    other.close()
    await engine.dispose()


async def test_a_lock_never_released_fails_after_the_lock_timeout(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("CREATE TABLE t (a INTEGER)")
    setup.execute("BEGIN IMMEDIATE")
    conn = await sqlite_inline.connect(str(path), lock_timeout_s=0.2, isolation_level=None)
    try:
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await conn.execute("BEGIN IMMEDIATE")
        assert 0.2 <= time.monotonic() - started < 2.0
    finally:
        await conn.close()
        setup.close()


async def test_many_new_rows_are_one_insert_with_ids_in_order(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    in_thread(lambda: migrate_sync(url))
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():
        s.add_all([Customer(display_name=f"old {i}") for i in range(5)])
    async with sessions() as s, s.begin():
        # Holes below the top id: new ids still come as max + 1, row after row.
        await s.execute(delete(Customer).where(Customer.display_name.in_(["old 1", "old 3"])))
    inserts: list[str] = []

    def record(_conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO customers"):
            inserts.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    names = [f"new {i}" for i in range(40)]
    async with sessions() as s, s.begin():
        rows = [Customer(display_name=name) for name in names]
        s.add_all(rows)
        await s.flush()
        ids = [row.id for row in rows]
    assert len(inserts) == 1
    assert ids == sorted(ids)
    assert len(set(ids)) == 40
    async with sessions() as s:
        stored = dict((await s.execute(select(Customer.id, Customer.display_name))).all())
    assert [stored[i] for i in ids] == names
    await engine.dispose()


def test_long_reads_get_a_threaded_engine_only_where_it_helps(tmp_path: Path) -> None:
    assert create_read_engine("postgresql+asyncpg://u@h/db") is None
    assert create_read_engine("sqlite+aiosqlite:///:memory:") is None
    reader = create_read_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    assert reader is not None
    creator = reader.sync_engine.dialect.create_connect_args(reader.sync_engine.url)[1]
    assert "async_creator_fn" not in creator


async def test_checkpoints_run_off_the_loop_every_so_many_commits(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    conn = await sqlite_inline.connect(str(path), isolation_level=None)
    try:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA wal_autocheckpoint=0")
        await conn.execute("CREATE TABLE t (a INTEGER)")
        for i in range(sqlite_inline.CHECKPOINT_EVERY):
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO t VALUES (?)", (i,))
            await conn.commit()
        assert await cast(sqlite_inline.InlineConnection, conn).checkpointed()
        # The database file itself (the log ignored) now holds every committed row.
        main_file = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            (count,) = main_file.execute("SELECT count(*) FROM t").fetchone()
        finally:
            main_file.close()
        assert count == sqlite_inline.CHECKPOINT_EVERY
    finally:
        await conn.close()


async def _engine_with_table(path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)"))
    return engine


async def test_the_log_starts_over_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits that never pause must not grow the write-ahead log without bound."""
    monkeypatch.setattr(sqlite_inline, "WAL_RESTART_FRAMES", 300)
    path = tmp_path / "steady.db"
    engine = await _engine_with_table(path)
    commits = 30 * sqlite_inline.CHECKPOINT_EVERY
    for i in range(commits):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (b) VALUES (:b)"), {"b": f"{i:04d}" * 500})
        await asyncio.sleep(0)  # one turn of the loop, as between a hub's transactions
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        await cast(sqlite_inline.InlineConnection, raw.driver_connection).checkpointed()
        count = await conn.scalar(text("SELECT count(*) FROM t"))
        # Measured while the engine is open: closing the last connection empties the log.
        probe = sqlite3.connect(path)
        try:
            _busy, logged, _copied = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            probe.close()
    await engine.dispose()
    assert count == commits
    # Each commit adds at least a page to the log: 3,000 pages if it never started over.
    assert logged < 3 * 300, f"the log holds {logged} pages after {commits} commits"


async def test_a_long_read_does_not_make_a_restart_hold_writes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_inline, "WAL_RESTART_FRAMES", 10)
    path = tmp_path / "reader.db"
    engine = await _engine_with_table(path)

    async def write(n: int) -> None:
        for _ in range(n):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (b) VALUES ('x')"))

    await write(30)
    report = sqlite3.connect(path)  # a long report: its snapshot stays open
    report.execute("BEGIN")
    report.execute("SELECT count(*) FROM t").fetchone()
    await write(1)  # the report's snapshot is now an older one
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    await loop.run_in_executor(None, sqlite_inline.checkpoint, str(path))
    took = time.monotonic() - started
    await asyncio.wait_for(write(1), 2)
    report.rollback()
    report.close()
    await engine.dispose()
    # The RESTART gave up on the report instead of holding writers back until it ended.
    assert took < 1.0, f"the checkpoint waited {took:.2f} s for a reader"
