"""Shared fixtures: real SQLite and PostgreSQL databases, the hub app, an API client.

Every test gets an empty, migrated database of its own. PostgreSQL tests use a database
created for this test run (dropped at the end); with CI=true a missing server fails the
run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from config.settings import Settings, load_settings
from server.app import create_app
from storage.db import migrate_sync

PG_ADMIN_URL = os.environ.get("HUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
API_TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
ARTIFACTS = Path(__file__).parent / "artifacts"


def in_thread(fn: Callable[[], Any]) -> Any:
    """Run blocking code that starts its own event loop (asyncpg admin, Alembic) off-loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def _require_service(name: str, err: BaseException) -> None:
    if CI:
        pytest.fail(f"{name} is required on CI but unreachable: {err}")
    pytest.skip(f"{name} not reachable: {err}")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file copied for each test (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    in_thread(lambda: migrate_sync(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test run, migrated once; dropped at the end."""
    name = f"hubtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        in_thread(lambda: asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"')))
    except Exception as err:
        _require_service("PostgreSQL", err)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    in_thread(lambda: migrate_sync(url))
    yield url
    in_thread(lambda: asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


async def _truncate_pg(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname='public' "
                "AND tablename NOT IN ('alembic_version', 'stream_head')"
            )
        ]
        await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        await conn.execute("UPDATE stream_head SET seq = 0")
    finally:
        await conn.close()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh migrated SQLite database for this test."""
    path = tmp_path / "hub.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The run's PostgreSQL database, emptied for this test."""
    in_thread(lambda: asyncio.run(_truncate_pg(pg_database)))
    return pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Test settings: the given database, a fixed API token, no SMTP listener unless asked."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "api_token": API_TOKEN,
        "public_url": "http://127.0.0.1:8080",
        "smtp_enabled": False,
        "outbox_base_delay_s": 0.05,
        "outbox_max_delay_s": 0.2,
    }
    values.update(overrides)
    return load_settings(**values)


ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def hub_client(aiohttp_client: Any, sqlite_url: str) -> ClientFactory:
    """``await hub_client(**setting_overrides)``: a test client over ``create_app`` on SQLite
    (pass ``database_url=`` for another database)."""

    async def factory(**overrides: Any) -> TestClient[Any, Any]:
        overrides.setdefault("database_url", sqlite_url)
        client: TestClient[Any, Any] = await aiohttp_client(create_app(make_settings(**overrides)))
        return client

    return factory


@pytest.fixture
async def api(hub_client: ClientFactory) -> TestClient[Any, Any]:
    """A ready client over the hub on a fresh SQLite database."""
    return await hub_client()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where browser tests save screenshots (not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> str:
    """The test Redis (fails on CI, skips elsewhere, when it is not running)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as err:
        _require_service("Redis", err)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this test alone; its keys are deleted afterwards."""
    import redis

    prefix = f"hubtest:{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    except Exception as err:  # cleanup of a test's keys is best effort
        print(f"redis keys of {prefix} left: {err}")
    finally:
        client.close()
