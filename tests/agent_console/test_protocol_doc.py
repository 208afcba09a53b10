"""PROTOCOL.md promises only what the server sends: every frame and event type it lists as
server -> client is built somewhere in the code (a documented-but-never-sent type fails)."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from agent_console.protocol import FrameType

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "agent_console" / "PROTOCOL.md").read_text(encoding="utf-8")
# Frames the client sends; the console reads them (checked below), the server never sends them.
CLIENT_FRAMES = {"hello", "ping", "cmd"}


def sources(*packages: str) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8")
        for pkg in packages
        for p in sorted((ROOT / pkg).rglob("*.py"))
    )


def documented_frame_types() -> set[str]:
    """Every frame type the document names: in a JSON sample or as "answers `x`", "a `x` frame"."""
    types = set(re.findall(r'"type"\s*:\s*"(\w+)"', DOC))
    types |= set(re.findall(r"answers `(\w+)`", DOC))
    types |= set(re.findall(r"an? `(\w+)` frame", DOC))
    return types


def sent_frame_types() -> set[str]:
    """Frame types the server builds with ``agent_console.protocol.frame(type, ...)``."""
    return set(re.findall(r'\bframe\(\s*"(\w+)"', sources("agent_console", "hub")))


def documented_event_types() -> set[str]:
    section = DOC[DOC.index("## Events (server") : DOC.index("## Ephemeral frames")]
    return set(re.findall(r"`([a-z_]+\.[a-z_]+)`", section))


def emitted_event_patterns() -> list[re.Pattern[str]]:
    """Event types appended to the stream (``uow.emit("type", ...)``); an f-string's
    placeholder stands for any word (``offer.{outcome}``)."""
    code = sources("hub", "agent_console", "channels")
    names = re.findall(r'\bemit\(\s*f?"([a-z_.{}]+)"', code)
    # ... or through a module constant: ``EVENT = "message.attachment_updated"``.
    names += re.findall(r'^[A-Z_]*EVENT[A-Z_]* = "([a-z_]+\.[a-z_]+)"', code, flags=re.MULTILINE)
    # ... or as the type of an event row built for a bulk insert (``hub.ingest.rows``).
    names += re.findall(r'"type": "([a-z_]+\.[a-z_]+)"', code)
    return [re.compile(re.sub(r"\\\{\w+\\\}", "[a-z_]+", re.escape(n)) + "$") for n in names]


def test_every_server_frame_in_the_protocol_is_one_the_server_sends() -> None:
    documented = documented_frame_types() - CLIENT_FRAMES
    assert {"welcome", "snapshot", "event", "resync_required", "ack", "error"} <= documented
    never_sent = documented - sent_frame_types()
    assert not never_sent, f"PROTOCOL.md lists frames the server never sends: {never_sent}"


def test_the_frame_type_literal_is_exactly_what_the_server_sends() -> None:
    assert set(typing.get_args(FrameType)) == sent_frame_types()


def test_the_client_frames_are_the_ones_the_gateway_reads() -> None:
    console = sources("agent_console")
    read = set(re.findall(r'get\("type"\)\s*[!=]=\s*"(\w+)"', console))
    assert read == CLIENT_FRAMES
    assert documented_frame_types() >= CLIENT_FRAMES


def test_every_event_type_in_the_protocol_is_one_the_hub_emits() -> None:
    documented = documented_event_types()
    assert {"offer.created", "message.received", "conversation.closed"} <= documented
    patterns = emitted_event_patterns()
    never_emitted = {t for t in documented if not any(p.match(t) for p in patterns)}
    assert not never_emitted, f"PROTOCOL.md lists events nothing emits: {never_emitted}"


def test_the_customer_typing_frame_is_not_promised_until_a_channel_reports_typing() -> None:
    assert "typing" not in documented_frame_types()
    assert "typing" not in typing.get_args(FrameType)
