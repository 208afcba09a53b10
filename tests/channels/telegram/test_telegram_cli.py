"""``hub telegram set-webhook | delete-webhook | info`` against the fake Bot API."""

from __future__ import annotations

import asyncio

import pytest

from channels.telegram.cli import main
from channels.telegram.testing.fake_api import FakeTelegram
from config.settings import load_settings
from tests.channels.telegram.conftest import SECRET, TOKEN


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fake_telegram: tuple[FakeTelegram, str]) -> FakeTelegram:
    monkeypatch.setenv("HUB_API_TOKEN", "test-token")
    monkeypatch.setenv("HUB_TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("HUB_TELEGRAM_SECRET_TOKEN", SECRET)
    monkeypatch.setenv("HUB_TELEGRAM_API_BASE", fake_telegram[1])
    monkeypatch.setenv("HUB_PUBLIC_URL", "https://hub.example.com")
    return fake_telegram[0]


async def run(argv: list[str]) -> int:
    # main() runs its own event loop (asyncio.run), so it runs in a thread beside the fake.
    return await asyncio.to_thread(main, argv, load_settings)


async def test_set_webhook_registers_url_secret_and_handled_types(
    env: FakeTelegram, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(["set-webhook", "--drop-pending-updates"]) == 0
    (call,) = env.calls_of("setWebhook")
    assert call["url"] == "https://hub.example.com/webhooks/telegram"
    assert call["secret_token"] == SECRET
    assert call["allowed_updates"] == ["message", "edited_message", "callback_query"]
    assert call["drop_pending_updates"] is True
    out = capsys.readouterr()
    assert "webhook set: https://hub.example.com/webhooks/telegram" in out.out
    assert TOKEN not in out.out + out.err


async def test_info_shows_bot_and_webhook(
    env: FakeTelegram, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(["set-webhook"]) == 0
    assert await run(["info"]) == 0
    out = capsys.readouterr().out
    assert "@hub_support_bot" in out
    assert "https://hub.example.com/webhooks/telegram" in out
    assert "message, edited_message, callback_query" in out


async def test_delete_webhook(env: FakeTelegram, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(["delete-webhook"]) == 0
    assert env.calls_of("deleteWebhook") == [{}]
    assert "webhook deleted" in capsys.readouterr().out


async def test_missing_bot_token_is_one_clear_line(
    env: FakeTelegram, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUB_TELEGRAM_BOT_TOKEN", "")
    assert await run(["set-webhook"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "HUB_TELEGRAM_BOT_TOKEN" in err
    assert env.calls == []


async def test_missing_secret_refuses_to_register(
    env: FakeTelegram, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUB_TELEGRAM_SECRET_TOKEN", "")
    assert await run(["set-webhook"]) == 2
    assert "HUB_TELEGRAM_SECRET_TOKEN" in capsys.readouterr().err
    assert env.calls_of("setWebhook") == []


async def test_rejected_token_is_one_line_without_the_token(
    env: FakeTelegram, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUB_TELEGRAM_BOT_TOKEN", "123:wrong")
    assert await run(["info"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Unauthorized" in err
    assert "wrong" not in err


def test_help_names_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"], load_settings)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hub telegram")
    for command in ("set-webhook", "delete-webhook", "info"):
        assert command in out
