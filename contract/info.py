"""What a channel declares about itself, once, in its own folder (``channels/<name>/info.py``).

The hub, the router's capacity defaults, the demo, the CLI and the console read these facts
from the registry instead of naming channels anywhere else; the console receives them in
its welcome frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# How a channel's work occupies an agent: "voice" one call at a time, interrupting
# anything; "message" threads share one pool and interleave; "email" waits for both.
Media = Literal["voice", "message", "email"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelInfo:
    """One channel name's facts (a folder may declare several: SMS and WhatsApp)."""

    name: str  # the channel as stored on conversations and messages ("sms")
    endpoint_kind: str  # the identity its addresses belong to ("phone")
    label: str  # English name ("SMS")
    badge: str  # a few letters for the console's badge ("SMS")
    colour: str  # the badge's background, a CSS colour
    media: Media = "message"
    capacity: int = 3  # an agent's default number of simultaneous conversations
    # Free text only within this long after the customer's last message (WhatsApp: 24 h);
    # outside it only an approved template (``template_sid``) may go out.
    session_window_s: int | None = None
    typing: bool = False  # the customer sees a typing indicator
    replies: bool = True  # an agent can answer in text on it (a phone call cannot)
    first_response_s: int = 120  # the console's default first-response target
    # Work the agent starts towards the customer (a callback to place), not a customer
    # waiting on the line: dashboards count it apart from callers waiting.
    outbound: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)  # language -> name

    def as_json(self) -> dict[str, Any]:
        """The facts the console needs, JSON-ready."""
        return {
            "name": self.name,
            "endpoint_kind": self.endpoint_kind,
            "label": self.label,
            "labels": dict(self.labels),
            "badge": self.badge,
            "colour": self.colour,
            "media": self.media,
            "session_window_s": self.session_window_s,
            "typing": self.typing,
            "replies": self.replies,
            "first_response_s": self.first_response_s,
            "outbound": self.outbound,
        }


class Channels:
    """The registered channels by name, handed to the hub by the composition root."""

    def __init__(self, infos: Iterable[ChannelInfo] = ()) -> None:
        self._by_name: dict[str, ChannelInfo] = {}
        for info in infos:
            if info.name in self._by_name:
                raise ValueError(f"channel {info.name!r} is declared twice")
            self._by_name[info.name] = info

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[ChannelInfo]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> ChannelInfo | None:
        return self._by_name.get(name)

    def endpoint_kind(self, name: str) -> str | None:
        info = self._by_name.get(name)
        return info.endpoint_kind if info else None

    def default_capacity(self) -> dict[str, int]:
        """An agent's capacity per channel when none is given."""
        return {info.name: info.capacity for info in self}

    def as_json(self) -> list[dict[str, Any]]:
        return [info.as_json() for info in self]
