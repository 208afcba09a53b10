"""The demo traffic builders produce Updates the parser accepts, and the hub stores them."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from channels.telegram.payloads import parse_update
from channels.telegram.testing.fake_api import FakeTelegram
from channels.telegram.testing.simulator import (
    DEMO_PHOTO,
    DEMO_USERS,
    contact_update,
    photo_update,
    post_update,
    random_update,
    seed_fake,
)
from tests.channels.telegram.conftest import SECRET, TOKEN
from tests.conftest import AUTH


def test_random_updates_parse_with_increasing_ids() -> None:
    rng = random.Random(7)
    updates = [random_update(rng) for _ in range(60)]
    ids = [u["update_id"] for u in updates]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    parsed = [parse_update(u) for u in updates]
    kinds = set()
    for p in parsed:
        assert p.message is not None
        kinds.add("photo" if p.files else "contact" if p.message.identifiers else "text")
    assert kinds == {"text", "photo", "contact"}


def test_contact_builder_marks_own_and_third_party_cards() -> None:
    user = DEMO_USERS[0]
    own = parse_update(contact_update(1, user, phone="447700900123")).message
    other = parse_update(contact_update(2, user, phone="447700900999", own=False)).message
    assert own is not None
    assert other is not None
    assert [i.address for i in own.identifiers] == ["+447700900123"]
    assert other.identifiers == ()


async def test_simulated_photo_reaches_the_hub_with_its_bytes(
    hub_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    fake_telegram: tuple[FakeTelegram, str],
) -> None:
    fake, base = fake_telegram
    seed_fake(fake)
    client = await hub_client(
        telegram_bot_token=TOKEN, telegram_secret_token=SECRET, telegram_api_base=base
    )
    user = DEMO_USERS[1]
    update = photo_update(9001, user, caption="arrived broken")
    assert await post_update(client.session, str(client.make_url("")), SECRET, update) == 200
    async with client.get(f"/api/v1/customers?telegram_user_id={user['id']}", headers=AUTH) as resp:
        (customer,) = (await resp.json())["items"]
    async with client.get(f"/api/v1/customers/{customer['id']}/history", headers=AUTH) as resp:
        (message,) = (await resp.json())["items"]
    assert message["text"] == "arrived broken"
    (att,) = message["attachments"]
    async with client.get(f"/api/v1/attachments/{att['id']}", headers=AUTH) as resp:
        assert await resp.read() == DEMO_PHOTO
