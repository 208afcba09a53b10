"""A console that stops reading its socket never delays anyone else's frames, and is dropped."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agent_console.gateway import GATEWAY
from agent_console.sender import OUTBOX_LIMIT
from hub.events import CustomerUpdated
from hub.services import Hub
from hub.uow import UnitOfWork
from hub.web import keys
from hub.web.middleware import METRICS
from tests.agent_console.test_gateway import Console, inbound, login, make_agent

# Each event carries about 100 kB of labels (50 characters is the most a label keeps), so
# some 40 of them fill the stalled client's TCP window and the server's send buffer.
LABELS_PER_EVENT = 2000
EVENTS = 60


def client_frame(data: dict[str, Any]) -> bytes:
    """One masked websocket text frame, as a client sends it (RFC 6455, 5.2)."""
    payload = json.dumps(data).encode()
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes([0x81, 0x80 | size])
    else:
        header = bytes([0x81, 0x80 | 126]) + size.to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def stalled_console(
    client: TestClient[Any, Any], cookie: str, path: str, frames: list[dict[str, Any]]
) -> socket.socket:
    """A console that says hello (and ``frames``), then never reads its socket again."""
    url = client.make_url(path)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills sooner
    sock.setblocking(False)
    await loop.sock_connect(sock, (url.host, url.port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Cookie: {cookie}\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    hello = {"v": 1, "type": "hello", "data": {"resume_from": None}}
    for f in [hello, *frames]:
        await loop.sock_sendall(sock, client_frame(f))
    return sock


async def flood(hub: Hub, n: int) -> None:
    """``n`` floor events committed together (only supervisors see them)."""

    async def work(uow: UnitOfWork) -> None:
        for _ in range(n):
            uow.emit(CustomerUpdated(actor="flood", changes={}))

    await hub.tx.run(work)


def cookie_of(jar: Any, client: TestClient[Any, Any]) -> str:
    return "; ".join(f"{k}={m.value}" for k, m in jar.filter_cookies(client.make_url("/")).items())


@pytest.mark.parametrize(
    ("slow_path", "reason"), [("/ws/agent", "stalled"), ("/ws/supervisor", "overflow")]
)
async def test_a_console_that_stops_reading_does_not_delay_the_others(
    hub_client: Any, slow_path: str, reason: str
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    gateway = client.app[GATEWAY]
    # Dropped because its socket takes nothing for 2 s, or (the stall watch out of the way)
    # because more frames wait for it than a console may have waiting.
    gateway.send_stall_s = 2.0 if reason == "stalled" else 60.0
    ann = await make_agent(client, "ann")
    await make_agent(client, "sue", role="supervisor")
    conv = (await inbound(client, "+12025550111", "hello", "s1"))["conversation_id"]
    offer_id = await hub.work.create_offer(conv, ann)
    assert offer_id is not None
    await hub.work.accept(offer_id, ann)

    fast, _, _ = await Console.connect(client, await login(client, "ann"))
    # The stalled one is ann's second tab, or a supervisor's dashboard; it views the
    # conversation too, so opening it announces viewers to both.
    slow_user = "ann" if slow_path == "/ws/agent" else "sue"
    open_cmd = {"client_msg_id": "v1", "name": "open", "args": {"conversation_id": conv}}
    slow = await stalled_console(
        client,
        cookie_of(await login(client, slow_user), client),
        slow_path,
        [{"v": 1, "type": "cmd", "data": open_cmd}],
    )
    try:
        async with asyncio.timeout(5):
            while len(gateway.connections) < 2 or not gateway.viewers.get(conv):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        published: dict[int, float] = {}
        delays: list[float] = []

        async def read_fast() -> None:
            while len(delays) < EVENTS:
                f = await fast.next_frame()
                if f["type"] == "event" and f["data"]["type"] == "conversation.updated":
                    n = int(f["data"]["payload"]["labels"][0][:4])
                    delays.append(time.monotonic() - published[n])

        reader = asyncio.create_task(read_fast())
        for n in range(EVENTS):
            labels = [f"{n:04d}-{i:05d}-" + "x" * 39 for i in range(LABELS_PER_EVENT)]
            await hub.work.set_labels(conv, labels, by=None)
            published[n] = time.monotonic()
            await asyncio.sleep(0.01)
        async with asyncio.timeout(10):
            await reader
        assert max(delays) < 1.0, f"slowest frame to the reading console took {max(delays):.2f}s"

        # A command of the reading console that announces to the stalled one is not held up.
        started = time.monotonic()
        opened = await fast.cmd("open", conversation_id=conv)
        assert opened["type"] == "ack"
        assert time.monotonic() - started < 1.0

        if reason == "overflow":
            await flood(hub, OUTBOX_LIMIT + 1)
        started = time.monotonic()
        await inbound(client, "+12025550111", "still there?", "s2")
        assert (await fast.until_event("message.received"))["payload"]["text"] == "still there?"
        assert time.monotonic() - started < 1.0

        # The stalled console is dropped (not waited for) and the reading one stays.
        async with asyncio.timeout(10):
            while len(gateway.connections) > 1:  # noqa: ASYNC110 - polls the gateway
                await asyncio.sleep(0.05)
        assert not next(iter(gateway.connections)).out.dropped
        dropped = client.app[METRICS].registry.get_sample_value(
            "hub_console_dropped_total", {"reason": reason}
        )
        assert dropped == 1.0
    finally:
        slow.close()
        await fast.close()
