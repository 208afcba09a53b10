"""``hub telegram``: register, remove or inspect the bot's webhook."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot
from telegram.error import TelegramError

from channels.telegram.adapter import make_bot
from channels.telegram.const import HANDLED_UPDATES, SECRET_TOKEN_RE, WEBHOOK_PATH
from contract.errors import ConfigError

HELP = "register or inspect the Telegram webhook"
PROG = "hub telegram"


def build_parser() -> argparse.ArgumentParser:
    """The ``hub telegram`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Manage the Telegram bot's webhook. Uses HUB_TELEGRAM_BOT_TOKEN, "
        "HUB_TELEGRAM_SECRET_TOKEN, HUB_TELEGRAM_API_BASE and HUB_PUBLIC_URL (plus the "
        "settings every hub command needs, e.g. HUB_API_TOKEN).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "set-webhook",
        help="point the bot at this hub",
        description="Call setWebhook with url = HUB_PUBLIC_URL + "
        f"{WEBHOOK_PATH}, the secret token, and allowed_updates = "
        f"{', '.join(HANDLED_UPDATES)} (the update types the hub handles).",
    )
    p.add_argument("--url", help=f"webhook URL (default: HUB_PUBLIC_URL + {WEBHOOK_PATH})")
    p.add_argument(
        "--drop-pending-updates",
        action="store_true",
        help="discard updates Telegram is still holding for the bot",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        choices=range(1, 101),
        metavar="1-100",
        help="simultaneous webhook connections Telegram may open (default 40)",
    )
    p.set_defaults(run=_set_webhook)

    p = sub.add_parser(
        "delete-webhook",
        help="stop Telegram from calling the hub",
        description="Call deleteWebhook.",
    )
    p.add_argument(
        "--drop-pending-updates",
        action="store_true",
        help="discard updates Telegram is still holding for the bot",
    )
    p.set_defaults(run=_delete_webhook)

    p = sub.add_parser(
        "info",
        help="show the bot and its webhook state",
        description="Call getMe and getWebhookInfo (checks the token, shows pending updates and "
        "Telegram's last delivery error).",
    )
    p.set_defaults(run=_info)
    return parser


async def _set_webhook(bot: Bot, args: argparse.Namespace, settings: Any) -> str:
    secret = settings.telegram_secret_token.get_secret_value()
    if not secret:
        raise ConfigError(
            "missing setting HUB_TELEGRAM_SECRET_TOKEN: the hub refuses webhook calls without it"
        )
    if not SECRET_TOKEN_RE.match(secret):
        raise ConfigError(
            "invalid setting HUB_TELEGRAM_SECRET_TOKEN: 1-256 characters of A-Z a-z 0-9 _ -"
        )
    url = args.url or f"{settings.public_url}{WEBHOOK_PATH}"
    if not url.startswith("https://"):
        print(f"{PROG}: warning: Telegram only delivers to https:// URLs ({url})", file=sys.stderr)
    await bot.set_webhook(
        url=url,
        secret_token=secret,
        allowed_updates=list(HANDLED_UPDATES),
        drop_pending_updates=args.drop_pending_updates or None,
        max_connections=args.max_connections,
    )
    return f"webhook set: {url} (updates: {', '.join(HANDLED_UPDATES)})"


async def _delete_webhook(bot: Bot, args: argparse.Namespace, settings: Any) -> str:
    await bot.delete_webhook(drop_pending_updates=args.drop_pending_updates or None)
    return "webhook deleted"


async def _info(bot: Bot, args: argparse.Namespace, settings: Any) -> str:
    me = await bot.get_me()
    info = await bot.get_webhook_info()
    lines = [
        f"bot:             @{me.username} (id {me.id})",
        f"webhook url:     {info.url or '(none)'}",
        f"pending updates: {info.pending_update_count}",
        f"allowed updates: {', '.join(info.allowed_updates or ()) or '(all default types)'}",
    ]
    if info.last_error_message:
        lines.append(f"last error:      {info.last_error_date} {info.last_error_message}")
    return "\n".join(lines)


Command = Callable[[Bot, argparse.Namespace, Any], Awaitable[str]]


async def _run(command: Command, args: argparse.Namespace, settings: Any) -> str:
    if not settings.telegram_bot_token.get_secret_value():
        raise ConfigError("missing setting HUB_TELEGRAM_BOT_TOKEN: the bot's token from BotFather")
    bot, request = make_bot(
        settings.telegram_bot_token.get_secret_value(), settings.telegram_api_base
    )
    try:
        return await command(bot, args, settings)
    finally:
        await request.shutdown()


def main(argv: list[str] | None, load_settings: Callable[[], Any]) -> int:
    """Entry point of ``hub telegram``; errors are printed as one line.

    ``load_settings`` is the hub's settings loader, called only once the arguments parsed
    (so ``--help`` works without any configuration)."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        print(asyncio.run(_run(args.run, args, settings)))
    except ConfigError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    except TelegramError as err:
        token = settings.telegram_bot_token.get_secret_value()
        detail = err.message.replace(token, "<token>")  # the token is part of every API URL
        print(f"{PROG}: Telegram call failed: {type(err).__name__}: {detail}", file=sys.stderr)
        return 1
    return 0
