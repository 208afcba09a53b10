"""In-app messaging in ``make run``: demo app users writing from the shop's mobile app."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import aiohttp

from channels.inapp.auth import sign_user
from channels.inapp.client import AppClient
from channels.inapp.const import SETTINGS_SECTION

APP = "shop"
SECRET = "demo-inapp-secret-0123456789abcdef"  # noqa: S105 - local demo only
USERS = (
    ("u-1001", "My parcel says delivered but it is not here"),
    ("u-1002", "我想修改收货地址"),
    ("u-1003", "Can I pay with a gift card in the app?"),
)


def overrides() -> dict[str, object]:
    """One demo app (no push hook: the demo has no phones to notify)."""
    return {"channels": {SETTINGS_SECTION: {"apps": {APP: {"secret": SECRET, "name": "Shop"}}}}}


async def contact(
    session: aiohttp.ClientSession, settings: Any, rng: random.Random, known: Sequence[str]
) -> None:
    """One message from a demo app user, over the REST call a backgrounded app uses."""
    user, text = rng.choice(USERS)
    token = sign_user(APP, user, SECRET, ttl_s=600)
    client = AppClient(f"http://127.0.0.1:{settings.http_port}", token, session=session)
    await client.post(text)
