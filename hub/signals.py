"""Ephemeral signals: things shown live and never stored (a customer typing).

The interaction stream carries what was committed; these are fire-and-forget hints for
whoever listens (the console gateway). With several hub processes a signal raised in one
also goes to the others through the bus (``hub.bus``), which delivers it there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CustomerTyping:
    """A customer started or stopped typing in a conversation."""

    conversation_id: int
    assignee_id: int | None
    on: bool


@dataclass(frozen=True, slots=True)
class ConversationRead:
    """The agent handling a conversation read it up to ``message_id`` (the customer's)."""

    conversation_id: int
    channel: str
    message_id: int


@dataclass(frozen=True, slots=True)
class AgentTyping:
    """The agent handling a conversation on a live channel (web chat) is typing: whichever
    process holds the customer's socket shows it."""

    conversation_id: int
    channel: str
    address: str


Signal = CustomerTyping | ConversationRead | AgentTyping
Listener = Callable[[Signal], None]


class Signals:
    """Listeners by registration; a failing listener is logged, never raised to the sender."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        # Where a signal raised here goes besides this process's listeners (the bus).
        self.outlet: Callable[[Signal], None] | None = None

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; the returned function removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def send(self, signal: Signal) -> None:
        """Raise a signal: this process's listeners, then every other process's."""
        self.deliver(signal)
        if self.outlet is not None:
            self.outlet(signal)

    def deliver(self, signal: Signal) -> None:
        """Hand a signal to this process's listeners."""
        for listener in tuple(self._listeners):
            try:
                listener(signal)
            except Exception:
                logger.exception("signal listener failed on %r", signal)
