"""Server-side fetch of MMS/WhatsApp media: authenticated, size-limited, time-bounded."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from channels.base import Attachment
from channels.twilio_sms.const import MEDIA_AUTH_HOST_SUFFIXES
from channels.twilio_sms.payloads import Media

logger = logging.getLogger(__name__)

_CHUNK = 65_536


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
    ) -> None:
        self._auth = {"Authorization": aiohttp.encode_basic_auth(account_sid, auth_token)}
        self._api_origin = URL(api_base).origin()
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s

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
        """The body, or None when it is larger than the limit (we stop reading early)."""
        if url.scheme not in ("http", "https"):
            raise ValueError("not an http(s) URL")
        async with session.get(
            url,
            headers=self._auth if self._trusted(url) else None,
            allow_redirects=True,
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
        ) as resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(
                    resp.request_info, resp.history, status=resp.status, message=resp.reason or ""
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
