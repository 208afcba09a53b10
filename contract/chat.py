"""The contract between a live-chat channel (the web chat widget) and the hub.

Besides ``HubPort``, a chat adapter reads what its visitor may see (their own endpoint's
conversations, never anyone else's), reports the visitor typing, and is told when an agent
joins, leaves or closes the conversation (``ConversationObserver``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from contract.channel import Attachment, EndpointKind

__all__ = [
    "ChatFile",
    "ChatMessage",
    "ChatPort",
    "ChatStatus",
    "ConversationObserver",
    "ConversationUpdate",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatFile:
    """An attachment as a visitor sees it (its bytes come through ``ChatPort.chat_file``)."""

    id: int
    name: str
    content_type: str
    size: int | None
    state: str  # pending / fetched / failed


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessage:
    """One message of the visitor's conversations: theirs ("in") or an agent's ("out")."""

    id: int
    conversation_id: int
    direction: str
    author: str  # the agent's first name ("" for the visitor's own)
    text: str
    at: datetime
    files: tuple[ChatFile, ...] = ()
    bot: bool = False  # a bot's answer, not an agent's
    survey: bool = False  # a satisfaction survey: the client offers a 1-5 rating


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatStatus:
    """The visitor's latest conversation: waiting (where), with an agent, closed, or none."""

    state: str  # new / bot (a bot answers; no agent yet) / queued / assigned / closed
    conversation_id: int | None = None
    position: int = 0
    expected_wait_s: int | None = None
    agent: str = ""  # first name of the agent (assigned)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationUpdate:
    """Something happened to a conversation on one of the adapter's channels."""

    channel: str
    conversation_id: int
    endpoint_kind: EndpointKind
    address: str
    # assigned / queued / closed / wrap_up / transferred
    kind: str
    agent: str = ""
    at: datetime | None = None
    extra: dict[str, object] = field(default_factory=dict)


class ChatPort(Protocol):
    """What a chat adapter may ask of the hub, besides ``HubPort``."""

    async def chat_history(
        self, *, channel: str, endpoint_kind: EndpointKind, address: str, after_id: int, limit: int
    ) -> list[ChatMessage]:
        """Messages (not notes) of this endpoint's conversations on ``channel``, id order."""
        ...

    async def chat_status(
        self, *, channel: str, endpoint_kind: EndpointKind, address: str
    ) -> ChatStatus: ...

    async def chat_waiting(
        self, *, channel: str, endpoint_kind: EndpointKind, addresses: Sequence[str]
    ) -> dict[str, ChatStatus]:
        """The statuses of those of these endpoints whose conversation is still waiting
        (the others are left out): for refreshing many waiting visitors at once."""
        ...

    async def chat_file(
        self, *, channel: str, endpoint_kind: EndpointKind, address: str, file_id: int
    ) -> Attachment | None:
        """A file of this endpoint's conversations on ``channel``; None for anyone else's."""
        ...

    async def customer_typing(
        self, *, channel: str, endpoint_kind: EndpointKind, address: str, on: bool
    ) -> None:
        """Ephemeral: shown to the agent handling the conversation; never stored."""
        ...

    async def bot_reply(self, *, conversation_id: int, text: str) -> int | None:
        """Store and send a bot's answer on a conversation the bot holds (``hold``); its
        message id, or None when the conversation is no longer the bot's."""
        ...

    async def hand_off(self, *, conversation_id: int) -> bool:
        """The bot gives the conversation to people (the visitor asked, or the bot had no
        answer): it is routed from now on. False when it was not the bot's."""
        ...

    async def can_take(self, *, channel: str, queue: str) -> bool:
        """Whether an agent could take a new conversation on ``channel`` now (logged in,
        serving that channel and queue): False sends visitors to the offline form."""
        ...


@runtime_checkable
class ConversationObserver(Protocol):
    """An adapter told about assignment, transfer and closing (to tell its customer)."""

    async def conversation_update(self, update: ConversationUpdate) -> None: ...
