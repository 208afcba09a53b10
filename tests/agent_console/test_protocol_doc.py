"""PROTOCOL.md promises only what the server sends: every frame type it lists as server ->
client is built somewhere in the code, and its events are exactly ``hub.events``' (the table
is generated from the module; a type or payload field the module lacks fails)."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from agent_console.protocol import FrameType
from hub import events
from server import cli

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


def emitted_event_classes() -> set[type[events.HubEvent]]:
    """Event classes the hub builds: named outside ``hub/events.py`` (or an offer's ending)."""
    code = "\n".join(
        p.read_text(encoding="utf-8")
        for pkg in ("hub", "agent_console")
        for p in sorted((ROOT / pkg).rglob("*.py"))
        if p != ROOT / "hub" / "events.py"
    )
    named = {cls for cls in events.EVENT_TYPES.values() if re.search(rf"\b{cls.__name__}\b", code)}
    if "OFFER_ENDED[" in code:
        named |= {cls for cls in events.EVENT_TYPES.values() if cls in events.OFFER_ENDED.values()}
    return named


def documented_payload_fields() -> dict[str, set[str]]:
    """Fields the prose names as an event's payload: a type, then "(payload" and names."""
    section = DOC[DOC.index("## Events (server") : DOC.index(events.DOC_BEGIN)]
    found: dict[str, set[str]] = {}
    for type_, names in re.findall(r"`([a-z_]+\.[a-z_]+)`\s*\(payload:?([^)]*)\)", section):
        found.setdefault(type_, set()).update(re.findall(r"`([a-z_]+)`", names))
    return found


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


def test_the_event_table_is_the_one_generated_from_hub_events() -> None:
    assert events.with_doc_table(DOC) == DOC, "run `hub events-doc` after changing hub/events.py"
    table = DOC[DOC.index(events.DOC_BEGIN) : DOC.index(events.DOC_END)]
    assert set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)`", table, flags=re.MULTILINE)) == set(
        events.EVENT_TYPES
    )


def test_the_events_doc_command_finds_the_table_up_to_date(tmp_path: Path) -> None:
    assert cli.main(["events-doc", "--check"]) == 0
    stale = tmp_path / "PROTOCOL.md"
    stale.write_text(DOC.replace("| `queue.updated` |", "| `queue.renamed` |"), encoding="utf-8")
    assert cli.main(["events-doc", "--check", str(stale)]) == 1
    assert cli.main(["events-doc", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == DOC


def test_every_event_type_and_payload_field_the_protocol_names_exists() -> None:
    documented = documented_event_types()
    assert {"offer.created", "message.received", "conversation.closed"} <= documented
    unknown = documented - set(events.EVENT_TYPES)
    assert not unknown, f"PROTOCOL.md names event types hub.events lacks: {unknown}"
    fields = documented_payload_fields()
    assert {"offer.created", "message.status", "message.attachment_updated"} <= set(fields)
    for type_, names in fields.items():
        known = set(events.EVENT_TYPES[type_].PAYLOAD_FIELDS) | set(events.ENVELOPE)
        assert names <= known, f"PROTOCOL.md: {type_} has no field {names - known}"


def test_every_event_type_is_one_the_hub_emits() -> None:
    never_emitted = set(events.EVENT_TYPES.values()) - emitted_event_classes()
    assert not never_emitted, f"event types nothing emits: {never_emitted}"


def test_the_customer_typing_frame_is_documented_now_that_the_web_chat_sends_it() -> None:
    assert "typing" in documented_frame_types()
    assert "typing" in typing.get_args(FrameType)
