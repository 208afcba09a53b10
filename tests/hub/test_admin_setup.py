"""The admin setup API behind /admin: teams, skills, the routing preview, password resets,
CSV import with a dry run, and the channel page's status, webhook URLs and actions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from channels.telegram.testing.fake_api import FakeTelegram, start_fake_telegram
from hub.web import keys
from tests import factories
from tests.conftest import AUTH

Client = TestClient[Any, Any]
TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET = "hub-secret_0123456789"


async def call(client: Client, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    async with client.request(method, path, json=body, headers=AUTH) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[FakeTelegram, str]]:
    fake, base = await start_fake_telegram(TOKEN)
    yield fake, base
    await fake.stop()


async def test_teams_are_created_once_and_listed_with_their_queues(api: Client) -> None:
    created = await call(api, "POST", "/api/v1/teams", {"name": "Billing"}, status=201)
    await call(api, "POST", "/api/v1/teams", {"name": "Billing"}, status=409)
    await call(api, "PUT", "/api/v1/queues/invoices", {"team": "Billing"})
    (team,) = (await call(api, "GET", "/api/v1/teams"))["items"]
    assert (team["id"], team["name"], team["queues"]) == (created["id"], "Billing", ["invoices"])
    audit = (await call(api, "GET", "/api/v1/audit"))["items"]
    assert any(e["action"] == "team.create" for e in audit)


async def test_the_preview_checks_syntax_and_lists_who_qualifies_now(api: Client) -> None:
    hub = api.app[keys.HUB]
    await factories.agent(hub, "amy", skills={"billing": 4, "lang.zh": 5})
    await factories.agent(hub, "bob", skills={"billing": 2})
    await factories.agent(hub, "sue", role="supervisor", skills={"billing": 5})
    bad = await call(api, "POST", "/api/v1/routing/preview", {"expression": "billing >="})
    assert bad["valid"] is False
    assert bad["error"]
    good = await call(api, "POST", "/api/v1/routing/preview", {"expression": "billing >= 3"})
    assert good["valid"] is True
    assert [q["username"] for q in good["qualifies"]] == ["amy"]  # supervisors take no work
    everyone = await call(api, "POST", "/api/v1/routing/preview", {"expression": ""})
    assert [q["username"] for q in everyone["qualifies"]] == ["amy", "bob"]


async def test_a_password_reset_is_shown_once_and_ends_the_old_sessions(api: Client) -> None:
    hub = api.app[keys.HUB]
    agent_id = await factories.agent(hub, "amy")
    jar = await factories.login(api, "amy")
    reset = await call(api, "POST", f"/api/v1/agents/{agent_id}/password-reset")
    assert len(reset["password"]) >= 12

    async def status(path: str, *, cookies: aiohttp.CookieJar | None = None, **body: str) -> int:
        async with aiohttp.ClientSession(cookie_jar=cookies) as session:
            method = session.post if body else session.get
            async with method(api.make_url(path), json=body or None) as resp:
                return resp.status

    assert await status("/api/v1/me", cookies=jar) == 401  # the old session ended
    assert await status("/login", username="amy", password=factories.PASSWORD) == 401
    assert await status("/login", username="amy", password=reset["password"]) == 200


CSV = """username,display_name,role,team,skills,capacity
nina,Nina Chen,agent,Billing,billing:4;lang.zh:5,sms:2;voice:1
omar,Omar,agent,Billing,billing:2,
bad name,,agent,,,
nina,Nina again,agent,,,
"""


async def test_csv_import_previews_then_creates_and_shows_passwords_once(api: Client) -> None:
    preview = await call(api, "POST", "/api/v1/agents/import", {"csv": CSV, "dry_run": True})
    assert [(r["username"], r["action"]) for r in preview["rows"]] == [
        ("nina", "create"),
        ("omar", "create"),
        ("bad name", "error"),
        ("nina", "error"),
    ]
    assert (preview["created"], preview["errors"]) == (2, 2)
    assert all(r["password"] == "" for r in preview["rows"])
    assert [a["username"] for a in (await call(api, "GET", "/api/v1/agents"))["items"]] == []
    done = await call(api, "POST", "/api/v1/agents/import", {"csv": CSV, "dry_run": False})
    passwords = {r["username"]: r["password"] for r in done["rows"] if r["action"] == "create"}
    assert set(passwords) == {"nina", "omar"}
    agents = {a["username"]: a for a in (await call(api, "GET", "/api/v1/agents"))["items"]}
    assert agents["nina"]["team"] == "Billing"
    assert {s["name"]: s["proficiency"] for s in agents["nina"]["skills"]} == {
        "billing": 4,
        "lang.zh": 5,
    }
    assert agents["nina"]["capacity"] == {"sms": 2, "voice": 1}
    again = await call(api, "POST", "/api/v1/agents/import", {"csv": CSV, "dry_run": True})
    assert [r["action"] for r in again["rows"]][:2] == ["update", "update"]
    await call(api, "POST", "/api/v1/agents/import", {"csv": "name\nx\n"}, status=400)


async def test_the_channel_page_lists_webhook_urls_from_the_public_url_and_acts(
    hub_client: Callable[..., Awaitable[Client]], telegram: tuple[FakeTelegram, str]
) -> None:
    fake, base = telegram
    client = await hub_client(
        public_url="https://hub.example.test",
        telegram_bot_token=TOKEN,
        telegram_secret_token=SECRET,
        telegram_api_base=base,
    )
    listing = await call(client, "GET", "/api/v1/channels")
    assert listing["public_url"] == "https://hub.example.test"
    by_name = {c["name"]: c for c in listing["items"]}
    assert by_name["telegram"]["enabled"] is True
    assert by_name["telegram"]["webhooks"] == ["https://hub.example.test/webhooks/telegram"]
    assert by_name["telegram"]["actions"] == ["test_send", "register_webhook"]
    assert by_name["wechat"]["enabled"] is False  # registered, not configured
    assert by_name["wechat"]["webhooks"] == []
    assert "secret" not in str(listing).lower().replace("secrets", "")
    assert SECRET not in str(listing)
    sent = await call(
        client, "POST", "/api/v1/channels/telegram/test", {"to": "700100201", "text": "ping"}
    )
    assert sent["ok"] is True
    assert fake.calls_of("sendMessage")[-1]["text"] == "ping"
    failed = await call(client, "POST", "/api/v1/channels/telegram/test", {"to": "not-a-chat"})
    assert failed["ok"] is False
    registered = await call(client, "POST", "/api/v1/channels/telegram/webhook")
    assert registered["ok"] is True, registered
    (webhook,) = fake.calls_of("setWebhook")
    assert webhook["url"] == "https://hub.example.test/webhooks/telegram"
    assert webhook["secret_token"] == SECRET
    await call(client, "POST", "/api/v1/channels/wechat/test", {"to": "x"}, status=404)
