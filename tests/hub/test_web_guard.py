"""Cross-site writes and login guessing are refused; nothing they sent is stored."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from hub.web import keys
from hub.web.throttle import MAX_LOCK_S, USER_FREE_FAILURES, LoginThrottle
from tests.conftest import AUTH, ClientFactory

PASSWORD = "correct horse battery"
EVIL = "https://evil.example"


async def _login(client: TestClient[Any, Any], username: str) -> aiohttp.CookieJar:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        resp = await session.post(
            client.make_url("/login"), json={"username": username, "password": PASSWORD}
        )
        assert resp.status == 200, await resp.text()
    return jar


async def _conversation(client: TestClient[Any, Any]) -> int:
    resp = await client.post(
        "/api/v1/inbound",
        json={"from": "+14155550100", "text": "hello", "external_id": "x-1"},
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return int(body["conversation_id"])


async def _messages(client: TestClient[Any, Any], conversation_id: int) -> list[str]:
    resp = await client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=AUTH)
    return [m["text"] for m in (await resp.json())["items"]]


@pytest.fixture
async def hub(hub_client: ClientFactory) -> TestClient[Any, Any]:
    client = await hub_client()
    await client.app[keys.HUB].users.create(username="sam", password=PASSWORD, role="admin")
    return client


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        # The reproduced attack: a foreign page posts text/plain (no CORS preflight).
        ({"Origin": EVIL, "Content-Type": "text/plain"}, '{"text": "forged"}'),
        # A foreign origin with a JSON type (only possible after a preflight we never grant).
        ({"Origin": EVIL, "Content-Type": "application/json"}, '{"text": "forged"}'),
        # Browsers that announce a cross-site fetch.
        (
            {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
            '{"text": "forged"}',
        ),
        # No Origin but a simple type: a form post from an old browser or a sandboxed frame.
        ({"Content-Type": "application/x-www-form-urlencoded"}, "text=forged"),
        ({"Origin": "null", "Content-Type": "application/json"}, '{"text": "forged"}'),
    ],
)
async def test_cross_site_cookie_write_is_403_and_stores_nothing(
    hub: TestClient[Any, Any], headers: dict[str, str], body: str
) -> None:
    conv = await _conversation(hub)
    jar = await _login(hub, "sam")
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        resp = await session.post(
            hub.make_url(f"/api/v1/conversations/{conv}/messages"), data=body, headers=headers
        )
        assert resp.status == 403
        assert (await resp.json())["error"] == "cross_site"
    assert "forged" not in await _messages(hub, conv)


async def test_same_origin_json_cookie_write_is_accepted(hub: TestClient[Any, Any]) -> None:
    conv = await _conversation(hub)
    jar = await _login(hub, "sam")
    origin = f"http://{hub.host}:{hub.port}"
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        resp = await session.post(
            hub.make_url(f"/api/v1/conversations/{conv}/messages"),
            json={"text": "from the console"},
            headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"},
        )
        assert resp.status == 201, await resp.text()
    assert "from the console" in await _messages(hub, conv)


async def test_bearer_token_writes_are_not_subject_to_the_cookie_rules(
    hub: TestClient[Any, Any],
) -> None:
    conv = await _conversation(hub)
    resp = await hub.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"text": "integration"},
        headers={**AUTH, "Origin": EVIL},
    )
    assert resp.status == 201


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Origin": EVIL, "Content-Type": "application/json"},
    ],
)
async def test_login_form_cannot_be_forged(
    hub: TestClient[Any, Any], headers: dict[str, str]
) -> None:
    body = f"username=sam&password={PASSWORD.replace(' ', '+')}"
    if headers["Content-Type"] == "application/json":
        body = f'{{"username": "sam", "password": "{PASSWORD}"}}'
    resp = await hub.post("/login", data=body, headers=headers)
    assert resp.status == 403
    assert "hub_session" not in resp.cookies


async def test_login_is_throttled_after_repeated_failures(
    hub: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.accounts.users")
    for _ in range(USER_FREE_FAILURES):
        resp = await hub.post("/login", json={"username": "sam", "password": "guess-guess"})
        assert resp.status == 401
    resp = await hub.post("/login", json={"username": "sam", "password": "guess-again"})
    assert resp.status == 401  # the failure that starts the lock
    # Now even the right password waits: the guesser learns nothing from the answer.
    resp = await hub.post("/login", json={"username": "SAM", "password": PASSWORD})
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    failed = [r.getMessage() for r in caplog.records if "login failed" in r.getMessage()]
    assert len(failed) == USER_FREE_FAILURES + 1
    assert all("guess" not in line for line in caplog.messages)  # no password in the log
    # Another account from another address is not locked out by sam's attacker.
    await hub.app[keys.HUB].users.create(username="ann", password=PASSWORD)
    hub.app[keys.HUB].users.throttle._addresses.clear()
    assert (await hub.post("/login", json={"username": "ann", "password": PASSWORD})).status == 200


def test_throttle_backs_off_exponentially_and_forgets() -> None:
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(USER_FREE_FAILURES):
        throttle.failed(username="u", address="a")
    assert throttle.retry_after(username="u", address="b") == 0
    waits = []
    for _ in range(5):
        throttle.failed(username="u", address="a")
        waits.append(throttle.retry_after(username="u", address="b"))
    assert waits == [1, 2, 4, 8, 16]
    for _ in range(30):
        throttle.failed(username="u", address="a")
    assert throttle.retry_after(username="u", address="b") == MAX_LOCK_S
    # The address alone is over its own allowance: another username from it waits too.
    assert throttle.retry_after(username="other", address="a") > 0
    now[0] += MAX_LOCK_S + 1
    assert throttle.retry_after(username="u", address="a") == 0
    throttle.succeeded(username="u")
    assert throttle.retry_after(username="u", address="c") == 0
