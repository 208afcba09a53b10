"""WeChat test fixtures: the fake API on 127.0.0.1, the account's settings, fixture loading."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from channels.wechat.testing.fake_api import FakeWeChat

FIXTURES = Path(__file__).parent / "fixtures"
APP_ID = "wx5823bf96d3bd56c7"
APP_SECRET = "3a5c1e0b8f6d4e2a9b7c5d3e1f0a2b4c"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
OLD_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OPENID = "oWx1a2b3c4d5e6f7g8h9i0jk"


def fixture(name: str) -> bytes:
    """The bytes of ``fixtures/push__<name>.xml``, as WeChat posts them."""
    return (FIXTURES / f"push__{name}.xml").read_bytes()


def section(api_base: str, **extra: str) -> dict[str, dict[str, str]]:
    """The ``channels`` setting with a WeChat section pointing at the fake."""
    values = {"app_id": APP_ID, "app_secret": APP_SECRET, "token": TOKEN, "api_base": api_base}
    values.update(extra)
    return {"wechat": values}


@pytest.fixture
async def fake_wechat() -> AsyncIterator[FakeWeChat]:
    fake = FakeWeChat(app_id=APP_ID, app_secret=APP_SECRET)
    await fake.start()
    yield fake
    await fake.stop()
