"""The contract between channel adapters and the hub.

Adapters turn provider traffic into :class:`InboundMessage` / :class:`StatusUpdate` values and
hand them to a :class:`HubPort`; they deliver :class:`OutboundMessage` values through
``send``. Adapters never touch the database or the router.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from aiohttp import ClientSession, web

from contract.errors import ChannelError

__all__ = [
    "STATUS_RANK",
    "AdapterFactory",
    "Attachment",
    "AttachmentSource",
    "AttachmentState",
    "ChannelAdapter",
    "ChannelContext",
    "ChannelError",
    "DeliveryStatus",
    "EndpointKind",
    "HubPort",
    "Identifier",
    "InboundKind",
    "InboundMessage",
    "IngestResult",
    "OutboundMessage",
    "SendReceipt",
    "StatusUpdate",
]

# The identity an address belongs to: each channel declares its own (``ChannelInfo``), so the
# set is open. SMS, WhatsApp and voice share "phone": one person, one E.164 number, whatever
# channel they used; the hub normalizes "phone" and "email" addresses and keeps others as sent.
EndpointKind = str

# What an inbound item is. Only "message" (and "command") opens or re-opens routed work;
# "auto_reply" attaches to its conversation flagged; "bounce" only updates delivery status.
# "edit": ``provider_id`` names an earlier inbound message whose text becomes ``text``.
# "csat": a satisfaction answer, score 1-5 in ``metadata["score"]``, for the customer's latest
# conversation on that channel (or ``thread_key``'s).
InboundKind = Literal["message", "command", "auto_reply", "bulk", "edit", "csat", "event"]

# Delivery states in their only allowed order; ``STATUS_RANK`` below is the precedence rule.
DeliveryStatus = Literal[
    "pending", "queued", "sending", "sent", "delivered", "undelivered", "failed", "read"
]

# Each status's rank: a report never moves a message backwards (reports race each other and
# the send's own receipt). Providers' extra states ("accepted", "scheduled") rank as queued.
STATUS_RANK: Mapping[str, int] = {
    "pending": 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Identifier:
    """A verifiable identifier carried by a contact (e.g. a Telegram user's own phone)."""

    kind: EndpointKind
    address: str
    verified: bool = True


# "pending": announced by the provider, bytes not here yet (the hub fetches them in the
# background through ``AttachmentSource``); "fetched": bytes here; "failed": given up, ``error``
# says why.
AttachmentState = Literal["pending", "fetched", "failed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    """One attachment: bytes fetched server-side, or a provider reference still to fetch.

    Browsers never see provider URLs or ids: ``source`` stays on the server.
    """

    filename: str | None
    content_type: str
    data: bytes = b""
    state: AttachmentState = "fetched"
    # The provider's reference to fetch it (again): Twilio's media URL, Telegram's file_id.
    # None when a fetch must never be tried (a URL we refuse) or cannot help (too large).
    source: str | None = None
    # Why there are no bytes (yet): the last fetch's error, short and free of provider URLs.
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """A channel-neutral inbound contact.

    ``channel`` is the channel the customer used ("sms", "whatsapp", "email", "telegram",
    "webchat", "voice", "wechat", "app", "api"); ``sender_kind``/``sender`` the customer's
    endpoint (normalized by the hub, so adapters pass what the provider sent);
    ``provider_id`` the provider's message id, unique per channel (the dedupe key).
    """

    channel: str
    sender_kind: EndpointKind
    sender: str
    provider_id: str
    text: str
    kind: InboundKind = "message"
    display_name: str | None = None
    # Our own address the customer wrote to (Twilio number, WhatsApp sender, mailbox);
    # replies go out from it.
    recipient: str | None = None
    # A channel-specific conversation key (Telegram chat id; email thread root); when set, an
    # open conversation with the same key on the same channel is continued.
    thread_key: str | None = None
    # Provider ids of earlier messages this one answers (email In-Reply-To + References,
    # Twilio OriginalRepliedMessageSid); any stored message with one of them gives the thread.
    thread_refs: tuple[str, ...] = ()
    # "session": with no reference, the endpoint's open (or recently closed) conversation on
    # this channel continues (SMS, chat). "explicit": only thread_refs, reply_token or
    # thread_key continue a conversation; anything else opens a new one (email).
    threading: Literal["session", "explicit"] = "session"
    # The token of a ``reply+<token>@domain`` address the customer wrote to (email).
    reply_token: str | None = None
    subject: str | None = None
    # Other people on the thread (email Cc), recorded on the conversation.
    participants: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    # Routing hints: queue name (mailbox -> queue, IVR choice), priority bump, language.
    queue: str | None = None
    priority: int | None = None
    language: str | None = None
    # A bot answers first: a conversation this contact opens (or reopens) waits in state
    # "bot", unrouted, until the adapter hands it off (``HubPort``-side: ``hand_off``).
    hold: bool = False
    occurred_at: datetime | None = None
    # Everything else the provider sent that we keep (JSON-serializable).
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # Raw bytes of the original (email source); stored for audit and re-parsing.
    raw: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusUpdate:
    """A provider's delivery report for one of our outbound messages."""

    channel: str
    provider_id: str
    status: DeliveryStatus
    error_code: str | None = None
    error_message: str | None = None
    occurred_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    """What the hub did with an inbound item."""

    customer_id: int | None
    conversation_id: int | None
    message_id: int | None
    duplicate: bool
    # True when this contact opened or re-opened a conversation (adapters use it to decide on a
    # configured acknowledgement auto-reply, which must never go out twice).
    opened: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundMessage:
    """An outbound message the outbox asks an adapter to deliver."""

    message_id: int
    conversation_id: int
    channel: str
    to: str  # provider address: "+447700900123", "whatsapp:+44…", "a@b.org", chat id
    sender: str | None  # our address the customer wrote to, if any
    text: str
    attachments: tuple[Attachment, ...] = ()
    subject: str | None = None
    # Provider ids of earlier messages of the thread, oldest first (email References).
    thread_refs: tuple[str, ...] = ()
    # Channel-specific extras: {"template_sid": ..., "reply_markup": ..., "reply_token": ...}.
    options: Mapping[str, Any] = field(default_factory=dict)
    # The same for every attempt at this message: a provider that dedupes on a key the
    # caller chooses (an Idempotency-Key header, an email's Message-ID) gets this one.
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SendReceipt:
    """The provider's answer to a send: its id for the message and the status it reported."""

    provider_id: str
    status: DeliveryStatus = "sent"
    metadata: Mapping[str, Any] = field(default_factory=dict)


class HubPort(Protocol):
    """What an adapter may ask of the hub. Every call persists before it returns."""

    async def ingest(self, message: InboundMessage) -> IngestResult: ...

    async def update_status(self, update: StatusUpdate) -> bool: ...

    async def set_opt_out(
        self, *, kind: EndpointKind, address: str, channel: str, opted_out: bool
    ) -> None: ...

    async def mark_undeliverable(self, *, kind: EndpointKind, address: str, reason: str) -> None:
        """An address bounced permanently (DSN); outbound to it is refused from now on."""
        ...

    async def sent_message_exists(self, *, channel: str, provider_id: str) -> bool:
        """Whether we sent a message with this provider id (a bounce may only concern ours)."""
        ...

    async def record_auto_reply(self, *, conversation_id: int, text: str, send: bool) -> bool:
        """Store the conversation's one acknowledgement; False if it already has one.

        With ``send`` the hub also queues it in the outbox; without, the adapter delivers it
        inline (TwiML) and the hub only records it.
        """
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelContext:
    """Handed to an adapter factory: settings, the hub port and a shared HTTP client."""

    settings: Any  # config.settings.Settings (typed as Any to keep channels free of config)
    hub: HubPort
    http: Callable[[], ClientSession]


class ChannelAdapter(Protocol):
    """One provider integration."""

    # The channel names this adapter sends on ("sms", "whatsapp").
    channels: frozenset[str]
    # Per channel, the ``OutboundMessage.options`` an agent or integration may set on a reply
    # (an approved template, buttons); everything else (threading, reply address, session
    # window) the hub derives from the conversation and a client cannot override.
    reply_options: Mapping[str, frozenset[str]]

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        """Webhook routes to mount on the hub's app (empty for SMTP/websocket channels)."""
        ...

    async def start(self) -> None:
        """Open long-lived resources (SMTP listener, bot session)."""
        ...

    async def stop(self) -> None:
        """Close what ``start`` opened."""
        ...

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Deliver one message; raise ChannelError(retryable=...) on failure."""
        ...

    async def typing(self, *, channel: str, to: str) -> None:
        """Show a typing indicator to the customer where the channel has one (else no-op)."""
        ...


@runtime_checkable
class AttachmentSource(Protocol):
    """An adapter that can fetch announced media again (the hub's media worker calls it)."""

    async def fetch_attachment(
        self, *, channel: str, source: str, content_type: str, filename: str | None
    ) -> Attachment:
        """The fetched attachment; raise ChannelError(retryable=...) on failure."""
        ...


@runtime_checkable
class SendReconciler(Protocol):
    """An adapter that can look up, at the provider, whether an earlier attempt got through.

    The outbox asks it before sending again a message whose last attempt has no known
    outcome (the process died between the provider's answer and recording it): a receipt
    means the provider has the message and it is not sent twice; None means it does not.
    """

    async def find_sent(self, message: OutboundMessage, *, since: datetime) -> SendReceipt | None:
        """The provider's receipt of ``message`` sent at or after ``since``, if it has one;
        raise ChannelError(retryable=True) when the provider cannot be asked now."""
        ...


# ``create(ctx)`` in each channel's adapter.py; returns None when the channel is not configured.
AdapterFactory = Callable[[ChannelContext], "ChannelAdapter | None"]
