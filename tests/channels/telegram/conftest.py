"""Telegram test fixtures: the fake Bot API on 127.0.0.1 and fixture loading."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from channels.telegram.testing.fake_api import FakeTelegram, start_fake_telegram

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET = "hub-secret_0123456789"
OLIVIA = 700100201


def fixture_bytes(name: str) -> bytes:
    """The raw bytes of ``fixtures/update__<name>.json``, exactly as Telegram posts them."""
    return (FIXTURES / f"update__{name}.json").read_bytes()


def fixture_json(name: str) -> dict[str, Any]:
    """``fixtures/update__<name>.json`` decoded."""
    data: dict[str, Any] = json.loads(fixture_bytes(name))
    return data


@pytest.fixture
async def fake_telegram() -> AsyncIterator[tuple[FakeTelegram, str]]:
    """The fake Bot API (serving ``TOKEN``) and its base URL, stopped after the test."""
    fake, base_url = await start_fake_telegram(TOKEN)
    yield fake, base_url
    await fake.stop()
