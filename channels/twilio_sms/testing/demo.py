"""SMS and WhatsApp in ``make run``: a local fake of Twilio's REST API and signed webhooks."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from channels.twilio_sms.testing.fake_api import (
    DEMO_ACCOUNT_SID,
    DEMO_AUTH_TOKEN,
    start_fake_twilio,
)
from channels.twilio_sms.testing.simulator import demo_traffic
from contract.testing import free_port


def overrides() -> dict[str, object]:
    """Settings pointing the adapter at the fake."""
    return {
        "twilio_account_sid": DEMO_ACCOUNT_SID,
        "twilio_auth_token": DEMO_AUTH_TOKEN,
        "twilio_api_base": f"http://127.0.0.1:{free_port()}",
    }


@asynccontextmanager
async def provider(settings: Any) -> AsyncIterator[None]:
    """The fake Twilio API, for as long as the demo runs."""
    fake, _ = await start_fake_twilio(
        port=urlsplit(settings.twilio_api_base).port or 0,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
    )
    try:
        yield
    finally:
        await fake.close()


async def contact(
    session: aiohttp.ClientSession, settings: Any, rng: random.Random, known: Sequence[str]
) -> None:
    """One signed inbound SMS or WhatsApp message."""
    await demo_traffic(session, settings, rng)
