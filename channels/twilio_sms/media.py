"""Server-side fetch of MMS/WhatsApp media: authenticated, size-limited, time-bounded."""

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

from channels.base import Attachment
from channels.twilio_sms.const import (
    MEDIA_AUTH_HOST_SUFFIXES,
    MEDIA_HOST_SUFFIXES,
    MEDIA_MAX_REDIRECTS,
)
from channels.twilio_sms.payloads import Media

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
    """One media item's outcome: bytes (as an attachment) or why there are none."""

    media: Media
    attachment: Attachment | None
    note: dict[str, Any]


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
        """Fetch every item concurrently; failures become notes, never exceptions."""
        if not items:
            return []
        return list(await asyncio.gather(*(self._fetch(session, m) for m in items)))

    async def _fetch(self, session: aiohttp.ClientSession, media: Media) -> Fetched:
        note: dict[str, Any] = {"index": media.index, "content_type": media.content_type}
        sid = media.url.rstrip("/").rsplit("/", 1)[-1]
        if sid:
            note["media_sid"] = sid[:64]
        try:
            data = await self._download(session, URL(media.url), note)
        except UnsafeMediaUrl as err:
            logger.warning("media %s of a Twilio message refused: %s", media.index, err)
            note["status"] = "refused"
            note["error"] = str(err)[:200]
            return Fetched(media=media, attachment=None, note=note)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            logger.warning("media %s of a Twilio message not fetched: %s", media.index, err)
            note["status"] = "failed"
            note["error"] = f"{type(err).__name__}: {err}"[:200]
            return Fetched(media=media, attachment=None, note=note)
        if data is None:
            note["status"] = "too_large"
            return Fetched(media=media, attachment=None, note=note)
        note["status"] = "stored"
        note["size"] = len(data)
        ext = mimetypes.guess_extension(media.content_type.split(";")[0].strip()) or ""
        attachment = Attachment(
            filename=f"{sid or f'media{media.index}'}{ext}",
            content_type=media.content_type,
            data=data,
            source_url=media.url,
        )
        return Fetched(media=media, attachment=attachment, note=note)

    async def _download(
        self, session: aiohttp.ClientSession, url: URL, note: dict[str, Any]
    ) -> bytes | None:
        """The body, or None when it is larger than the limit (we stop reading early).

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
                    note["size"] = resp.content_length
                    return None
                buf = bytearray()
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    buf.extend(chunk)
                    if len(buf) > self._max_bytes:
                        return None
                return bytes(buf)
        raise UnsafeMediaUrl(f"more than {MEDIA_MAX_REDIRECTS} redirects")
