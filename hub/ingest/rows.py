"""What an inbound contact writes, built in one place for every ingest path.

The general path (ORM objects, ``hub.ingest.orm``), the fast path's Core statements and its
plain sqlite3 calls (``hub.ingest.fast``) all store the same message row and append the
same ``message.received`` event; both are built here, so the paths cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contract.channel import InboundMessage
from hub.events import LazyId, MessageReceived
from storage.models import Message

# The message row's columns, in the order the plain sqlite3 insert binds them.
MESSAGE_COLUMNS = (
    "conversation_id",
    "customer_id",
    "channel",
    "direction",
    "kind",
    "author_id",
    "text",
    "provider_id",
    "status",
    "error_code",
    "error_message",
    "metadata",
    "raw",
    "created_at",
    "occurred_at",
    "edited_at",
)


def direction_of(msg: InboundMessage) -> str:
    """A satisfaction answer is the system's record; everything else came in."""
    return "system" if msg.kind == "csat" else "in"


def message_values(
    msg: InboundMessage, *, conversation_id: int, customer_id: int, now: datetime
) -> dict[str, Any]:
    """The stored message row of an inbound contact, keyed by column name."""
    meta = dict(msg.metadata)
    if msg.subject:
        meta.setdefault("subject", msg.subject)
    return {
        "conversation_id": conversation_id,
        "customer_id": customer_id,
        "channel": msg.channel,
        "direction": direction_of(msg),
        "kind": msg.kind,
        "author_id": None,
        "text": msg.text,
        "provider_id": msg.provider_id,
        "status": "received",
        "error_code": "",
        "error_message": "",
        "metadata": meta,
        "raw": msg.raw,
        "created_at": now,
        "occurred_at": msg.occurred_at,
        "edited_at": None,
    }


def message_object(values: dict[str, Any]) -> Message:
    """The same row as an ORM object (its ``metadata`` column is the ``meta`` attribute)."""
    return Message(**{("meta" if k == "metadata" else k): v for k, v in values.items()})


def received_event(
    msg: InboundMessage,
    *,
    conversation_id: int,
    customer_id: int,
    queue: str,
    endpoint: str,
    message_id: int | LazyId,
) -> MessageReceived:
    """The contact's ``message.received`` event, the one builder of every ingest path.

    ``message_id`` may be a ``LazyId`` while the row is not flushed yet.
    """
    return MessageReceived(
        conversation_id=conversation_id,
        customer_id=customer_id,
        queue=queue,
        channel=msg.channel,
        message_id=message_id,
        kind=msg.kind,
        direction=direction_of(msg),
        text=msg.text[:500],
        endpoint=endpoint,
        attachments=len(msg.attachments),
        score=msg.metadata.get("score") if msg.kind == "csat" else None,
    )
