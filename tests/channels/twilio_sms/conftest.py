"""Twilio messaging test helpers: fixture bodies, the fake Twilio API, a recording hub port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest

from channels.twilio_sms.testing.fake_api import FakeTwilio, start_fake_twilio
from config.settings import Settings, load_settings
from contract.channel import EndpointKind, InboundMessage, IngestResult, StatusUpdate

FIXTURES = Path(__file__).parent / "fixtures"
# The account every fixture body names.
ACCOUNT_SID = "ACf0e1d2c3b4a5968778695a4b3c2d1e0f"
AUTH_TOKEN = "3f1d2c0b9a8e7d6c5b4a392817060504"
PUBLIC_URL = "http://127.0.0.1:8080"
# The outbound message sid the status fixtures report on.
OUTBOUND_SID = "SM9e8d7c6b5a49382716051a2b3c4d5e6f"


def fixture_body(name: str) -> bytes:
    """A fixture's form body exactly as Twilio sends it."""
    return (FIXTURES / f"{name}.txt").read_bytes()


def fixture_params(name: str) -> list[tuple[str, str]]:
    """A fixture's decoded parameters, in order, blanks included."""
    return parse_qsl(fixture_body(name).decode(), keep_blank_values=True, strict_parsing=True)


def fixture_form(name: str) -> dict[str, str]:
    """A fixture's parameters as a mapping (what the parsers take)."""
    return dict(fixture_params(name))


def twilio_settings(**overrides: Any) -> Settings:
    """Settings with the fixtures' Twilio account (no database is opened)."""
    values: dict[str, Any] = {
        "api_token": "test-token",
        "public_url": PUBLIC_URL,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "smtp_enabled": False,
    }
    values.update(overrides)
    return load_settings(**values)


@dataclass
class RecordingHub:
    """A HubPort that only records calls, for adapter tests that need no database."""

    opt_outs: list[dict[str, Any]] = field(default_factory=list)
    ingested: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)

    async def ingest(self, message: InboundMessage) -> IngestResult:
        self.ingested.append(message)
        n = len(self.ingested)
        return IngestResult(customer_id=n, conversation_id=n, message_id=n, duplicate=False)

    async def update_status(self, update: StatusUpdate) -> bool:
        self.statuses.append(update)
        return True

    async def set_opt_out(
        self, *, kind: EndpointKind, address: str, channel: str, opted_out: bool
    ) -> None:
        self.opt_outs.append(
            {"kind": kind, "address": address, "channel": channel, "opted_out": opted_out}
        )

    async def mark_undeliverable(self, *, kind: EndpointKind, address: str, reason: str) -> None:
        return None

    async def sent_message_exists(self, *, channel: str, provider_id: str) -> bool:
        return False

    async def record_auto_reply(self, *, conversation_id: int, text: str, send: bool) -> bool:
        return False


@pytest.fixture
async def fake_twilio() -> AsyncIterator[tuple[FakeTwilio, str]]:
    """The fake Twilio API on a free local port (status callbacks off unless a test turns
    them on), with the fixtures' account."""
    fake, base = await start_fake_twilio(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, callbacks=False, callback_delay=0.01
    )
    yield fake, base
    await fake.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An outbound HTTP client like the hub's shared one."""
    async with aiohttp.ClientSession() as session:
        yield session
