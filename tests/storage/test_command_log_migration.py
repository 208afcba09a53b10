"""Migration 0007 carries the old ``command_results`` rows into ``command_log`` and back."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import MIGRATIONS
from tests.conftest import PG_ADMIN_URL, _pg_admin, _require_service, in_thread

WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def alembic(url: str, action: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    in_thread(lambda: getattr(command, action)(cfg, revision))


async def execute(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own (migrated up and down, so never the shared one)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"hubmig_{uuid.uuid4().hex[:10]}"
    try:
        in_thread(lambda: asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"')))
    except Exception as err:
        _require_service("PostgreSQL", err)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    in_thread(lambda: asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


async def test_old_results_stay_answers_after_0007_and_go_back_on_downgrade(
    empty_url: str,
) -> None:
    alembic(empty_url, "upgrade", "0006")
    insert = (
        "INSERT INTO command_results (agent_id, client_msg_id, result, created_at) "
        "VALUES (:agent, :key, :result, :at)"
    )
    await execute(empty_url, insert, agent=7, key="m-1", result='{"message_id": 41}', at=WHEN)
    await execute(empty_url, insert, agent=7, key="s-1", result='{"state": "away"}', at=WHEN)

    alembic(empty_url, "upgrade", "0007")
    rows = await execute(
        empty_url, "SELECT actor, key, command, result FROM command_log ORDER BY key"
    )
    got = [(r[0], r[1], r[2], r[3] if isinstance(r[3], dict) else json.loads(r[3])) for r in rows]
    assert got == [
        ("agent:7", "m-1", "message", {"message_id": 41}),
        ("agent:7", "s-1", "", {"state": "away"}),
    ]
    await execute(
        empty_url,
        "INSERT INTO command_log (actor, key, command, result, created_at) "
        "VALUES ('agent:9', 'r-1', 'reject', '{}', :at)",
        at=WHEN,
    )

    alembic(empty_url, "downgrade", "0006")
    back = await execute(
        empty_url, "SELECT agent_id, client_msg_id FROM command_results ORDER BY client_msg_id"
    )
    assert [tuple(r) for r in back] == [(7, "m-1"), (9, "r-1"), (7, "s-1")]
