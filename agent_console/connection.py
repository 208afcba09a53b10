"""One console websocket and what its user may see of the interaction stream."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from agent_console.sender import Outbox
from hub import events
from hub.access import reads_note
from hub.accounts.principal import Principal
from hub.stream import StreamEvent

# Events that make the conversation the agent's to follow, and the ends of an offer.
_TAKEN = frozenset({events.OfferCreated.TYPE, events.ConversationAssigned.TYPE})
_OFFER_ENDED = frozenset(
    {events.OfferRejected.TYPE, events.OfferExpired.TYPE, events.OfferRescinded.TYPE}
)


@dataclass(eq=False)
class Connection:
    """One open console websocket."""

    principal: Principal
    ws: web.WebSocketResponse
    out: Outbox
    supervisor: bool
    # conversation id -> connections following it, shared by the gateway (fan-out index).
    index: dict[int, set[Connection]] = field(default_factory=dict)
    conversations: set[int] = field(default_factory=set)
    viewing: set[int] = field(default_factory=set)
    monitoring: set[int] = field(default_factory=set)  # followed read-only (supervisors)
    last_seq: int = 0
    # When the commanding side last checked the login behind this socket (monotonic s).
    session_checked_at: float = 0.0
    # A team supervisor's queues (set with the first snapshot); None: the whole floor.
    queues: frozenset[str] | None = None

    @property
    def agent_id(self) -> int:
        assert self.principal.agent_id is not None
        return self.principal.agent_id

    def sees(self, event: StreamEvent) -> bool:
        """Visibility rule; also tracks which conversations this agent is involved in."""
        if event.type == events.NoteAdded.TYPE and not reads_note(self.principal, event.payload):
            return False  # a note for another team
        conv = event.conversation_id
        if self.supervisor:
            # The floor (conversations, offers, agents, queues) of their teams' queues (all
            # of it for a floor supervisor); what is said in a conversation only where the
            # supervisor follows it (monitoring, own work).
            if conv is not None and conv in self.conversations:
                return True
            if self.queues is not None and event.queue and event.queue not in self.queues:
                return False
            return not is_content(event)
        mine = event.agent_id == self.agent_id
        if conv is not None and mine and event.type in _TAKEN:
            self.follow(conv)
        visible = mine or (conv is not None and conv in self.conversations)
        if conv is not None and not mine and event.type == events.ConversationAssigned.TYPE:
            # The conversation went to someone else (transfer): stop following it.
            self.unfollow(conv)
        ended = event.type in (
            events.OfferRejected.TYPE,
            events.OfferExpired.TYPE,
            events.OfferRescinded.TYPE,
        )
        if ended and mine and conv is not None:
            self.unfollow(conv)
        return visible

    def follow(self, conversation_id: int) -> None:
        self.conversations.add(conversation_id)
        self.index.setdefault(conversation_id, set()).add(self)

    def unfollow(self, conversation_id: int) -> None:
        self.conversations.discard(conversation_id)
        followers = self.index.get(conversation_id)
        if followers is not None:
            followers.discard(self)
            if not followers:
                del self.index[conversation_id]


CONTENT_PREFIXES = ("message.", "note.")


def is_content(event: StreamEvent) -> bool:
    """An event about what was said (messages, notes), not about the state of the floor."""
    return event.type.startswith(CONTENT_PREFIXES)
