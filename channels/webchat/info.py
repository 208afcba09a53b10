"""The web chat channel's facts: a live chat from the company's own site."""

from __future__ import annotations

from contract.info import ChannelInfo

INFOS = (
    ChannelInfo(
        name="webchat",
        endpoint_kind="webchat",
        label="Web chat",
        badge="WEB",
        colour="#0b7285",
        media="message",
        capacity=3,
        typing=True,
        first_response_s=30,
        labels={"zh": "网页聊天"},
    ),
)
