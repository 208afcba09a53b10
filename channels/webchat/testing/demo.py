"""Web chat in ``make run``: simulated visitors on the demo shop page's site ("demo").

Each one connects over the real websocket, fills in the pre-chat form, writes and stays
a few minutes so an agent's answers reach them; at most a handful at a time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import aiohttp

from channels.webchat.const import SETTINGS_SECTION
from channels.webchat.testing.visitor import ChatVisitor

MAX_VISITORS = 5
_running: set[asyncio.Task[None]] = set()
OPENERS = (
    ("Mia", "Hi! Do you ship to Canada?"),
    ("Noah", "The kettle I ordered arrived dented, what can I do?"),
    ("王芳", "你好，我想查询一下我的订单。"),
    ("Lea", "Can I change the colour of my order before it ships?"),
    ("Omar", "Is the teapot dishwasher safe?"),
)


# The demo shop's first-line bot (it hands over to people when it has no answer).
DEMO_BOT = {
    "name": {"en": "Kettlebot", "zh": "小壶"},
    "faq": [
        {
            "keywords": ["shipping", "delivery", "ship", "发货", "配送"],
            "answer": {
                "en": "We ship within two working days; delivery is free over €50.",
                "zh": "我们在两个工作日内发货，满50欧元免运费。",
            },
        },
        {
            "keywords": ["return", "refund", "退货", "退款"],
            "answer": {
                "en": "Returns are free within 30 days of delivery.",
                "zh": "收货后30天内可免费退货。",
            },
        },
        {
            "keywords": ["dishwasher", "clean", "清洗"],
            "answer": {
                "en": "Kettles: hand wash only. Teapots: rinse with water, no soap.",
                "zh": "水壶请手洗；茶壶用清水冲洗，不要用洗洁精。",
            },
        },
    ],
}


def overrides() -> dict[str, object]:
    """The demo site: the hub's own demo page may open the chat."""
    return {
        "channels": {
            SETTINGS_SECTION: {
                "sites": {
                    "demo": {
                        "origins": ["self"],
                        "secret": "demo-webchat-identity-secret",
                        "title": {"en": "Kettle & Co. support", "zh": "Kettle & Co. 客服"},
                        "bot": DEMO_BOT,
                        "topics": [
                            {
                                "id": "orders",
                                "labels": {"en": "Orders", "zh": "订单"},
                                "queue": "support",
                            },
                            {
                                "id": "billing",
                                "labels": {"en": "Billing", "zh": "账单"},
                                "queue": "billing",
                            },
                        ],
                    }
                }
            }
        }
    }


async def _visit(settings: Any, rng: random.Random) -> None:
    base = str(settings.public_url).rstrip("/")
    name, opener = rng.choice(OPENERS)
    async with aiohttp.ClientSession() as session:
        visitor = ChatVisitor(session, base, lang="zh" if name == "王芳" else "en")
        try:
            await visitor.connect()
            await visitor.send(
                {"type": "prechat", "name": name, "topic": rng.choice(["orders", "billing"])}
            )
            await visitor.say(opener)
            await asyncio.sleep(rng.uniform(60, 240))  # around for an answer
        finally:
            await visitor.close()


async def contact(
    session: aiohttp.ClientSession, settings: Any, rng: random.Random, known: Sequence[str]
) -> None:
    """One simulated visitor (in the background; at most ``MAX_VISITORS`` at once)."""
    if len(_running) >= MAX_VISITORS:
        return
    task = asyncio.create_task(_visit(settings, rng))
    _running.add(task)
    task.add_done_callback(_running.discard)
