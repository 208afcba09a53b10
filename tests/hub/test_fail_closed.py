"""The hub refuses to start unsafe: channel secrets missing, demo logins outside demo mode."""

from __future__ import annotations

import subprocess
from pathlib import Path

import aiohttp
import pytest

from contract.testing import free_port
from tests.hub.test_cli_serve import HUB, hub_env


def _run(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HUB, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _migrated(tmp_path: Path) -> dict[str, str]:
    env = hub_env(f"sqlite+aiosqlite:///{tmp_path}/hub.db", free_port())
    assert _run(["migrate"], env).returncode == 0
    return env


def test_serve_refuses_twilio_without_its_auth_token(tmp_path: Path) -> None:
    env = _migrated(tmp_path)
    env["HUB_TWILIO_ACCOUNT_SID"] = "AC" + "0" * 32
    env["HUB_TWILIO_AUTH_TOKEN"] = ""
    out = _run(["serve"], env, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "hub: missing setting HUB_TWILIO_AUTH_TOKEN: required when HUB_TWILIO_ACCOUNT_SID is set"
    ]
    assert "listening" not in out.stdout


def test_serve_refuses_telegram_without_its_secret_token(tmp_path: Path) -> None:
    env = _migrated(tmp_path)
    env["HUB_TELEGRAM_BOT_TOKEN"] = "123:abc"
    out = _run(["serve"], env, timeout=60)
    assert out.returncode == 2
    assert "HUB_TELEGRAM_SECRET_TOKEN" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_hub_demo_refuses_outside_demo_mode_and_creates_nothing(tmp_path: Path) -> None:
    env = _migrated(tmp_path)
    out = _run(["demo"], env)
    assert out.returncode == 2
    assert "HUB_DEMO=true" in out.stderr
    # Nothing was seeded: a real admin can still be created under the name "admin".
    env["HUB_NEW_USER_PASSWORD"] = "a real long password"
    made = _run(["create-user", "admin", "--role", "admin"], env)
    assert made.returncode == 0, made.stderr


@pytest.mark.slow
def test_demo_logins_stop_serve_outside_demo_mode_until_deactivated(tmp_path: Path) -> None:
    env = _migrated(tmp_path)
    seeded = _run(["demo"], {**env, "HUB_DEMO": "true"})
    assert seeded.returncode == 0, seeded.stderr
    out = _run(["serve"], env, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "demo accounts" in lines[0]
    assert "hub demo --deactivate" in lines[0]
    assert "listening" not in out.stdout

    off = _run(["demo", "--deactivate"], env)
    assert off.returncode == 0, off.stderr
    assert "deactivated 8 demo accounts" in off.stdout

    # Now it serves, and the published password opens nothing.
    with subprocess.Popen(
        [*HUB, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as proc:
        try:
            assert _login_status(env["HUB_PUBLIC_URL"], "admin", "demo-pass") == 401
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def _login_status(base: str, username: str, password: str) -> int:
    import asyncio

    async def go() -> int:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"{base}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            async with session.post(
                f"{base}/login", json={"username": username, "password": password}
            ) as r:
                return r.status

    return asyncio.run(go())
