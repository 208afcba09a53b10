"""A local stand-in for WeChat's API (``api.weixin.qq.com``) for tests and the demo.

It speaks the real wire format for what the adapter uses: ``stable_token``, customer-service
``message/custom/send`` and ``typing``, ``media/get`` and ``media/upload``; errors come as
JSON with ``errcode``/``errmsg`` under HTTP 200, as WeChat sends them.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from contract.testing import free_port


@dataclass
class FakeWeChat:
    """The fake's state: the account, its token, what it received, switches for failures."""

    app_id: str
    app_secret: str
    token: str = field(default_factory=lambda: "tok-" + secrets.token_hex(16))
    sends: list[dict[str, Any]] = field(default_factory=list)
    typing: list[dict[str, Any]] = field(default_factory=list)
    token_calls: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[bytes] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    # OpenIDs whose 48-hour window is closed (or who unfollowed): sends get 45015.
    closed: set[str] = field(default_factory=set)
    # The next n sends answer "system busy" (-1).
    busy: int = 0
    runner: web.AppRunner | None = None
    base_url: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def expire_token(self) -> None:
        """The current token stops working at once (expired, or replaced by a forced refresh
        elsewhere); the next ``stable_token`` call gets a new one."""
        self.token = ""

    def _current(self, *, force: bool) -> str:
        if force or not self.token:
            self.token = "tok-" + secrets.token_hex(16)
        return self.token

    def _authorized(self, request: web.Request) -> dict[str, Any] | None:
        given = request.query.get("access_token", "")
        if not given:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        if given != self.token:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        return None

    async def stable_token(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.token_calls.append(body)
        if body.get("appid") != self.app_id or body.get("secret") != self.app_secret:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        token = self._current(force=bool(body.get("force_refresh")))
        return web.json_response({"access_token": token, "expires_in": 7200})

    async def send(self, request: web.Request) -> web.Response:
        refused = self._authorized(request)
        if refused:
            return web.json_response(refused)
        body = await request.json()
        if self.busy > 0:
            self.busy -= 1
            return web.json_response({"errcode": -1, "errmsg": "system error"})
        if body.get("touser") in self.closed:
            return web.json_response(
                {
                    "errcode": 45015,
                    "errmsg": "response out of time limit or subscription is canceled",
                }
            )
        if body.get("msgtype") not in ("text", "image"):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        self.sends.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def typing_(self, request: web.Request) -> web.Response:
        refused = self._authorized(request)
        if refused:
            return web.json_response(refused)
        self.typing.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def media_get(self, request: web.Request) -> web.Response:
        refused = self._authorized(request)
        if refused:
            return web.json_response(refused)
        found = self.media.get(request.query.get("media_id", ""))
        if found is None:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        data, content_type = found
        return web.Response(body=data, content_type=content_type)

    async def media_upload(self, request: web.Request) -> web.Response:
        refused = self._authorized(request)
        if refused:
            return web.json_response(refused)
        reader = await request.multipart()
        part = await reader.next()
        if part is None or getattr(part, "name", None) != "media":
            return web.json_response({"errcode": 41005, "errmsg": "media data missing"})
        data = await part.read()  # type: ignore[union-attr]
        self.uploads.append(bytes(data))
        media_id = f"up-{next(self._ids)}"
        return web.json_response({"type": "image", "media_id": media_id, "created_at": 1})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/cgi-bin/stable_token", self.stable_token)
        app.router.add_post("/cgi-bin/message/custom/send", self.send)
        app.router.add_post("/cgi-bin/message/custom/typing", self.typing_)
        app.router.add_get("/cgi-bin/media/get", self.media_get)
        app.router.add_post("/cgi-bin/media/upload", self.media_upload)
        return app

    async def start(self, port: int = 0) -> str:
        self.runner = web.AppRunner(self.app(), access_log=None)
        await self.runner.setup()
        port = port or free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
