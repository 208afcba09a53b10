"""A reference client for in-app messaging (PROTOCOL.md), in Python with aiohttp.

What a mobile app does, in the shape an app developer can port: keep one websocket open
while the app is in the foreground, resume from the last message id after any drop, send
each message with its own ``client_msg_id`` and send it again (same id) until it is
acknowledged, so a message is never lost and never doubled::

    client = AppClient("https://hub.example", token)   # token from the company's server
    await client.start()
    await client.send("Where is my order?")
    reply = await client.next_message(direction="out")
    await client.close()

It imports nothing of the hub: it is meant to be read and copied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)

SOCKET = "/app/v1/ws"
MESSAGES = "/app/v1/messages"


class Refused(Exception):
    """The hub refused the token (401/403): reconnecting cannot help."""


@dataclass
class _Pending:
    client_msg_id: str
    text: str
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class AppClient:
    """One signed-in app user's connection to the hub."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        session: aiohttp.ClientSession | None = None,
        backoff: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.backoff = backoff
        self._session = session
        self._own_session = session is None
        self.messages: dict[int, dict[str, Any]] = {}  # by id, every message seen
        self.status: dict[str, Any] = {}
        self.connected = asyncio.Event()
        self.connections = 0  # how many times a socket was opened (reconnects + 1)
        self._pending: dict[str, _Pending] = {}
        self._arrived = asyncio.Condition()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._offline_until = 0.0
        self._closing = False

    @property
    def last_id(self) -> int:
        """The highest message id received: where a reconnect resumes."""
        return max(self.messages, default=0)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"HubApp {self.token}"}

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Connect, and stay connected (reconnecting with backoff) until ``close``."""
        self._task = asyncio.create_task(self._run(), name="app-client")
        done, _ = await asyncio.wait(
            [self._task, asyncio.create_task(self.connected.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        if self._task in done:
            self._task.result()  # raises Refused or the connection error

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            # A task that already ended (a refused token) raised to ``start``'s caller.
            with contextlib.suppress(asyncio.CancelledError, Refused, aiohttp.ClientError, OSError):
                await self._task
        if self._own_session and self._session is not None:
            await self._session.close()

    async def drop(self, *, offline_for: float = 0.0) -> None:
        """Lose the connection (as when the phone goes through a tunnel) and stay offline
        for ``offline_for`` seconds before the usual reconnect."""
        self._offline_until = time.monotonic() + offline_for
        self.connected.clear()
        if self._ws is not None:
            await self._ws.close()

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            wait = self._offline_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self._connect_once()
                attempt = 0
            except Refused:
                raise
            except (aiohttp.ClientError, OSError, TimeoutError) as err:
                logger.info("app connection failed: %s", err)
                if self.connections == 0 and not self._closing:
                    raise
            self.connected.clear()
            await asyncio.sleep(self.backoff[min(attempt, len(self.backoff) - 1)])
            attempt += 1

    async def _connect_once(self) -> None:
        try:
            ws = await self._http().ws_connect(self.base_url + SOCKET, headers=self._headers())
        except aiohttp.WSServerHandshakeError as err:
            if err.status in (401, 403):
                raise Refused(f"token refused ({err.status})") from None
            raise
        self._ws = ws
        self.connections += 1
        try:
            await ws.send_json({"type": "hello", "v": 1, "last_id": self.last_id})
            welcome = await ws.receive_json(timeout=10)
            if welcome.get("type") != "welcome":
                raise aiohttp.ClientError(f"no welcome: {welcome}")
            await self._take(welcome.get("messages", []))
            self.status = welcome.get("status", {})
            self.connected.set()
            # What was sent but never acknowledged goes again, with the same id.
            for pending in list(self._pending.values()):
                await self._send_frame(pending)
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await self._on_frame(msg.json())
        finally:
            self.connected.clear()
            self._ws = None

    # ------------------------------------------------------------------ frames
    async def _take(self, frames: list[dict[str, Any]]) -> None:
        async with self._arrived:
            for frame in frames:
                self.messages[int(frame["id"])] = frame
            self._arrived.notify_all()

    async def _on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "message":
            await self._take([frame])
        elif kind == "ack":
            pending = self._pending.pop(str(frame.get("client_msg_id")), None)
            if pending is not None and not pending.done.done():
                pending.done.set_result(int(frame["id"]))
        elif kind == "status":
            self.status = frame
        elif kind == "error":
            ref = frame.get("ref")
            pending = self._pending.get(str(ref)) if ref else None
            if pending is not None and frame.get("code") in ("bad_frame", "too_large"):
                # Sending it again cannot help: tell the caller.
                self._pending.pop(pending.client_msg_id, None)
                pending.done.set_exception(ValueError(str(frame.get("detail"))))

    async def _send_frame(self, pending: _Pending) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return  # sent on the next connect
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_json(
                {"type": "message", "client_msg_id": pending.client_msg_id, "text": pending.text}
            )

    # ------------------------------------------------------------------ the app's calls
    async def send(self, text: str, *, within: float = 30.0) -> int:
        """Send a message; its stored id once the hub acknowledged it (sent again after a
        reconnect if the first try's ack never came)."""
        pending = _Pending(client_msg_id=secrets.token_hex(8), text=text)
        self._pending[pending.client_msg_id] = pending
        await self._send_frame(pending)
        return await asyncio.wait_for(asyncio.shield(pending.done), within)

    def queue(self, text: str) -> asyncio.Future[int]:
        """Send without waiting (e.g. while offline): the future completes with the id."""
        pending = _Pending(client_msg_id=secrets.token_hex(8), text=text)
        self._pending[pending.client_msg_id] = pending
        asyncio.get_running_loop().create_task(self._send_frame(pending))
        return pending.done

    async def wait_for(
        self, check: Callable[[dict[int, dict[str, Any]]], bool], *, within: float = 10.0
    ) -> None:
        """Until ``check(messages)`` holds."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: check(self.messages))

    async def next_message(self, *, direction: str = "out", within: float = 10.0) -> dict[str, Any]:
        """The next message of ``direction`` ("out": from the company) after those seen."""
        seen = self.last_id

        def arrived(messages: dict[int, dict[str, Any]]) -> bool:
            return any(i > seen and m["direction"] == direction for i, m in messages.items())

        await self.wait_for(arrived, within=within)
        return next(
            m for i, m in sorted(self.messages.items()) if i > seen and m["direction"] == direction
        )

    # ------------------------------------------------------------------ REST (background)
    async def post(self, text: str, *, client_msg_id: str | None = None) -> dict[str, Any]:
        """Send over HTTP (the app in the background): ``{"id", "duplicate"}``."""
        body = {"client_msg_id": client_msg_id or secrets.token_hex(8), "text": text}
        async with self._http().post(
            self.base_url + MESSAGES, json=body, headers=self._headers()
        ) as resp:
            if resp.status in (401, 403):
                raise Refused(f"token refused ({resp.status})")
            resp.raise_for_status()
            answer: dict[str, Any] = await resp.json()
            return answer

    async def history(self, *, after: int = 0) -> dict[str, Any]:
        """Messages after ``after`` and the conversation's status, over HTTP."""
        async with self._http().get(
            self.base_url + MESSAGES, params={"after": str(after)}, headers=self._headers()
        ) as resp:
            if resp.status in (401, 403):
                raise Refused(f"token refused ({resp.status})")
            resp.raise_for_status()
            answer: dict[str, Any] = await resp.json()
            return answer
