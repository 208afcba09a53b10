"""Start the hub (or a baseline app) as a separate process for benchmarks."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from contract.testing import free_port

ROOT = Path(__file__).resolve().parents[1]


async def wait_ready(url: str, limit_s: float = 60.0) -> None:
    async with aiohttp.ClientSession() as session, asyncio.timeout(limit_s):
        while True:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


@asynccontextmanager
async def hub_process(
    env_extra: dict[str, str], database_url: str | None = None
) -> AsyncIterator[str]:
    """Migrate a fresh SQLite database (unless one is given) and run ``hub serve``."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(
            HUB_DATABASE_URL=database_url or f"sqlite+aiosqlite:///{tmp}/bench.db",
            HUB_API_TOKEN="bench-token",
            HUB_HTTP_PORT=str(port),
            HUB_PUBLIC_URL=f"http://127.0.0.1:{port}",
            HUB_SMTP_ENABLED="false",
            HUB_LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
        )
        env.update(env_extra)
        cmd = [sys.executable, "-m", "server.cli"]
        subprocess.run([*cmd, "migrate"], env=env, check=True, capture_output=True)
        proc = subprocess.Popen([*cmd, "serve"], env=env, stdout=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(f"{base}/readyz")
            yield base
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[Any]) -> None:
    """Ask a child to end; kill it if it has not within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
