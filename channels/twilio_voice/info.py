"""The phone channel's facts: calls (one at a time, interrupting chats), the callbacks the
agents place, and voicemails."""

from __future__ import annotations

from contract.info import ChannelInfo

INFOS = (
    ChannelInfo(
        name="voice",
        endpoint_kind="phone",
        label="Phone",
        badge="TEL",
        colour="#7b3fa0",
        media="voice",
        capacity=1,
        replies=False,  # answered by talking; a written answer goes out by SMS or email
        first_response_s=20,
        labels={"zh": "电话"},
    ),
    ChannelInfo(
        name="callback",
        endpoint_kind="phone",
        label="Callback",
        badge="CB",
        colour="#9a4f8f",
        # Placing the call occupies the agent like any call.
        media="voice",
        capacity=1,
        replies=False,
        first_response_s=900,
        outbound=True,
        labels={"zh": "回电"},
    ),
    ChannelInfo(
        name="voicemail",
        endpoint_kind="phone",
        label="Voicemail",
        badge="VM",
        colour="#5c6b8a",
        # Deferred work like email: picked up when no call or chat needs the agent.
        media="email",
        capacity=5,
        replies=False,
        first_response_s=3600,
        labels={"zh": "语音留言"},
    ),
)
