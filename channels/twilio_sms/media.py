"""Server-side fetch of MMS/WhatsApp media: authenticated, size-limited, time-bounded.

The webhook tries each announced item once; one that failed for a reason a retry can mend
is handed to the hub as a pending attachment, which fetches it again through the adapter.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import mimetypes
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from channels.twilio_sms.const import (
    MEDIA_AUTH_HOST_SUFFIXES,
    MEDIA_HOST_SUFFIXES,
    MEDIA_MAX_REDIRECTS,
)
from channels.twilio_sms.payloads import Media
from contract.channel import Attachment, ChannelError

logger = logging.getLogger(__name__)

_CHUNK = 65_536
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# host, port -> the addresses it resolves to (injectable so tests can play DNS).
Resolve = Callable[[str, int], Awaitable[list[str]]]


class UnsafeMediaUrl(ValueError):
    """A media URL (or a redirect) that names a host we must not fetch from."""


async def _system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetched:
    """One media item's outcome: its attachment (fetched, pending or failed) and a note."""

    media: Media
    attachment: Attachment
    note: dict[str, Any]


class _TooLarge(Exception):
    """The body is larger than the attachment limit (we stopped reading)."""

    def __init__(self, size: int | None = None) -> None:
        super().__init__(size)
        self.size = size


def media_error(err: Exception) -> ChannelError:
    """The one place a media fetch failure becomes a ChannelError.

    Messages name a status or an exception type only: aiohttp's own texts carry the URL,
    which must not reach the stored error an agent sees.
    """
    if isinstance(err, UnsafeMediaUrl):
        return ChannelError(f"refused: {err}"[:200], retryable=False, code="refused")
    if isinstance(err, _TooLarge):
        size = f" ({err.size} bytes)" if err.size is not None else ""
        return ChannelError(
            f"larger than the attachment limit{size}", retryable=False, code="too_large"
        )
    if isinstance(err, aiohttp.ClientResponseError):
        # A media resource can lag the webhook that announces it: 404 is worth another try.
        retryable = err.status >= 500 or err.status in (404, 408, 425, 429)
        return ChannelError(f"HTTP {err.status}", retryable=retryable, code="http")
    if isinstance(err, TimeoutError):
        return ChannelError("timed out", retryable=True, code="timeout")
    if isinstance(err, aiohttp.ClientError):
        return ChannelError(type(err).__name__, retryable=True, code="network")
    return ChannelError(f"unusable answer: {type(err).__name__}", retryable=False, code="answer")


