"""Email in ``make run``: mails over SMTP to the hub's listener, replies into a local sink."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from channels.email.testing.simulator import random_customer_mail, send_mail
from channels.email.testing.sink import start_sink
from contract.testing import free_port


def overrides() -> dict[str, object]:
    """The outbound relay is a local sink."""
    return {"relay_port": free_port()}


@asynccontextmanager
async def provider(settings: Any) -> AsyncIterator[None]:
    """The relay sink that receives the hub's replies."""
    sink = await start_sink(port=settings.relay_port)
    try:
        yield
    finally:
        await sink.stop()


async def contact(
    session: aiohttp.ClientSession, settings: Any, rng: random.Random, known: Sequence[str]
) -> None:
    """One real-shaped customer mail, if the hub listens for mail."""
    if not settings.smtp_enabled:
        return
    mailbox = rng.choice(sorted(settings.email_mailboxes) or ["support@localhost"])
    raw = random_customer_mail(rng, mailbox)
    sender = raw.split(b"\r\nFrom:", 1)[-1].split(b"\r\n", 1)[0].decode("utf-8", "replace")
    address = sender[sender.rfind("<") + 1 : sender.rfind(">")] if "<" in sender else sender
    await send_mail(settings.smtp_host, settings.smtp_port, raw, address.strip(), mailbox)
