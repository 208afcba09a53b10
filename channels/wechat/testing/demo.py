"""WeChat in ``make run``: a local fake of WeChat's API and followers' signed pushes."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from channels.wechat.const import SETTINGS_SECTION
from channels.wechat.testing.fake_api import FakeWeChat
from channels.wechat.testing.simulator import wechat_inbound
from contract.testing import free_port

APP_ID = "wx0123456789abcdef"
APP_SECRET = "demo-wechat-app-secret"  # noqa: S105 - local fake only
TOKEN = "demoWeChatToken"  # noqa: S105 - local fake only


def overrides() -> dict[str, object]:
    """The WeChat section, pointing at the local fake."""
    return {
        "channels": {
            SETTINGS_SECTION: {
                "app_id": APP_ID,
                "app_secret": APP_SECRET,
                "token": TOKEN,
                "api_base": f"http://127.0.0.1:{free_port()}",
            }
        }
    }


@asynccontextmanager
async def provider(settings: Any) -> AsyncIterator[None]:
    """The fake WeChat API for as long as the demo runs."""
    section = settings.channels[SETTINGS_SECTION]
    fake = FakeWeChat(app_id=section["app_id"], app_secret=str(section["app_secret"]))
    await fake.start(urlsplit(section["api_base"]).port or 0)
    try:
        yield
    finally:
        await fake.stop()


async def contact(
    session: aiohttp.ClientSession, settings: Any, rng: random.Random, known: Sequence[str]
) -> None:
    """One message from a demo follower."""
    section = settings.channels[SETTINGS_SECTION]
    base = f"http://127.0.0.1:{settings.http_port}"
    await wechat_inbound(session, base, str(section["token"]), rng)
