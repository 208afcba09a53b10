"""Simulated Telegram traffic: real-shaped Update JSON posted to the hub's webhook.

Used by the demo traffic generator and by tests. Updates carry increasing ``update_id`` values
and the secret header, exactly as Telegram delivers them.
"""

from __future__ import annotations

import itertools
import random
import struct
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from channels.telegram.const import SECRET_HEADER, WEBHOOK_PATH

__all__ = [
    "DEMO_PHOTO",
    "DEMO_PHOTO_FILE_ID",
    "DEMO_USERS",
    "contact_update",
    "next_update_id",
    "photo_update",
    "post_update",
    "random_update",
    "seed_fake",
    "telegram_inbound",
    "text_update",
]

DEMO_USERS: tuple[Mapping[str, Any], ...] = (
    {
        "id": 700100201,
        "first_name": "Olivia",
        "last_name": "Brown",
        "username": "olivia_b",
        "language_code": "en",
        "phone": "447700900123",
    },
    {
        "id": 700100202,
        "first_name": "Mateo",
        "last_name": "García",
        "language_code": "es",
        "phone": "34600123456",
    },
    {"id": 700100203, "first_name": "芳", "last_name": "王", "language_code": "zh-hans"},
    {"id": 700100204, "first_name": "Jonas", "username": "jonas_k", "language_code": "de"},
)
DEMO_TEXTS = (
    "Hi! My parcel still shows 'in transit' after a week.",
    "How do I reset my password?",
    "Can I get an invoice for my last order?",
    "¿Puedo cambiar la dirección de entrega?",
    "你好，我想退货。",
    "Danke! Hat funktioniert.",
)
DEMO_PHOTO_FILE_ID = "AgACAgQAAxkBAAIDemoPhotoLargest"

# Update ids start at a random-looking base and increase by one, as Telegram's do.
_update_ids = itertools.count(int(time.time()) % 1_000_000 * 100)


def next_update_id() -> int:
    """The next update id of this process."""
    return next(_update_ids)


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A tiny valid PNG (a flat colour) to serve as the demo photo."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


DEMO_PHOTO = _png(32, 32, (0x2A, 0x9D, 0xF4))


def _user(user: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": user["id"], "is_bot": False, "first_name": user["first_name"]}
    for key in ("last_name", "username", "language_code"):
        if user.get(key):
            out[key] = user[key]
    return out


def _private_chat(user: Mapping[str, Any]) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": user["id"], "first_name": user["first_name"], "type": "private"}
    for key in ("last_name", "username"):
        if user.get(key):
            chat[key] = user[key]
    return chat


def _message(
    update_id: int, user: Mapping[str, Any], message_id: int | None, **content: Any
) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id if message_id is not None else update_id % 1_000_000,
            "from": _user(user),
            "chat": _private_chat(user),
            "date": int(time.time()),
            **content,
        },
    }


def text_update(
    update_id: int, user: Mapping[str, Any], text: str, *, message_id: int | None = None
) -> dict[str, Any]:
    """A private-chat text message."""
    content: dict[str, Any] = {"text": text}
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        content["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]
    return _message(update_id, user, message_id, **content)


def photo_update(
    update_id: int,
    user: Mapping[str, Any],
    *,
    file_id: str = DEMO_PHOTO_FILE_ID,
    size: int = len(DEMO_PHOTO),
    caption: str = "",
    message_id: int | None = None,
) -> dict[str, Any]:
    """A private-chat photo in the usual three sizes; ``file_id`` names the largest."""
    sizes = [
        {
            "file_id": f"{file_id}-s",
            "file_unique_id": "AQADs",
            "file_size": 1201,
            "width": 90,
            "height": 90,
        },
        {
            "file_id": f"{file_id}-m",
            "file_unique_id": "AQADm",
            "file_size": 15087,
            "width": 320,
            "height": 320,
        },
        {
            "file_id": file_id,
            "file_unique_id": "AQADx",
            "file_size": size,
            "width": 800,
            "height": 800,
        },
    ]
    content: dict[str, Any] = {"photo": sizes}
    if caption:
        content["caption"] = caption
    return _message(update_id, user, message_id, **content)


def contact_update(
    update_id: int,
    user: Mapping[str, Any],
    *,
    phone: str,
    own: bool = True,
    first_name: str | None = None,
    message_id: int | None = None,
) -> dict[str, Any]:
    """A shared contact: the user's own (``user_id == from.id``) or a third party's card."""
    contact: dict[str, Any] = {
        "phone_number": phone,
        "first_name": first_name or (user["first_name"] if own else "Sam"),
    }
    if own:
        contact["user_id"] = user["id"]
        if user.get("last_name"):
            contact["last_name"] = user["last_name"]
    return _message(update_id, user, message_id, contact=contact)


def random_update(
    rng: random.Random,
    *,
    update_id: int | None = None,
    users: Sequence[Mapping[str, Any]] = DEMO_USERS,
    photo_file_id: str | None = DEMO_PHOTO_FILE_ID,
) -> dict[str, Any]:
    """One plausible update: mostly text, sometimes a photo or the user's own contact."""
    uid = update_id if update_id is not None else next_update_id()
    user = rng.choice(users)
    roll = rng.random()
    if roll < 0.1 and user.get("phone"):
        return contact_update(uid, user, phone=str(user["phone"]))
    if roll < 0.2 and photo_file_id:
        return photo_update(uid, user, file_id=photo_file_id, caption="This is what arrived")
    return text_update(uid, user, rng.choice(DEMO_TEXTS))


async def post_update(
    session: aiohttp.ClientSession, hub_base_url: str, secret: str, update: Mapping[str, Any]
) -> int:
    """POST one update to the hub's webhook with the secret header; returns the HTTP status."""
    async with session.post(
        f"{hub_base_url.rstrip('/')}{WEBHOOK_PATH}",
        json=dict(update),
        headers={SECRET_HEADER: secret},
    ) as resp:
        await resp.read()
        return resp.status


def seed_fake(fake: Any) -> None:
    """Register the demo photo with a :class:`~channels.telegram.testing.fake_api.FakeTelegram`."""
    fake.add_file(DEMO_PHOTO_FILE_ID, DEMO_PHOTO, file_path="photos/file_demo.png")


async def telegram_inbound(
    session: aiohttp.ClientSession, settings: Any, rng: random.Random
) -> None:
    """A demo traffic source (``server.demo`` signature): one update to the local hub."""
    secret = settings.telegram_secret_token.get_secret_value()
    if not secret or not settings.telegram_bot_token.get_secret_value():
        return
    await post_update(session, f"http://127.0.0.1:{settings.http_port}", secret, random_update(rng))
