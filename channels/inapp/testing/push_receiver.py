"""A stand-in for the company's server behind the push hook, on 127.0.0.1: it checks the
signature, remembers deliveries by ``X-Hub-Delivery`` and can fail on demand."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from contract.testing import free_port


@dataclass
class PushReceiver:
    key: bytes
    received: list[dict[str, Any]] = field(default_factory=list)  # every valid request
    deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)  # first per id
    bad_signatures: int = 0
    fail_next: int = 0  # answer 503 to this many requests first
    runner: web.AppRunner | None = None
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        given = request.headers.get("X-Hub-Signature-256", "")
        good = "sha256=" + hmac.new(self.key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given, good):
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=503)
        payload = json.loads(body)
        payload["delivery"] = request.headers.get("X-Hub-Delivery", "")
        self.received.append(payload)
        self.deliveries.setdefault(payload["delivery"], payload)
        return web.Response(status=204)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/push", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/push"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
