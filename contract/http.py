"""Reading a provider's download without ever holding more than a limit in memory."""

from __future__ import annotations

import aiohttp

from contract.errors import ChannelError


async def read_capped(resp: aiohttp.ClientResponse, limit: int, *, what: str = "file") -> bytes:
    """The body, refused (``too_large``, not retryable) as soon as it is known to exceed
    ``limit``: by its Content-Length, or while streaming when it has none or lies."""
    if resp.content_length is not None and resp.content_length > limit:
        raise ChannelError(
            f"{what} of {resp.content_length} bytes exceeds {limit}",
            retryable=False,
            code="too_large",
        )
    data = bytearray()
    async for chunk in resp.content.iter_chunked(65536):
        data.extend(chunk)
        if len(data) > limit:
            raise ChannelError(f"{what} exceeds {limit} bytes", retryable=False, code="too_large")
    return bytes(data)
