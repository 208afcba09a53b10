"""Typed stream events: every type survives emit -> stored row -> parse unchanged, payloads
keep their stored shape, and history the code does not know never crashes a reader."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime
from typing import Any

import pytest

from contract.channel import InboundMessage
from hub import events
from hub.ingest.rows import received_event
from hub.stream import StreamEvent
from hub.uow import LazyId, UnitOfWork, events_between, head_seq
from hub.web import keys
from tests.conftest import ClientFactory

SAMPLE_BY_TYPE: dict[Any, Any] = {
    int: 7,
    str: "some text",
    bool: True,
    float: 1.5,
    list[str]: ["a", "b"],
    list[Any]: ["ann"],
    dict[str, Any]: {"display_name": "Ann", "tags": ["vip"]},
    Any: {"reason": "same phone"},
}


def sample_value(annotation: Any) -> Any:
    """A non-None value of a field's type (an optional field gets its other arm's value)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        arms = [a for a in typing.get_args(annotation) if a is not type(None) and a is not LazyId]
        return sample_value(arms[0])
    return SAMPLE_BY_TYPE[annotation]


def full_event(cls: type[events.HubEvent]) -> events.HubEvent:
    """An event of ``cls`` with its envelope and every payload field set."""
    hints = typing.get_type_hints(cls, vars(events))
    values = {name: sample_value(hints[name]) for name in cls.PAYLOAD_FIELDS}
    return cls(
        conversation_id=11, customer_id=12, agent_id=13, queue="billing", channel="sms", **values
    )


def sparse_event(cls: type[events.HubEvent]) -> events.HubEvent:
    """An event of ``cls`` with its optional payload fields left out."""
    full = full_event(cls)
    unset: dict[str, Any] = dict.fromkeys(cls.OMIT_NONE)
    return dataclasses.replace(full, **unset)


ALL = sorted(events.EVENT_TYPES.values(), key=lambda c: c.TYPE)


async def test_every_event_type_round_trips_through_the_store(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    tx = client.app[keys.HUB].tx
    sent = [full_event(cls) for cls in ALL] + [sparse_event(cls) for cls in ALL if cls.OMIT_NONE]
    first = await tx.read(head_seq) + 1

    async def work(uow: UnitOfWork) -> None:
        for event in sent:
            uow.emit(event)

    await tx.run(work)
    last = await tx.read(head_seq)
    stored = await tx.read(lambda s: events_between(s, first, last))
    ours = [e for e in stored if e.queue == "billing" and e.customer_id == 12]
    assert [events.parse(e) for e in ours] == sent
    for event, row in zip(sent, ours, strict=True):
        assert row.type == event.TYPE
        assert row.payload == event.payload()


def test_optional_fields_are_left_out_of_the_payload_only_when_unset() -> None:
    for cls in ALL:
        full = full_event(cls).payload()
        assert set(full) == set(cls.PAYLOAD_FIELDS)
        assert set(sparse_event(cls).payload()) == set(cls.PAYLOAD_FIELDS) - cls.OMIT_NONE
    delivered = events.MessageStatus(message_id=1, status="sent", provider_id="SM1")
    assert delivered.payload() == {"message_id": 1, "status": "sent", "provider_id": "SM1"}


def test_the_received_event_keeps_the_stored_payload_shape_and_takes_a_lazy_id() -> None:
    msg = InboundMessage(
        channel="sms",
        sender_kind="phone",
        sender="+15550001111",
        provider_id="SM9",
        text="hello " * 200,
        kind="csat",
        metadata={"score": 4},
    )
    row = types.SimpleNamespace(id=None)
    event = received_event(
        msg,
        conversation_id=3,
        customer_id=4,
        queue="q",
        endpoint="+15550001111",
        message_id=LazyId(row),
    )
    draft = event.to_draft()
    assert draft["type"] == "message.received"
    assert draft["channel"] == "sms"
    assert set(draft["payload"]) == {
        "message_id",
        "kind",
        "direction",
        "text",
        "endpoint",
        "attachments",
        "score",
    }
    assert len(draft["payload"]["text"]) == 500
    assert draft["payload"]["score"] == 4
    assert isinstance(draft["payload"]["message_id"], LazyId)


def stored(type_: str, payload: dict[str, Any]) -> StreamEvent:
    return StreamEvent(seq=1, type=type_, created_at=datetime.now(UTC), payload=payload)


def test_history_the_code_does_not_know_parses_to_none() -> None:
    assert events.parse(stored("conversation.teleported", {"to": "mars"})) is None
    # An old row without a field the type now requires.
    assert events.parse(stored("offer.accepted", {})) is None
    # Keys the type does not know are ignored.
    parsed = events.parse(stored("offer.accepted", {"offer_id": 5, "legacy": True}))
    assert parsed == events.OfferAccepted(offer_id=5)


def test_every_type_has_a_unique_wire_name_and_a_version() -> None:
    assert len(events.EVENT_TYPES) == len(ALL) >= 30
    for type_, cls in events.EVENT_TYPES.items():
        assert type_ == cls.TYPE
        assert cls.VERSION >= 1
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert "__slots__" in vars(cls)


def test_a_second_class_with_a_known_wire_name_is_refused() -> None:
    with pytest.raises(TypeError, match="duplicate"):

        @events._event
        class Again(events.HubEvent):
            TYPE = "offer.accepted"
