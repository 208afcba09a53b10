"""Whole calls through the local Twilio (``testing/fake_api.py``): it walks the TwiML the hub
answers exactly as Twilio would, posting signed requests, while agents work in the console.

The fake's clock is manual: queue times, talk times and abandons happen when a test moves
it, so the figures the hub records (and the KPIs) are exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from channels.twilio_voice.testing.engine import Callee, Caller, Leg, ManualClock, Script
from channels.twilio_voice.testing.fake_api import FakeTwilioVoice
from contract.errors import Conflict
from contract.testing import free_port
from hub.services import Hub
from hub.web import keys
from server.app import create_app
from storage.models import Agent, Call, Conversation, Message, MessageAttachment
from tests import factories
from tests.agent_console.test_gateway import Console
from tests.channels.twilio_voice.conftest import ACCOUNT_SID, AUTH_TOKEN, NUMBER, voice_section
from tests.conftest import API_TOKEN, make_settings

ANN_PHONE, BOB_PHONE = "+15550001001", "+15550001002"


@dataclass
class Floor:
    client: TestClient[Any, Any]
    hub: Hub
    fake: FakeTwilioVoice
    clock: ManualClock

    async def agent(self, username: str, phone: str) -> Console:
        """An available agent with a phone, logged in to the console."""
        agent_id = await factories.agent(self.hub, username, capacity={"voice": 1, "callback": 1})
        async with self.hub.sessions() as s, s.begin():
            await s.execute(update(Agent).where(Agent.id == agent_id).values(phone=phone))
        jar = await factories.login(self.client, username)
        console, _, _ = await Console.connect(self.client, jar)
        assert (await console.cmd("set_state", state="available"))["type"] == "ack"
        return console

    async def call(self, number: str, script: Script) -> Leg:
        """A caller through the menus (English, then the script's inputs) into a queue."""
        leg = await self.fake.place_call(Caller(number=number, script=script))
        await self.fake.wait_until(lambda: self.waiting(leg), timeout=10)
        return leg

    async def bridged(self, leg: Leg) -> None:
        """Wait until the fake connected this caller (its talk timer starts then)."""
        await self.fake.wait_until(
            lambda: any(leg.sid in (b.a_sid, b.b_sid) for b in self.fake.bridges), timeout=10
        )

    def waiting(self, leg: Leg) -> bool:
        return any(leg.sid in {m.sid for m in q.legs} for q in self.fake.queues.values())

    async def row(self, sid: str) -> Call:
        async with self.hub.sessions() as s:
            call = await s.scalar(select(Call).where(Call.call_sid == sid))
            assert call is not None
            return call

    async def until(self, sid: str, check: Callable[[Call], bool], within: float = 10) -> Call:
        """The call's record once ``check`` holds (bounded)."""
        latest: list[Call] = []

        async def holds() -> bool:
            latest[:] = [await self.row(sid)]
            return check(latest[0])

        for _ in range(int(within / 0.02)):
            if await holds():
                return latest[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"call {sid} never got there: {vars(latest[0]) if latest else None}")


FloorFactory = Callable[..., Awaitable[Floor]]


@pytest.fixture
async def floor(aiohttp_client: Any, sqlite_url: str) -> AsyncIterator[FloorFactory]:
    fakes: list[FakeTwilioVoice] = []

    async def factory(**section: Any) -> Floor:
        port = free_port()
        public = f"http://127.0.0.1:{port}"
        clock = ManualClock()
        fake = FakeTwilioVoice(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            voice_url=f"{public}/webhooks/twilio/voice/incoming",
            status_url=f"{public}/webhooks/twilio/voice/status",
            number=NUMBER,
            clock=clock,
        )
        await fake.start()
        fakes.append(fake)
        settings = make_settings(
            sqlite_url,
            public_url=public,
            wrap_up_s=0,
            channels={"twilio_voice": voice_section(fake.base_url, languages=["en"], **section)},
        )
        client: TestClient[Any, Any] = await aiohttp_client(
            create_app(settings), server_kwargs={"port": port}
        )
        return Floor(client=client, hub=client.app[keys.HUB], fake=fake, clock=clock)

    yield factory
    for fake in fakes:
        await fake.stop()


async def accept_next(console: Console, channel: str = "voice") -> dict[str, Any]:
    offer = await console.until_event("offer.created")
    assert offer["channel"] == channel
    answer = await console.cmd("accept", offer_id=offer["payload"]["offer_id"])
    assert answer["type"] == "ack", answer
    return offer


def clean(fake: FakeTwilioVoice) -> None:
    """Twilio saw only valid TwiML, verbs allowed where they ran, and no failed request."""
    assert fake.violations == []
    assert fake.errors == []
    failed = [(e.url, e.status) for e in fake.exchanges if e.status not in (200, 204)]
    assert failed == []


async def test_ivr_queue_agent_accepts_bridged_completed(floor: FloorFactory) -> None:
    f = await floor()
    ann = await f.agent("ann", ANN_PHONE)
    leg = await f.call("+447700900123", Script(inputs=["2"], talk_s=64))
    offer = await ann.until_event("offer.created")
    assert offer["payload"]["preview"] == "Incoming call · billing"
    # The caller hears their place first (the wait loop's first answer; on a loaded machine
    # Ann's accept could otherwise overtake it).
    await f.fake.wait_until(
        lambda: any("in the queue" in text for verb, text in leg.log if verb == "Say"), timeout=10
    )
    f.clock.advance(12)  # twelve seconds of hold music, then Ann accepts
    await ann.cmd("accept", offer_id=offer["payload"]["offer_id"])
    await f.bridged(leg)
    created = f.fake.created[0]
    assert created["To"] == ANN_PHONE
    assert created["From"] == NUMBER
    await f.until(leg.sid, lambda c: c.state == "talking" and c.wait_s == 12)
    connected = await ann.until_event("call.connected")
    assert connected["payload"]["wait_s"] == 12
    f.clock.advance(64)  # the caller hangs up after 64 s of talk
    call = await f.until(leg.sid, lambda c: c.talk_s is not None and c.duration_s is not None)
    assert (call.outcome, call.wait_s, call.talk_s) == ("answered", 12, 64)
    ended = await ann.until_event("call.ended")
    assert ended["payload"]["outcome"] == "answered"
    async with f.hub.sessions() as s:
        conv = await s.get(Conversation, call.conversation_id)
        assert conv is not None
        assert conv.state == "wrap_up"
        summary = await s.scalar(select(Message.text).where(Message.kind == "call"))
    assert summary is not None
    assert summary.startswith("Call answered by ann · waited 12 s")
    assert "talked 1 min 04 s" in summary
    # The caller heard the position, then the agent's name; the agent heard who calls.
    said = [text for verb, text in leg.log if verb == "Say"]
    assert any("number 1 in the queue" in t for t in said)
    assert any(t.startswith("Connecting you to ann") for t in said)
    clean(f.fake)
    await ann.close()


async def test_caller_hangs_up_in_the_queue_abandoned_with_a_callback_task(
    floor: FloorFactory,
) -> None:
    f = await floor()
    leg = await f.call("+447700900124", Script(inputs=["1"], abandon_after_s=35))
    f.clock.advance(35)
    call = await f.until(leg.sid, lambda c: c.outcome != "" and c.duration_s is not None)
    assert (call.outcome, call.wait_s) == ("abandoned", 35)
    async with f.hub.sessions() as s:
        conv = await s.get(Conversation, call.conversation_id)
        assert conv is not None
        assert conv.state == "abandoned"
        callback = await s.scalar(
            select(Message).where(Message.provider_id == f"{leg.sid}:callback")
        )
        assert callback is not None
        assert callback.text == "Missed call: hung up after 35 s in the queue"
        task = await s.get(Conversation, callback.conversation_id)
        assert task is not None
        assert (task.channel, task.state) == ("callback", "queued")
    clean(f.fake)


async def test_voicemail_with_transcription(floor: FloorFactory) -> None:
    f = await floor()
    leg = await f.call(
        "+447700900125",
        Script(
            inputs=["1"],
            press_in_queue=(20, "1"),
            record_s=14,
            transcript="Hi, please call me back about order 1234.",
        ),
    )
    f.clock.advance(20)  # presses 1 after 20 s of waiting, then speaks for 14 s
    await f.fake.wait_until(lambda: any(verb == "Record" for verb, _ in leg.log), timeout=10)
    f.clock.advance(14)
    call = await f.until(leg.sid, lambda c: c.outcome == "voicemail")
    assert call.recording["duration_s"] == 14
    for _ in range(500):
        async with f.hub.sessions() as s:
            vm = await s.scalar(select(Message).where(Message.channel == "voicemail"))
            att = await s.scalar(select(MessageAttachment))
        if vm is not None and vm.text.startswith("Voicemail:") and att and att.state == "fetched":
            break
        await asyncio.sleep(0.02)
    assert vm is not None
    assert vm.text == "Voicemail: Hi, please call me back about order 1234."
    assert att is not None
    assert att.state == "fetched"
    assert att.content_type.startswith("audio/")
    assert att.size
    assert att.size > 44
    clean(f.fake)


async def test_callback_requested_then_the_agent_calls_back(floor: FloorFactory) -> None:
    f = await floor()
    leg = await f.call("+447700900126", Script(inputs=["1"], press_in_queue=(8, "2")))
    f.clock.advance(8)
    call = await f.until(leg.sid, lambda c: c.outcome == "callback_requested")
    assert call.wait_s == 8
    await f.fake.wait_until(leg.ended.is_set, timeout=10)
    said = [text for verb, text in leg.log if verb == "Say"]
    assert any("call you back" in t for t in said)
    # The customer answers the callback and talks 30 s.
    f.fake.callee = lambda to: Callee(talk_s=30) if to == "+447700900126" else Callee()
    ann = await f.agent("ann", ANN_PHONE)
    offer = await accept_next(ann, "callback")
    assert offer["payload"]["preview"] == "Callback requested while waiting"
    await f.fake.wait_until(lambda: bool(f.fake.bridges), timeout=10)
    f.clock.advance(30)
    async with f.hub.sessions() as s:
        key = await s.scalar(select(Call.call_sid).where(Call.direction == "callback"))
    assert key is not None
    back = await f.until(key, lambda c: c.outcome == "answered" and c.talk_s is not None)
    assert back.talk_s == 30
    assert back.to_number == "+447700900126"
    dialed = [e for e in f.fake.created if e["To"] == ANN_PHONE]
    assert len(dialed) == 1
    assert "+447700900126" in str(dialed[0]["Twiml"])
    clean(f.fake)
    await ann.close()


async def test_an_agent_whose_phone_does_not_answer_is_set_away_and_the_call_moves_on(
    floor: FloorFactory,
) -> None:
    f = await floor()
    f.fake.callee = lambda to: Callee(answer="no-answer") if to == ANN_PHONE else Callee()
    ann = await f.agent("ann", ANN_PHONE)
    leg = await f.call("+447700900127", Script(inputs=["1"], talk_s=5))
    await accept_next(ann)
    await f.fake.wait_until(
        lambda: any(e.params.get("CallStatus") == "ringing" for e in f.fake.exchanges), timeout=10
    )
    # Ann's phone rings out (ring_timeout_s = 20): no-answer reaches the hub.
    for _ in range(50):
        f.clock.advance(20)
        await asyncio.sleep(0.05)
        if any(e.params.get("CallStatus") == "no-answer" for e in f.fake.exchanges):
            break
    changed = await ann.until_event("agent.state_changed")
    while changed["payload"]["state"] != "away":
        changed = await ann.until_event("agent.state_changed")
    assert changed["payload"]["reason"].startswith("missed call")
    assert (await f.row(leg.sid)).state == "queued"
    bob = await f.agent("bob", BOB_PHONE)
    await accept_next(bob)
    await f.bridged(leg)
    f.clock.advance(5)
    call = await f.until(leg.sid, lambda c: c.outcome == "answered" and c.talk_s is not None)
    async with f.hub.sessions() as s:
        bob_id = await s.scalar(select(Agent.id).where(Agent.username == "bob"))
    assert call.agent_id == bob_id
    clean(f.fake)
    await ann.close()
    await bob.close()


async def test_voice_kpis_match_a_hand_calculation(floor: FloorFactory) -> None:
    """Four callers on one agent: A answered after 10 s (talks 10 s); D asks for a callback
    at 5 s; B, offered next, hangs up at 25 s; C is answered at 30 s.

    By hand: queued 4; answered 2 (waits 10, 30): ASA 20 s; abandoned 1 of the 3 that did
    not choose a callback: 1/3; removed within 20 s: A (10) and D (5): 2/4 = 0.5, answered
    within 20 s: 1/2; within 30 s: all four: 1.0, answered 2/2."""
    f = await floor()
    ann = await f.agent("ann", ANN_PHONE)
    a = await f.call("+447700900131", Script(inputs=["1"], talk_s=10))
    b = await f.call("+447700900132", Script(inputs=["1"], abandon_after_s=25))
    c = await f.call("+447700900133", Script(inputs=["1"], talk_s=10))
    d = await f.call("+447700900134", Script(inputs=["1"], press_in_queue=(5, "2")))
    first = await ann.until_event("offer.created")
    f.clock.advance(5)
    await f.until(d.sid, lambda r: r.outcome == "callback_requested")
    f.clock.advance(5)  # t = 10
    await ann.cmd("accept", offer_id=first["payload"]["offer_id"])
    await f.bridged(a)
    f.clock.advance(10)  # t = 20: A hangs up
    await f.until(a.sid, lambda r: r.talk_s is not None)
    offer_b = await ann.until_event("offer.created")
    assert offer_b["customer_id"] != first["customer_id"]
    f.clock.advance(5)  # t = 25: B gives up
    await f.until(b.sid, lambda r: r.outcome == "abandoned")
    offer_c = await ann.until_event("offer.created")
    f.clock.advance(5)  # t = 30
    await ann.cmd("accept", offer_id=offer_c["payload"]["offer_id"])
    await f.bridged(c)
    f.clock.advance(10)
    await f.until(c.sid, lambda r: r.talk_s is not None)

    resp = await f.client.get(
        "/api/v1/reports/voice?thresholds=20,30",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert resp.status == 200, await resp.text()
    kpis = await resp.json()
    assert kpis["queued"] == 4
    assert (kpis["answered"], kpis["abandoned"], kpis["callbacks_requested"]) == (2, 1, 1)
    assert kpis["asa_s"] == 20.0
    assert kpis["abandonment_rate"] == pytest.approx(1 / 3)
    assert kpis["aht_s"] == 10.0
    assert kpis["service_levels"] == [
        {"threshold_s": 20.0, "service_level": 0.5, "answered_within": 0.5},
        {"threshold_s": 30.0, "service_level": 1.0, "answered_within": 1.0},
    ]
    clean(f.fake)
    await ann.close()


async def test_a_waiting_call_transferred_to_an_agent_rings_them_and_a_connected_one_stays(
    floor: FloorFactory,
) -> None:
    f = await floor()
    ann = await f.agent("ann", ANN_PHONE)
    await ann.cmd("set_state", state="away", reason="Break")
    bob = await f.agent("bob", BOB_PHONE)
    await bob.cmd("set_state", state="away", reason="Break")
    leg = await f.call("+447700900141", Script(inputs=["1"], talk_s=20))
    call = await f.row(leg.sid)
    async with f.hub.sessions() as s:
        bob_id = await s.scalar(select(Agent.id).where(Agent.username == "bob"))
        ann_id = await s.scalar(select(Agent.id).where(Agent.username == "ann"))
    assert bob_id is not None
    assert ann_id is not None
    # A supervisor hands the waiting caller straight to Bob: Bob's phone rings.
    assert call.conversation_id is not None
    await f.hub.work.transfer(call.conversation_id, by=None, to_agent=bob_id)
    await f.bridged(leg)
    assert [c["To"] for c in f.fake.created] == [BOB_PHONE]
    # Connected: moving the record to Ann would leave the audio with Bob, so it is refused.
    await f.until(leg.sid, lambda c: c.state == "talking")
    with pytest.raises(Conflict, match="connected"):
        await f.hub.work.transfer(call.conversation_id, by=None, to_agent=ann_id)
    f.clock.advance(20)
    done = await f.until(leg.sid, lambda c: c.talk_s is not None)
    assert (done.outcome, done.agent_id, done.talk_s) == ("answered", bob_id, 20)
    clean(f.fake)
    await ann.close()
    await bob.close()


async def test_after_the_agent_hangs_up_the_caller_rates_the_call_with_a_key(
    floor: FloorFactory,
) -> None:
    from hub.workflow.engine import WORKFLOW, WorkflowEngine
    from storage.models import Survey

    f = await floor(survey=True)
    ann = await f.agent("ann", ANN_PHONE)
    f.fake.callee = lambda to: Callee(talk_s=20) if to == ANN_PHONE else Callee()
    leg = await f.call("+447700900131", Script(inputs=["2"]))
    await accept_next(ann)
    await f.bridged(leg)
    leg._inputs.append("4")  # the key the caller presses at the survey
    f.clock.advance(20)  # Ann hangs up; the caller stays on the line
    await f.fake.wait_until(lambda: leg.ended.is_set(), timeout=10)
    said = [text for verb, text in leg.log if verb == "Say"]
    assert any("how satisfied were you" in t for t in said)
    assert said[-1] == "Thank you for your rating. Goodbye."
    engine: WorkflowEngine = f.client.app[WORKFLOW]
    await engine.drain()
    async with f.hub.sessions() as s:
        surveys = (await s.scalars(select(Survey))).all()
        ann_id = await s.scalar(select(Agent.id).where(Agent.username == "ann"))
    assert [(v.channel, v.score, v.state, v.agent_id) for v in surveys] == [
        ("voice", 4, "answered", ann_id)
    ]
    clean(f.fake)
    await ann.close()
