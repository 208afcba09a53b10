"""Database engine creation and migrations, the same code for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.compiler import InsertmanyvaluesSentinelOpts

from storage import sqlite_inline

MIGRATIONS = Path(__file__).with_name("migrations")


def is_sqlite(url: str) -> bool:
    """True for a SQLite database URL."""
    return url.startswith("sqlite")


def create_engine(
    url: str, *, pool_size: int = 10, inline: bool = True, application_name: str = "hub"
) -> AsyncEngine:
    """An async engine tuned per backend.

    SQLite allows one writer at a time; a single pooled connection in WAL mode serializes
    transactions in-process instead of failing them with "database is locked". Its calls run
    on the loop's thread (``storage.sqlite_inline``) unless ``inline`` is false, which keeps
    aiosqlite's worker thread for engines that run long reads.
    """
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        connect_args: dict[str, Any] = {"timeout": 30}
        pragmas = ["busy_timeout=30000"]
        if inline:
            connect_args = {"async_creator_fn": sqlite_inline.connect}
            pragmas = [  # see storage.sqlite_inline
                "busy_timeout=0",
                "wal_autocheckpoint=0",
                f"journal_size_limit={sqlite_inline.WAL_SIZE_LIMIT}",
            ]
        engine = create_async_engine(
            url, pool_size=1, max_overflow=0, pool_timeout=120, connect_args=connect_args
        )
        # SQLite numbers the rows of one multi-row INSERT in VALUES order (an INTEGER PRIMARY
        # KEY takes max + 1 row by row), so RETURNING rows sorted by id line up with the
        # parameters. Telling SQLAlchemy so lets a flush of many new rows that need their
        # ids back go out as one statement instead of one per row.
        engine.sync_engine.dialect.insertmanyvalues_implicit_sentinel = (
            InsertmanyvaluesSentinelOpts.AUTOINCREMENT
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_conn.cursor()
            # WAL + NORMAL is durable against process crashes (kill -9), which is the promise.
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "foreign_keys=ON",
                *pragmas,
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        return engine
    # PostgreSQL shows each process's connections under its name (pg_stat_activity).
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=60,
        # A database that does not answer fails a connect in 10 s rather than asyncpg's 60.
        connect_args={
            "server_settings": {"application_name": application_name[:63]},
            "timeout": 10,
        },
    )


def create_read_engine(url: str) -> AsyncEngine | None:
    """A second engine for long reads (reports, exports), or None where one is not needed.

    The main SQLite engine runs statements on the loop's thread; a report scanning months of
    events would hold the loop for its whole run, so such reads go through a connection on
    aiosqlite's worker thread instead (WAL readers never block the writer). PostgreSQL's
    driver is asynchronous already, and an in-memory database cannot be shared.
    """
    if not is_sqlite(url) or make_url(url).database in (None, "", ":memory:"):
        return None
    return create_engine(url, inline=False)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate_sync(url: str, revision: str = "heads") -> None:
    """Upgrade the database to ``revision`` (blocking; used by the CLI and tests)."""
    from alembic import command

    command.upgrade(_alembic_config(url), revision)


async def migrate(url: str, revision: str = "heads") -> None:
    """Upgrade the database without blocking the running loop."""
    await asyncio.to_thread(migrate_sync, url, revision)


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database cannot answer a trivial query."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
