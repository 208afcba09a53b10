"""Frame shapes of the console websocket protocol (see PROTOCOL.md)."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

PROTOCOL_VERSION = 1
RESUME_LIMIT = 5000
HEARTBEAT_S = 15.0
# The close code of a console whose login ended (logged out, deactivated, idle, expired).
SESSION_ENDED_CODE = 4401

FrameType = Literal[
    "welcome",
    "snapshot",
    "event",
    "resync_required",
    "ack",
    "error",
    "pong",
    "viewing",
    "mention",
    "typing",
]


class Frame(TypedDict):
    v: int
    type: FrameType
    seq: int | None
    data: dict[str, Any]


def frame(type_: FrameType, data: dict[str, Any], seq: int | None = None) -> Frame:
    """A server frame."""
    return {"v": PROTOCOL_VERSION, "type": type_, "seq": seq, "data": data}


# Commands that change stored state; their results are kept for idempotent repeats.
MUTATING = frozenset(
    {
        "set_state",
        "accept",
        "reject",
        "transfer",
        "wrap_up",
        "close",
        "set_labels",
        "set_priority",
        "update_customer",
        "merge_customer",
        "unmerge_customer",
        "link_customer",
        "retry_attachment",
        "reassign",
        "force_state",
    }
)
# Commands that deduplicate on client_msg_id inside their own transaction.
SELF_IDEMPOTENT = frozenset({"reply", "note"})
