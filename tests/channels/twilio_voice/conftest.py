"""A hub with the phone channel on, and Twilio-signed requests to its voice webhooks."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

from hub.services import Hub
from hub.web import keys
from server.app import create_app
from tests.conftest import make_settings

ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "voice-test-auth-token"
NUMBER = "+15005550006"
PUBLIC_URL = "http://127.0.0.1:8080"


def voice_section(api_base: str = "http://127.0.0.1:9", **extra: Any) -> dict[str, Any]:
    """``[channels.twilio_voice]`` for tests (``api_base``: the fake Calls API)."""
    return {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "number": NUMBER,
        "api_base": api_base,
        "hold_music_url": "http://127.0.0.1:9/hold.mp3",
        **extra,
    }


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def call_params(call_sid: str, caller: str = "+447700900123", **extra: str) -> dict[str, str]:
    """The parameters Twilio sends with every request about an inbound call."""
    return {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "From": caller,
        "To": NUMBER,
        "Caller": caller,
        "Called": NUMBER,
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        **extra,
    }


@dataclass
class Answer:
    status: int
    text: str

    def twiml(self) -> ET.Element:
        assert self.status == 200, self.text
        root = ET.fromstring(self.text)
        assert root.tag == "Response"
        return root


Post = Callable[..., Awaitable[Answer]]


@dataclass
class VoiceHub:
    client: TestClient[Any, Any]
    hub: Hub
    post: Post


def signed_poster(client: TestClient[Any, Any]) -> Post:
    validator = RequestValidator(AUTH_TOKEN)

    async def post(
        path_qs: str,
        params: Mapping[str, str],
        *,
        signature: str | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> Answer:
        url = PUBLIC_URL + path_qs
        sig = validator.compute_signature(url, dict(params)) if signature is None else signature
        resp = await client.post(
            path_qs,
            data=urlencode(list(params.items())).encode(),
            headers={"X-Twilio-Signature": sig, "Content-Type": content_type},
        )
        return Answer(resp.status, await resp.text())

    return post


@pytest.fixture
def voice_hub(aiohttp_client: Any, sqlite_url: str) -> Callable[..., Awaitable[VoiceHub]]:
    """``await voice_hub(**settings)``: the app with the phone channel on (SQLite)."""

    async def factory(section: dict[str, Any] | None = None, **overrides: Any) -> VoiceHub:
        overrides.setdefault("database_url", sqlite_url)
        settings = make_settings(channels={"twilio_voice": section or voice_section()}, **overrides)
        client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
        return VoiceHub(client=client, hub=client.app[keys.HUB], post=signed_poster(client))

    return factory
