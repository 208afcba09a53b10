"""The Telegram channel: Bot API webhook in, python-telegram-bot ``Bot`` out."""
