"""The visitor protocol's frames, shared by the live-chat channels (the web chat widget and
the in-app channel speak the same ``message``/``status``/``ack``/``error`` frames; see
``channels/webchat/PROTOCOL.md``), and the per-minute window both rate-limit with."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

from contract.chat import ChatMessage, ChatStatus

CLIENT_MSG_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def message_frame(m: ChatMessage, file_url: Callable[[int], str]) -> dict[str, Any]:
    """A stored message as the customer's client sees it (fetched files only, by link)."""
    frame: dict[str, Any] = {
        "type": "message",
        "id": m.id,
        "direction": m.direction,
        "author": m.author,
        "bot": m.bot,
        "text": m.text,
        "at": m.at.isoformat(),
        "attachments": [
            {"name": f.name, "type": f.content_type, "url": file_url(f.id), "size": f.size}
            for f in m.files
            if f.state == "fetched"
        ],
    }
    if m.survey:
        frame["survey"] = True  # the client shows 1-5 and answers with a "rate" frame
    return frame


def status_frame(status: ChatStatus) -> dict[str, Any]:
    """The conversation's state: where it waits, or who serves it."""
    out: dict[str, Any] = {"type": "status", "state": status.state}
    if status.state == "queued":
        out.update(position=status.position, expected_wait_s=status.expected_wait_s)
    if status.state == "assigned":
        out["agent"] = status.agent
    return out


def error_frame(
    code: str, detail: str, answering: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An error frame; ``ref`` says which frame it answers (its client_msg_id, else its
    type), when that frame could be read."""
    out: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    if answering:
        cid = answering.get("client_msg_id")
        if isinstance(cid, str) and CLIENT_MSG_ID.match(cid):
            out["ref"] = cid
        elif isinstance(answering.get("type"), str):
            out["ref"] = str(answering["type"])[:30]
    return out


class Window:
    """Events in the last minute (a sliding-window rate limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        while self.times and now - self.times[0] > 60.0:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return False
        self.times.append(now)
        return True
