"""Telegram: a bot's private chats, addressed by the user's numeric id."""

from contract.info import ChannelInfo

INFOS = (
    ChannelInfo(
        name="telegram",
        endpoint_kind="telegram",
        label="Telegram",
        badge="TG",
        colour="#229ed9",
        typing=True,
        labels={"zh": "Telegram"},
    ),
)
