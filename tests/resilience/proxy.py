"""A TCP proxy on 127.0.0.1 that a test can cut and restore, to take a server away from the hub.

``cut()`` stops listening (a new connection is refused at once, as from a server that is
down) and aborts every open connection on both sides (the peers see a reset, as after a
network failure or a server restart); ``restore()`` listens again on the same port, so a
client configured with the proxy's address reconnects without being told anything.
"""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
CONNECT_TIMEOUT_S = 5.0


class _Pair:
    """One client connection and its upstream connection, piped both ways."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        # Half-close would keep a server waiting; either side ending ends the pair.
        writer.transport.abort()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``upstream_host:upstream_port`` until cut."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = 0
        self.accepted = 0  # connections ever accepted, a test's evidence that clients came back
        self._server: asyncio.Server | None = None
        self._pairs: set[_Pair] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def cut_off(self) -> bool:
        return self._server is None

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    async def start(self) -> None:
        """Listen (on a free port the first time, on the same port after a cut)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for pair in list(self._pairs):
            pair.abort()
        self._pairs.clear()
        if server is not None:
            await server.wait_closed()
        logger.info("proxy :%s cut", self.port)

    async def restore(self) -> None:
        """Accept connections again, on the same port."""
        await self.start()
        logger.info("proxy :%s restored", self.port)

    async def close(self) -> None:
        """Cut, and wait for the connection handlers to end (a cancelled one would be
        reported by asyncio as an error)."""
        await self.cut()
        if self._tasks:
            _, stuck = await asyncio.wait(list(self._tasks), timeout=CONNECT_TIMEOUT_S + 1)
            for task in stuck:
                task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._server is None:  # accepted just as the proxy was cut
            writer.transport.abort()
            return
        self.accepted += 1
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                up_reader, up_writer = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port
                )
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        pair = _Pair(writer, up_writer)
        if self.cut_off:  # cut while connecting upstream
            pair.abort()
            return
        self._pairs.add(pair)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._pairs.discard(pair)
            pair.abort()
