"""Call outcomes from provider facts: every arrival order and every repeat gives the same
record, one ``call.ended``, one history entry (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from sqlalchemy import func, select

from config.settings import Settings
from contract.voice import CallFact, EnqueueRequest
from hub.services import Hub
from storage.db import create_engine
from storage.models import Call, Conversation, Event, Message
from tests.channels.twilio_voice.conftest import NUMBER, new_call_sid
from tests.conftest import make_settings


@pytest.fixture
async def hub(db_url: str) -> Any:
    settings: Settings = make_settings(db_url)
    hub = Hub(settings, create_engine(db_url))
    await hub.start()
    yield hub
    await hub.dispose()


async def queued_call(hub: Hub, caller: str = "+447700900123") -> str:
    sid = new_call_sid()
    await hub.call_started(channel="voice", call_sid=sid, from_number=caller, to_number=NUMBER)
    await hub.call_enqueued(
        EnqueueRequest(
            channel="voice",
            call_sid=sid,
            from_number=caller,
            to_number=NUMBER,
            queue="support",
            language="en",
            choices=("support",),
        )
    )
    return sid


def answered_facts(sid: str) -> list[CallFact]:
    """After the whisper (always first: Twilio fetches it before connecting), the three facts
    that end an answered call, in no guaranteed order."""
    return [
        CallFact(channel="voice", call_sid=sid, kind="queue_result", result="bridged", wait_s=12),
        CallFact(
            channel="voice",
            call_sid=sid,
            kind="dial_result",
            leg="agent",
            leg_sid="CA" + "a" * 32,
            result="completed",
            talk_s=64,
            bridged=True,
        ),
        CallFact(channel="voice", call_sid=sid, kind="status", status="completed", duration_s=80),
    ]


async def record(hub: Hub, sid: str) -> dict[str, Any]:
    async with hub.sessions() as s:
        call = await s.scalar(select(Call).where(Call.call_sid == sid))
        assert call is not None
        ended = await s.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.type == "call.ended", Event.payload["call_sid"].as_string() == sid)
        )
        summaries = (
            await s.scalars(
                select(Message.text).where(
                    Message.conversation_id == call.conversation_id, Message.kind == "call"
                )
            )
        ).all()
        conv = await s.get(Conversation, call.conversation_id)
        assert conv is not None
        return {
            "outcome": call.outcome,
            "state": call.state,
            "wait": call.wait_s,
            "talk": call.talk_s,
            "duration": call.duration_s,
            "ended_events": ended,
            "summaries": list(summaries),
            "conversation": conv.state,
        }


async def test_an_answered_call_folds_to_one_record_in_every_order(hub: Hub) -> None:
    results = []
    for order in itertools.permutations(range(3)):
        sid = await queued_call(hub)
        await hub.call_fact(CallFact(channel="voice", call_sid=sid, kind="connecting", wait_s=12))
        facts = answered_facts(sid)
        for i in order:
            await hub.call_fact(facts[i])
            await hub.call_fact(facts[i])  # Twilio retries: a repeat is a no-op
        results.append(await record(hub, sid))
    assert all(r == results[0] for r in results), results
    first = results[0]
    assert (first["outcome"], first["state"], first["wait"], first["talk"], first["duration"]) == (
        "answered",
        "ended",
        12,
        64,
        80,
    )
    assert first["ended_events"] == 1
    assert first["summaries"] == [
        "Call answered · waited 12 s · talked 1 min 04 s · 1 min 20 s in all · menu: support"
    ]


async def test_an_abandoned_call_is_the_same_whichever_report_comes_first(hub: Hub) -> None:
    outcomes = []
    for status_first in (True, False):
        sid = await queued_call(hub, caller=f"+4477009001{int(status_first)}0")
        facts = [
            CallFact(
                channel="voice", call_sid=sid, kind="status", status="completed", duration_s=50
            ),
            CallFact(
                channel="voice", call_sid=sid, kind="queue_result", result="hangup", wait_s=35
            ),
        ]
        for fact in facts if status_first else reversed(facts):
            await hub.call_fact(fact)
            await hub.call_fact(fact)
        got = await record(hub, sid)
        async with hub.sessions() as s:
            callbacks = (
                await s.scalars(
                    select(Message.text).where(Message.provider_id == f"{sid}:callback")
                )
            ).all()
        outcomes.append((got, list(callbacks)))
    assert outcomes[0] == outcomes[1]
    got, callbacks = outcomes[0]
    assert (got["outcome"], got["wait"], got["duration"], got["conversation"]) == (
        "abandoned",
        35,
        50,
        "abandoned",
    )
    # Waited 35 s (over the 10 s setting): a missed-call callback task, once.
    assert callbacks == ["Missed call: hung up after 35 s in the queue"]


async def test_a_short_abandon_gets_no_callback_and_ivr_hangups_open_nothing(hub: Hub) -> None:
    sid = await queued_call(hub)
    await hub.call_fact(
        CallFact(channel="voice", call_sid=sid, kind="queue_result", result="hangup", wait_s=4)
    )
    ivr = new_call_sid()
    await hub.call_started(
        channel="voice", call_sid=ivr, from_number="+447700900555", to_number=NUMBER
    )
    await hub.call_fact(
        CallFact(channel="voice", call_sid=ivr, kind="status", status="completed", duration_s=9)
    )
    async with hub.sessions() as s:
        rows = {c.call_sid: c for c in (await s.scalars(select(Call))).all()}
        assert rows[sid].outcome == "abandoned"
        assert rows[ivr].outcome == "ivr_hangup"
        assert rows[ivr].conversation_id is None
        assert await s.scalar(select(func.count()).select_from(Conversation)) == 1


async def test_a_status_for_a_call_never_seen_is_recorded_without_failing(hub: Hub) -> None:
    sid = new_call_sid()
    view = await hub.call_fact(
        CallFact(channel="voice", call_sid=sid, kind="status", status="completed", duration_s=1)
    )
    assert view.outcome == "ivr_hangup"
    # An agent leg's report for an unknown call is ignored.
    other = await hub.call_fact(
        CallFact(
            channel="voice", call_sid=new_call_sid(), kind="status", leg="agent", status="busy"
        )
    )
    assert other.state == "unknown"


async def test_facts_posted_at_the_same_moment_are_all_applied(hub: Hub) -> None:
    """Twilio sends the status callback, the Enqueue action and the Dial action in parallel:
    on PostgreSQL they run in concurrent transactions and none may overwrite another's."""
    sids = [await queued_call(hub, caller=f"+4477009002{i:02d}") for i in range(5)]
    for sid in sids:
        await hub.call_fact(CallFact(channel="voice", call_sid=sid, kind="connecting", wait_s=12))
    await asyncio.gather(*(hub.call_fact(f) for sid in sids for f in answered_facts(sid) * 2))
    for sid in sids:
        got = await record(hub, sid)
        assert (got["outcome"], got["wait"], got["talk"], got["duration"]) == (
            "answered",
            12,
            64,
            80,
        )
        assert got["ended_events"] == 1
        assert len(got["summaries"]) == 1
