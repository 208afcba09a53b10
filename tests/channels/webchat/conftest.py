"""A hub with the web chat on (site "demo"), served on a real port for websocket visitors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from channels.webchat.testing.visitor import ChatVisitor
from hub.services import Hub
from hub.web import keys
from server.app import create_app
from tests.conftest import make_settings

SECRET = "site-secret-for-identity-hmac"


def webchat_section(origin: str, **site: Any) -> dict[str, Any]:
    return {
        "sites": {
            "demo": {
                "origins": [origin],
                "secret": SECRET,
                "topics": [
                    {"id": "billing", "labels": {"en": "Billing", "zh": "账单"}, "queue": "billing"}
                ],
                **site,
            }
        }
    }


@dataclass
class ChatHub:
    client: TestClient[Any, Any]
    hub: Hub
    base: str
    session: aiohttp.ClientSession

    def visitor(self, **kwargs: Any) -> ChatVisitor:
        kwargs.setdefault("origin", self.base)
        return ChatVisitor(self.session, self.base, **kwargs)


ChatHubFactory = Callable[..., Awaitable[ChatHub]]


@pytest.fixture
async def chat_hub(aiohttp_client: Any, sqlite_url: str) -> AsyncIterator[ChatHubFactory]:
    sessions: list[aiohttp.ClientSession] = []

    async def factory(**site: Any) -> ChatHub:
        from contract.testing import free_port

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        settings = make_settings(
            sqlite_url, public_url=base, channels={"webchat": webchat_section(base, **site)}
        )
        client: TestClient[Any, Any] = await aiohttp_client(
            create_app(settings), server_kwargs={"port": port}
        )
        session = aiohttp.ClientSession()
        sessions.append(session)
        return ChatHub(client=client, hub=client.app[keys.HUB], base=base, session=session)

    yield factory
    for session in sessions:
        await session.close()
