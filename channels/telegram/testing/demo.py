"""Telegram in ``make run``: a local fake of the Bot API and updates with the secret token."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from channels.telegram.testing.fake_api import start_fake_telegram
from channels.telegram.testing.simulator import seed_fake, telegram_inbound
from contract.testing import free_port

TOKEN = "123456789:DEMO-bot-token"  # noqa: S105 - local fake only
SECRET = "demo-telegram-secret"  # noqa: S105 - local fake only


def overrides() -> dict[str, object]:
    """Settings pointing the bot at the fake."""
    return {
        "telegram_bot_token": TOKEN,
        "telegram_secret_token": SECRET,
        "telegram_api_base": f"http://127.0.0.1:{free_port()}",
    }


@asynccontextmanager
async def provider(settings: Any) -> AsyncIterator[None]:
    """The fake Bot API (with the demo photo), for as long as the demo runs."""
    fake, _ = await start_fake_telegram(
        settings.telegram_bot_token.get_secret_value(),
        port=urlsplit(settings.telegram_api_base).port or 0,
    )
    seed_fake(fake)
    try:
        yield
    finally:
        await fake.stop()


async def contact(
    session: aiohttp.ClientSession, settings: Any, rng: random.Random, known: Sequence[str]
) -> None:
    """One update from a demo user."""
    await telegram_inbound(session, settings, rng)
