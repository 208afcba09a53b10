"""Typed events of the interaction stream: one frozen dataclass per stored event type.

Each class carries its wire name (``TYPE``, what the ``events.type`` column, the console
frames, the JS and PROTOCOL.md use) and a ``VERSION`` of its payload shape. The version is
not written into stored payloads or frames: consumers (JS included) read payload keys as
they are, and rows stored before typing carry none. A payload change that old readers
cannot take bumps ``VERSION`` and teaches ``parse`` the old shape.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, dataclass_transform

if TYPE_CHECKING:
    from hub.stream import StreamEvent

logger = logging.getLogger(__name__)

E = TypeVar("E", bound="HubEvent")

# The columns every stored event has besides its payload.
ENVELOPE = ("conversation_id", "customer_id", "agent_id", "queue", "channel")


@dataclass(frozen=True, slots=True)
class LazyId:
    """An event payload value that becomes ``row.id`` once the row is flushed.

    Lets a unit of work queue events for rows it has not flushed yet, so many inserts of
    one transaction go to the database as one multi-row statement.
    """

    row: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class HubEvent:
    """The envelope every stream event shares (today's event columns)."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    # Payload fields left out of the stored payload while None: the producers that never
    # set them stored no such key, and readers already treat a missing key as absent.
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset()
    PAYLOAD_FIELDS: ClassVar[tuple[str, ...]] = ()

    conversation_id: int | None = None
    customer_id: int | None = None
    agent_id: int | None = None
    queue: str = ""
    channel: str = ""

    def payload(self) -> dict[str, Any]:
        """The stored payload dict (``LazyId`` values are resolved when the row is stored)."""
        omit = self.OMIT_NONE
        out: dict[str, Any] = {}
        for name in self.PAYLOAD_FIELDS:
            value = getattr(self, name)
            if value is None and name in omit:
                continue
            out[name] = value
        return out

    def to_draft(self) -> dict[str, Any]:
        """The unit of work's draft of this event (``uow.event_rows`` numbers it)."""
        return {
            "type": self.TYPE,
            "conversation_id": self.conversation_id,
            "customer_id": self.customer_id,
            "agent_id": self.agent_id,
            "queue": self.queue,
            "channel": self.channel,
            "payload": self.payload(),
        }


EVENT_TYPES: dict[str, type[HubEvent]] = {}


@dataclass_transform(kw_only_default=True, frozen_default=True)
def _event(cls: type[E]) -> type[E]:
    """Make ``cls`` a frozen, slotted, keyword-only dataclass and register its ``TYPE``."""
    made: type[E] = dataclass(frozen=True, slots=True, kw_only=True)(cls)
    if not made.TYPE or made.TYPE in EVENT_TYPES:
        raise TypeError(f"{cls.__name__}: missing or duplicate TYPE {made.TYPE!r}")
    made.PAYLOAD_FIELDS = tuple(f.name for f in dataclasses.fields(made) if f.name not in ENVELOPE)
    EVENT_TYPES[made.TYPE] = made
    return made


def parse(event: StreamEvent) -> HubEvent | None:
    """The typed form of a stored event; None for a type this code does not know.

    Unknown payload keys are ignored and an old row missing a required field gives None
    (logged), so consumers never crash on history.
    """
    cls = EVENT_TYPES.get(event.type)
    if cls is None:
        return None
    payload = event.payload or {}
    values = {name: payload[name] for name in cls.PAYLOAD_FIELDS if name in payload}
    try:
        return cls(
            conversation_id=event.conversation_id,
            customer_id=event.customer_id,
            agent_id=event.agent_id,
            queue=event.queue,
            channel=event.channel,
            **values,
        )
    except TypeError:
        logger.warning("event %s (%s) does not fit %s", event.seq, event.type, cls.__name__)
        return None


# ---------------------------------------------------------------- agents and queues
@_event
class QueueUpdated(HubEvent):
    """A queue's settings (dispositions, targets) changed."""

    TYPE = "queue.updated"


@_event
class AgentUpdated(HubEvent):
    """An agent's account, skills or capacity changed."""

    TYPE = "agent.updated"


@_event
class AgentCreated(HubEvent):
    """A user account was created."""

    TYPE = "agent.created"
    username: str
    role: str


@_event
class AgentSessionsEnded(HubEvent):
    """Sessions of an agent ended: the listed ones, or ``all`` of them."""

    TYPE = "agent.sessions_ended"
    OMIT_NONE = frozenset({"session_hashes", "all"})
    session_hashes: list[str] | None = None
    all: bool | None = None


@_event
class AgentStateChanged(HubEvent):
    """An agent became available, away, offline, ..."""

    TYPE = "agent.state_changed"
    state: str
    reason: str
    previous: str


# ---------------------------------------------------------------- customers
@_event
class CustomerCreated(HubEvent):
    """A first contact from an unknown endpoint made a customer."""

    TYPE = "customer.created"


@_event
class CustomerUpdated(HubEvent):
    """Profile fields changed (or were erased)."""

    TYPE = "customer.updated"
    actor: str
    changes: dict[str, Any]


@_event
class CustomerMerged(HubEvent):
    """``absorbed_id`` was merged into the envelope's customer."""

    TYPE = "customer.merged"
    absorbed_id: int
    actor: str
    audit_id: int


@_event
class CustomerUnmerged(HubEvent):
    """A merge was undone; ``restored_id`` exists again."""

    TYPE = "customer.unmerged"
    restored_id: int
    actor: str
    audit_id: int


@_event
class CustomerConflict(HubEvent):
    """Identifiers disagree; a person must decide (a refused merge, or an ingest flag)."""

    TYPE = "customer.conflict"
    OMIT_NONE = frozenset({"other_customer_id", "detail", "flag"})
    other_customer_id: int | None = None
    detail: Any = None
    flag: dict[str, Any] | None = None


@_event
class CustomerLinked(HubEvent):
    """A verified identifier tied a new endpoint to an existing customer."""

    TYPE = "customer.linked"
    endpoint: str
    reason: str


@_event
class CustomerEndpointAdded(HubEvent):
    """The customer gained an endpoint (``kind:address``)."""

    TYPE = "customer.endpoint_added"
    endpoint: str
    verified: bool


@_event
class CustomerConsent(HubEvent):
    """The customer opted out of (or back into) an endpoint."""

    TYPE = "customer.consent"
    endpoint: str
    opted_out: bool


@_event
class CustomerUndeliverable(HubEvent):
    """An endpoint bounced for good."""

    TYPE = "customer.undeliverable"
    endpoint: str
    reason: str


# ---------------------------------------------------------------- conversations
@_event
class ConversationCreated(HubEvent):
    """A contact opened a new conversation."""

    TYPE = "conversation.created"
    OMIT_NONE = frozenset({"held"})
    priority: int
    language: str
    segment: str
    # True: a bot answers first; the router waits for a conversation.queued (hand-off).
    held: bool | None = None


@_event
class ConversationReopened(HubEvent):
    """A closed conversation got new inbound within the reopen window."""

    TYPE = "conversation.reopened"
    OMIT_NONE = frozenset({"held"})
    priority: int
    held: bool | None = None


@_event
class ConversationQueued(HubEvent):
    """The conversation waits for an agent (again)."""

    TYPE = "conversation.queued"
    reason: str


@_event
class ConversationAssigned(HubEvent):
    """An agent owns the conversation: by accepting (``wait_s``) or by a transfer."""

    TYPE = "conversation.assigned"
    OMIT_NONE = frozenset({"wait_s", "transfer"})
    wait_s: float | None = None
    transfer: bool | None = None


@_event
class ConversationTransferred(HubEvent):
    """Handed to another agent or queue; the envelope's agent is who did it."""

    TYPE = "conversation.transferred"
    OMIT_NONE = frozenset({"to_agent", "to_queue"})
    from_agent: int | None
    to_agent: int | None = None
    to_queue: str | None = None
    note: str = ""


@_event
class ConversationWrapUp(HubEvent):
    """The agent finished talking and is wrapping up."""

    TYPE = "conversation.wrap_up"


@_event
class ConversationUpdated(HubEvent):
    """Plain fields changed: the changed ones are set."""

    TYPE = "conversation.updated"
    OMIT_NONE = frozenset({"priority", "labels"})
    priority: int | None = None
    labels: list[str] | None = None


@_event
class ConversationAbandoned(HubEvent):
    """The customer went away before an agent took the work."""

    TYPE = "conversation.abandoned"
    reason: str
    wait_s: float


@_event
class ConversationClosed(HubEvent):
    """Closed with a disposition."""

    TYPE = "conversation.closed"
    disposition: str | None


# ---------------------------------------------------------------- offers
@_event
class OfferCreated(HubEvent):
    """The router reserved the conversation for the envelope's agent until ``expires_at``."""

    TYPE = "offer.created"
    offer_id: int
    expires_at: str
    customer_name: str
    segment: str
    priority: int
    preview: str
    preferred: str | None


@_event
class OfferAccepted(HubEvent):
    """The agent took the offer."""

    TYPE = "offer.accepted"
    offer_id: int


@_event
class OfferRejected(HubEvent):
    """The agent declined the offer."""

    TYPE = "offer.rejected"
    offer_id: int
    reason: str = ""


@_event
class OfferExpired(HubEvent):
    """Nobody answered the offer in time."""

    TYPE = "offer.expired"
    offer_id: int
    reason: str = ""


@_event
class OfferRescinded(HubEvent):
    """The work went away while offered."""

    TYPE = "offer.rescinded"
    offer_id: int
    reason: str = ""


# How an offer ended -> its event.
OFFER_ENDED: dict[str, Callable[..., HubEvent]] = {
    "rejected": OfferRejected,
    "expired": OfferExpired,
    "rescinded": OfferRescinded,
}


# ---------------------------------------------------------------- messages
@_event
class MessageReceived(HubEvent):
    """A contact's message was stored (``hub.ingest.rows.received_event`` builds it)."""

    TYPE = "message.received"
    message_id: int | LazyId
    kind: str
    direction: str
    text: str
    endpoint: str
    attachments: int
    score: Any = None


@_event
class MessageEdited(HubEvent):
    """The customer edited a message (providers that allow it)."""

    TYPE = "message.edited"
    message_id: int
    text: str


@_event
class MessageSent(HubEvent):
    """An outbound message was stored: an agent's reply, or an automatic one (``kind``)."""

    TYPE = "message.sent"
    OMIT_NONE = frozenset({"kind", "mentions", "visibility", "team_id"})
    message_id: int
    text: str
    kind: str | None = None
    mentions: list[Any] | None = None
    visibility: str | None = None
    team_id: int | None = None


@_event
class NoteAdded(HubEvent):
    """An internal note: never sent to the customer."""

    TYPE = "note.added"
    OMIT_NONE = frozenset({"mentions", "visibility", "team_id"})
    message_id: int
    text: str
    mentions: list[Any] | None = None
    visibility: str | None = None
    team_id: int | None = None


@_event
class MessageStatus(HubEvent):
    """Delivery status of an outbound message moved forward."""

    TYPE = "message.status"
    OMIT_NONE = frozenset({"provider_id", "error_code", "error_message"})
    message_id: int
    status: str
    provider_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@_event
class MessageAttachmentUpdated(HubEvent):
    """An attachment of a message was fetched, failed or is pending again."""

    TYPE = "message.attachment_updated"
    message_id: int
    attachment_id: int
    state: str
    content_type: str
    filename: str
    size: int | None
    error: str | None
    url: str | None


# ---------------------------------------------------------------- calls
@_event
class CallConnected(HubEvent):
    """A caller (or a callback's customer) is talking to the envelope's agent."""

    TYPE = "call.connected"
    call_sid: str
    direction: str
    wait_s: int | None


@_event
class CallEnded(HubEvent):
    """A call's outcome is decided: answered, abandoned, voicemail, callback_requested, ..."""

    TYPE = "call.ended"
    call_sid: str
    direction: str
    outcome: str
    wait_s: int | None
    talk_s: int | None
    duration_s: int | None


@_event
class CallUpdated(HubEvent):
    """A later report completed an ended call's figures (talk time, duration)."""

    TYPE = "call.updated"
    call_sid: str
    outcome: str
    wait_s: int | None
    talk_s: int | None
    duration_s: int | None


# ---------------------------------------------------------------- workflow (hub.workflow)
@_event
class RuleFired(HubEvent):
    """An automation rule matched an event and ran its actions."""

    TYPE = "rule.fired"
    rule_id: int
    rule: str
    trigger: str
    trigger_seq: int
    actions: list[Any]


@_event
class RuleLoopStopped(HubEvent):
    """A rule did not fire again on an event its own firing caused (a loop stopped)."""

    TYPE = "rule.loop_stopped"
    rule_id: int
    rule: str
    trigger: str
    trigger_seq: int
    chain: list[Any]


@_event
class SupervisorAlert(HubEvent):
    """Something for the supervisors' attention (a rule's notice, an escalation, a low score)."""

    TYPE = "supervisor.alert"
    reason: str
    text: str


@_event
class SlaWarning(HubEvent):
    """An SLA target of the conversation is close to being missed."""

    TYPE = "sla.warning"
    OMIT_NONE = frozenset({"complaint_id"})
    timer_id: int
    metric: str
    policy: str
    due_at: str
    complaint_id: int | None = None


@_event
class SlaBreached(HubEvent):
    """An SLA target of the conversation was missed."""

    TYPE = "sla.breached"
    OMIT_NONE = frozenset({"complaint_id"})
    timer_id: int
    metric: str
    policy: str
    due_at: str
    complaint_id: int | None = None


@_event
class CsatRequested(HubEvent):
    """A satisfaction survey went to the customer on the conversation's channel."""

    TYPE = "csat.requested"
    survey_id: int
    how: str


@_event
class CsatReceived(HubEvent):
    """The customer answered the survey (1-5); the envelope's agent is who served them."""

    TYPE = "csat.received"
    survey_id: int
    score: int
    how: str


@_event
class ComplaintOpened(HubEvent):
    """The conversation was marked as a complaint."""

    TYPE = "complaint.opened"
    complaint_id: int
    category: str
    severity: str
    team_id: int | None


@_event
class ComplaintEscalated(HubEvent):
    """A complaint went one step up (its SLA missed, or by hand)."""

    TYPE = "complaint.escalated"
    complaint_id: int
    level: int
    reason: str


@_event
class ComplaintResolved(HubEvent):
    """A complaint was resolved; ``notified``: the customer was told on their channel."""

    TYPE = "complaint.resolved"
    complaint_id: int
    category: str
    severity: str
    notified: bool


@_event
class FollowUpCreated(HubEvent):
    """A follow-up task was created; the envelope's agent is its owner."""

    TYPE = "follow_up.created"
    follow_up_id: int
    title: str
    source: str
    due_at: str | None


@_event
class FollowUpDone(HubEvent):
    """A follow-up task was done."""

    TYPE = "follow_up.done"
    follow_up_id: int


@_event
class CustomerNoteAdded(HubEvent):
    """An internal note on the customer record (``team_id``: only that team reads it)."""

    TYPE = "customer.note_added"
    note_id: int
    text: str
    team_id: int | None


# ---------------------------------------------------------------- the protocol document
DOC_BEGIN = "<!-- event-types:begin (generated from hub/events.py by `hub events-doc`) -->"
DOC_END = "<!-- event-types:end -->"


def _field_doc(cls: type[HubEvent], name: str) -> str:
    return f"`{name}`?" if name in cls.OMIT_NONE else f"`{name}`"


def doc_table() -> str:
    """The event table of PROTOCOL.md: every type, its version and payload fields."""
    lines = [
        "| type | version | payload (`?`: only when set) | what |",
        "|---|---|---|---|",
    ]
    for type_, cls in sorted(EVENT_TYPES.items()):
        fields = ", ".join(_field_doc(cls, n) for n in cls.PAYLOAD_FIELDS) or "—"
        what = (cls.__doc__ or "").strip().splitlines()[0]
        lines.append(f"| `{type_}` | {cls.VERSION} | {fields} | {what} |")
    return "\n".join(lines)


def with_doc_table(text: str) -> str:
    """``text`` (PROTOCOL.md) with its marked event table replaced by ``doc_table()``."""
    start = text.index(DOC_BEGIN) + len(DOC_BEGIN)
    end = text.index(DOC_END)
    return f"{text[:start]}\n{doc_table()}\n{text[end:]}"
