"""The dummy provider: receives the hub's sends and calls the hub's webhooks back."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.channels.dummy.adapter import SECRET_HEADER


class FakeDummyProvider:
    def __init__(self, hub_base: str, secret: str) -> None:
        self.hub_base = hub_base
        self.secret = secret
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ids = itertools.count(1)
        app = web.Application()
        app.router.add_post("/messages", self._messages)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> None:
        await self.server.start_server()

    async def stop(self) -> None:
        await self.server.close()

    async def _messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        body["id"] = f"dm-{next(self._ids)}"
        await self.sent.put(body)
        return web.json_response({"id": body["id"]})

    async def post(self, path: str, body: Any, *, secret: str | None = None) -> tuple[int, Any]:
        """Call the hub's dummy webhook as the provider does."""
        headers = {SECRET_HEADER: self.secret if secret is None else secret}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.hub_base}{path}", json=body, headers=headers) as resp,
        ):
            return resp.status, await resp.text()
