"""A MediaUrl is a request the hub makes on a stranger's behalf: only Twilio's hosts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from channels.twilio_sms.media import MediaFetcher
from channels.twilio_sms.payloads import Media
from channels.twilio_sms.testing.fake_api import FakeTwilio
from tests.channels.twilio_sms.conftest import ACCOUNT_SID, AUTH_TOKEN

ServerFactory = Callable[..., Awaitable[TestServer]]


def _fetcher(api_base: str, **kw: Any) -> MediaFetcher:
    return MediaFetcher(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        api_base=api_base,
        max_bytes=10_000,
        timeout_s=5,
        **kw,
    )


@pytest.fixture
async def victim(aiohttp_server: ServerFactory) -> tuple[TestServer, list[str]]:
    """An internal service the attacker would like the hub to read for them."""
    hits: list[str] = []

    async def secret(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"internal secret", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/{tail:.*}", secret)
    return await aiohttp_server(app), hits


@pytest.mark.parametrize(
    "url",
    [
        "http://{victim}/admin",  # loopback, another port than the configured API base
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://10.0.0.5/internal",
        "https://[::1]/x",
        "https://api.twilio.com.evil.example/2010-04-01/Media/ME1",
        "http://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",  # not https
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
    ],
)
async def test_media_url_outside_twilio_is_refused_unfetched(
    fake_twilio: tuple[FakeTwilio, str],
    victim: tuple[TestServer, list[str]],
    http: aiohttp.ClientSession,
    url: str,
) -> None:
    server, hits = victim
    _, base = fake_twilio
    media = Media(index=0, url=url.format(victim=f"127.0.0.1:{server.port}"), content_type="a/b")
    [item] = await _fetcher(base).fetch_all(http, (media,))
    # Kept as a failed attachment the agent sees, without the URL: never fetched, never retried.
    assert (item.attachment.state, item.attachment.source) == ("failed", None)
    assert item.note["status"] == "refused"
    assert hits == []


async def test_twilio_named_host_resolving_to_a_private_address_is_refused(
    victim: tuple[TestServer, list[str]],
    fake_twilio: tuple[FakeTwilio, str],
    http: aiohttp.ClientSession,
) -> None:
    server, hits = victim
    asked: list[str] = []

    async def poisoned(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"] if host == "media.twiliocdn.com" else ["10.1.2.3"]

    fetcher = _fetcher(fake_twilio[1], resolve=poisoned)
    items = (
        Media(index=0, url=f"https://media.twiliocdn.com:{server.port}/x", content_type="a/b"),
        Media(index=1, url="https://api.twilio.com/2010-04-01/Media/ME1", content_type="a/b"),
    )
    fetched = await fetcher.fetch_all(http, items)
    assert [f.note["status"] for f in fetched] == ["refused", "refused"]
    assert "non-public" in fetched[0].note["error"]
    assert sorted(asked) == ["api.twilio.com", "media.twiliocdn.com"]
    assert hits == []


async def test_redirect_away_from_twilio_is_not_followed(
    aiohttp_server: ServerFactory,
    victim: tuple[TestServer, list[str]],
    http: aiohttp.ClientSession,
) -> None:
    server, hits = victim

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{server.port}/metadata")

    app = web.Application()
    app.router.add_get("/{tail:.*}", redirect)
    api = await aiohttp_server(app)
    base = f"http://127.0.0.1:{api.port}"
    media = Media(index=0, url=f"{base}/2010-04-01/Media/ME1", content_type="image/png")
    [item] = await _fetcher(base).fetch_all(http, (media,))
    assert item.note["status"] == "refused"
    assert hits == []


async def test_redirect_loops_stop(
    aiohttp_server: ServerFactory, http: aiohttp.ClientSession
) -> None:
    calls: list[str] = []

    async def loop(request: web.Request) -> web.Response:
        calls.append(request.path)
        raise web.HTTPFound(f"/hop{len(calls)}")

    app = web.Application()
    app.router.add_get("/{tail:.*}", loop)
    api = await aiohttp_server(app)
    base = f"http://127.0.0.1:{api.port}"
    [item] = await _fetcher(base).fetch_all(
        http, (Media(index=0, url=f"{base}/m", content_type="a/b"),)
    )
    assert item.note["status"] == "refused"
    assert len(calls) == 4  # the first request and three redirects
