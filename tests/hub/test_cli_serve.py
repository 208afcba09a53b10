"""`hub migrate` then `hub serve` as real processes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from contract.testing import free_port

HUB = [sys.executable, "-m", "server.cli"]
ROOT = Path(__file__).resolve().parents[2]


def hub_env(database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=database_url,
        HUB_API_TOKEN="serve-token",
        HUB_HTTP_PORT=str(port),
        HUB_PUBLIC_URL=f"http://127.0.0.1:{port}",
        HUB_SMTP_ENABLED="false",
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture
def served(db_url: str) -> Iterator[str]:
    port = free_port()
    env = hub_env(db_url, port)
    migrate = subprocess.run(
        [*HUB, "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "database migrated" in migrate.stdout
    proc = subprocess.Popen(
        [*HUB, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


async def wait_ready(session: aiohttp.ClientSession, base: str) -> None:
    for _ in range(300):
        try:
            async with session.get(f"{base}/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("hub did not become ready")


async def test_served_hub_keeps_the_inbound_contract(served: str) -> None:
    auth = {"Authorization": "Bearer serve-token"}
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, served)
        body = {"from": "+12025550143", "name": "Zoe", "text": "hello", "external_id": "s-1"}
        async with session.post(f"{served}/api/v1/inbound", json=body, headers=auth) as r:
            assert r.status == 201
            ids = await r.json()
        async with session.post(f"{served}/api/v1/inbound", json=body, headers=auth) as r:
            assert r.status == 200
            assert await r.json() == ids
        async with session.post(
            f"{served}/api/v1/inbound",
            data=b"{",
            headers={**auth, "Content-Type": "application/json"},
        ) as r:
            assert r.status == 400
        async with session.post(f"{served}/api/v1/inbound", json=body) as r:
            assert r.status == 401
        async with session.get(
            f"{served}/api/v1/customers/{ids['customer_id']}/history", headers=auth
        ) as r:
            items = (await r.json())["items"]
        assert [m["text"] for m in items] == ["hello"]
        async with session.get(f"{served}/api/v1/events?after=0", headers=auth) as r:
            assert (await r.json())["head"] == 3


def test_a_wrong_setting_fails_at_start_with_one_line_naming_it(tmp_path: Path) -> None:
    env = hub_env(f"sqlite+aiosqlite:///{tmp_path}/x.db", free_port())
    env["HUB_HTTP_PORT"] = "eighty"
    out = subprocess.run(
        [*HUB, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "hub: invalid setting HUB_HTTP_PORT: Input should be a valid integer, unable to parse "
        "string as an integer (got 'eighty')"
    ]
    env = hub_env(f"sqlite+aiosqlite:///{tmp_path}/x.db", free_port())
    del env["HUB_API_TOKEN"]
    out = subprocess.run(
        [*HUB, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 2
    assert "HUB_API_TOKEN" in out.stderr


def test_serve_on_an_unmigrated_database_says_to_run_migrate(tmp_path: Path) -> None:
    env = hub_env(f"sqlite+aiosqlite:///{tmp_path}/empty.db", free_port())
    out = subprocess.run(
        [*HUB, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 2
    assert "run `hub migrate`" in out.stderr


def test_serve_on_another_port_prints_that_port_in_every_url(tmp_path: Path) -> None:
    port = free_port()
    env = hub_env(f"sqlite+aiosqlite:///{tmp_path}/hub.db", port)
    del env["HUB_PUBLIC_URL"]  # derived from the bind address and port
    migrate = subprocess.run(
        [*HUB, "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert migrate.returncode == 0, migrate.stderr
    with subprocess.Popen(
        [*HUB, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(3)]
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    printed = "".join(lines)
    assert f"http://127.0.0.1:{port}/console" in printed
    assert f"http://127.0.0.1:{port}/api/openapi.json" in printed
    assert ":8080" not in printed
