"""The API channel in ``make run``: contacts posted as an integration would."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import aiohttp

TEXTS = (
    "Where is my refund?",
    "The app crashes when I open settings.",
    "I'd like to upgrade my plan.",
    "Can someone call me back today?",
    "请问你们的营业时间是什么时候？",
    "Mi pedido llegó dañado.",
)


def overrides() -> dict[str, object]:
    """No provider to fake: the hub itself is the API."""
    return {}


async def contact(
    session: aiohttp.ClientSession, settings: Any, rng: random.Random, known: Sequence[str]
) -> None:
    """One contact through ``POST /api/v1/inbound``, now and then from a known customer."""
    returning = known and rng.random() < 0.3
    who = rng.choice(known) if returning else f"+1202555{rng.randint(1000, 9999)}"
    async with session.post(
        f"http://127.0.0.1:{settings.http_port}/api/v1/inbound",
        json={
            "from": who,
            "text": rng.choice(TEXTS),
            "external_id": f"demo-{rng.getrandbits(64):x}",
        },
        headers={"Authorization": f"Bearer {settings.api_token_value()}"},
    ) as resp:
        await resp.read()