class MediaFetcher:
    """Fetches announced media with the account's credentials (Twilio's media auth)."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        api_base: str,
        max_bytes: int,
        timeout_s: float,
        resolve: Resolve = _system_resolve,
    ) -> None:
        self._auth = {"Authorization": aiohttp.encode_basic_auth(account_sid, auth_token)}
        self._api_origin = URL(api_base).origin()
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s
        self._resolve = resolve

    async def _check(self, url: URL) -> None:
        """Refuse a URL outside Twilio's media hosts, or one resolving to a private address.

        The configured API base (a local fake in tests and demos) is trusted as configured.
        """
        if not url.is_absolute() or url.scheme not in ("http", "https"):
            raise UnsafeMediaUrl("not an absolute http(s) URL")
        if url.origin() == self._api_origin:
            return
        host = (url.host or "").lower().rstrip(".")
        if url.scheme != "https":
            raise UnsafeMediaUrl(f"media host {host!r} over plain http")
        if not any(host.endswith(suffix) for suffix in MEDIA_HOST_SUFFIXES):
            raise UnsafeMediaUrl(f"media host {host!r} is not Twilio's")
        try:
            addresses = await self._resolve(host, url.port or 443)
        except OSError as err:
            raise UnsafeMediaUrl(f"media host {host!r} does not resolve: {err}") from None
        if not addresses or not all(_public(a) for a in addresses):
            # A second wall behind the host list (a poisoned resolver, a stray record).
            raise UnsafeMediaUrl(f"media host {host!r} resolves to a non-public address")

    def _trusted(self, url: URL) -> bool:
        # Our credentials go only to Twilio (or to the configured API base, a local fake in
        # tests); aiohttp itself drops them on a redirect to another origin (the CDN).
        if not url.is_absolute():
            return False
        if url.origin() == self._api_origin:
            return True
        host = (url.host or "").lower()
        return url.scheme == "https" and host.endswith(MEDIA_AUTH_HOST_SUFFIXES)

    async def fetch_all(
        self, session: aiohttp.ClientSession, items: tuple[Media, ...]
    ) -> list[Fetched]:
        """Fetch every item concurrently, in index order; failures become pending or failed
        attachments, never exceptions."""
        if not items:
            return []
        return list(await asyncio.gather(*(self._first(session, m) for m in items)))

    async def fetch(
        self, session: aiohttp.ClientSession, url: str, *, content_type: str, filename: str | None
    ) -> Attachment:
        """One media file; ChannelError(retryable=...) when it cannot be had now."""
        try:
            data = await self._download(session, URL(url))
        except (UnsafeMediaUrl, _TooLarge, aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise media_error(err) from None
        return Attachment(filename=filename, content_type=content_type, data=data, source=url)

    async def _first(self, session: aiohttp.ClientSession, media: Media) -> Fetched:
        note: dict[str, Any] = {"index": media.index, "content_type": media.content_type}
        sid = media.url.rstrip("/").rsplit("/", 1)[-1]
        if sid:
            note["media_sid"] = sid[:64]
        ext = mimetypes.guess_extension(media.content_type.split(";")[0].strip()) or ""
        filename = f"{sid or f'media{media.index}'}{ext}"
        try:
            attachment = await self.fetch(
                session, media.url, content_type=media.content_type, filename=filename
            )
        except ChannelError as err:
            logger.warning("media %s of a Twilio message not fetched: %s", media.index, err)
            # A refused URL is never requested again; a too-large file would not fit later.
            keep = err.code not in ("refused", "too_large")
            if not keep:
                note["status"] = err.code
            else:
                note["status"] = "pending" if err.retryable else "failed"
            note["error"] = str(err)
            attachment = Attachment(
                filename=filename,
                content_type=media.content_type,
                state="pending" if err.retryable else "failed",
                source=media.url if keep else None,
                error=str(err),
            )
            return Fetched(media=media, attachment=attachment, note=note)
        note["status"] = "stored"
        note["size"] = len(attachment.data)
        return Fetched(media=media, attachment=attachment, note=note)

    async def _download(self, session: aiohttp.ClientSession, url: URL) -> bytes:
        """The body; _TooLarge as soon as it exceeds the limit (we stop reading early).

        Redirects are followed by hand so that every hop passes ``_check``, and the
        credentials go only to Twilio's own origin, never to the CDN it redirects to.
        """
        for _hop in range(MEDIA_MAX_REDIRECTS + 1):
            await self._check(url)
            async with session.get(
                url,
                headers=self._auth if self._trusted(url) else None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            ) as resp:
                if resp.status in _REDIRECTS:
                    location = resp.headers.get("Location")
                    if not location:
                        raise ValueError(f"redirect {resp.status} without Location")
                    url = url.join(URL(location))
                    continue
                if resp.status != 200:
                    raise aiohttp.ClientResponseError(
                        resp.request_info,
                        resp.history,
                        status=resp.status,
                        message=resp.reason or "",
                    )
                if resp.content_length is not None and resp.content_length > self._max_bytes:
                    raise _TooLarge(resp.content_length)
                buf = bytearray()
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    buf.extend(chunk)
                    if len(buf) > self._max_bytes:
                        raise _TooLarge
                return bytes(buf)
        raise UnsafeMediaUrl(f"more than {MEDIA_MAX_REDIRECTS} redirects")
