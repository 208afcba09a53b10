"""The voice webhooks as Twilio calls them: signatures, the IVR, the wait loop's TwiML and
the verbs each context allows, keys pressed while waiting."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from channels.twilio_voice.twiml import WAIT_VERBS, WHISPER_VERBS
from storage.models import Call, Conversation, Customer, Message
from tests import factories
from tests.channels.twilio_voice.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_URL,
    VoiceHub,
    call_params,
    new_call_sid,
    voice_section,
)

VoiceFactory = Callable[..., Awaitable[VoiceHub]]
PATHS = (
    "/webhooks/twilio/voice/incoming",
    "/webhooks/twilio/voice/status",
    "/webhooks/twilio/voice/gather?menu=main",
    "/webhooks/twilio/voice/queue-wait",
    "/webhooks/twilio/voice/enqueue-action",
    "/webhooks/twilio/voice/queue-whisper",
    "/webhooks/twilio/voice/agent-dial-action?call=" + "CA" + "0" * 32,
    "/webhooks/twilio/voice/voicemail",
    "/webhooks/twilio/voice/transcription",
)
# Verbs a Gather may nest (Twilio: Say, Play, Pause).
GATHER_CHILDREN = frozenset({"Say", "Play", "Pause"})


def verbs(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


def assert_only(root: ET.Element, allowed: frozenset[str]) -> None:
    assert set(verbs(root)) <= allowed, verbs(root)
    for gather in root.iter("Gather"):
        assert {c.tag for c in gather} <= GATHER_CHILDREN


def path_of(url: str) -> str:
    """``/path?query`` of one of our absolute URLs (Twilio calls exactly that)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def test_every_voice_webhook_refuses_bad_signatures_and_stores_nothing(
    voice_hub: VoiceFactory,
) -> None:
    vh = await voice_hub()
    before = vh.hub.stream.last_seq
    params = call_params(new_call_sid(), QueueResult="hangup", Digits="1")
    for path in PATHS:
        assert (await vh.post(path, params, signature="bm90IGEgc2lnbmF0dXJl")).status == 403
        assert (await vh.post(path, params, signature="")).status == 403
        # Signed for another URL (a replay to another step) or another account.
        elsewhere = RequestValidator(AUTH_TOKEN).compute_signature(
            PUBLIC_URL + "/webhooks/twilio/voice/incoming?x=1", params
        )
        assert (await vh.post(path, params, signature=elsewhere)).status == 403
        other = dict(params, AccountSid="AC" + "1" * 32)
        assert (await vh.post(path, other)).status == 403
        malformed = dict(params, CallSid="not-a-sid")
        assert (await vh.post(path, malformed)).status == 400
        assert (await vh.post(path, params, content_type="application/json")).status == 400
    assert vh.hub.stream.last_seq == before
    async with vh.hub.sessions() as s:
        assert (await s.scalars(select(Call))).all() == []


async def test_ivr_new_caller_chooses_language_then_queue_by_digit(
    voice_hub: VoiceFactory,
) -> None:
    vh = await voice_hub()
    sid = new_call_sid()
    root = (await vh.post("/webhooks/twilio/voice/incoming", call_params(sid))).twiml()
    assert verbs(root) == ["Say", "Gather"]
    gather = root.find("Gather")
    assert gather is not None
    assert [s.get("language") for s in gather.iter("Say")] == ["en-US", "zh-CN"]
    assert "中文" in "".join(s.text or "" for s in gather.iter("Say"))
    step = path_of(gather.get("action", ""))
    assert step.startswith("/webhooks/twilio/voice/gather?")
    assert "menu=lang" in step

    main = (await vh.post(step, call_params(sid, Digits="2"))).twiml()
    gather = main.find("Gather")
    assert gather is not None
    assert gather.get("language") == "zh-CN"
    assert "账单" in "".join(s.text or "" for s in gather.iter("Say"))
    enqueue = (
        await vh.post(path_of(gather.get("action", "")), call_params(sid, Digits="2"))
    ).twiml()
    assert verbs(enqueue) == ["Enqueue"]
    node = enqueue.find("Enqueue")
    assert node is not None
    assert node.text == "c" + sid
    assert path_of(node.get("waitUrl", "")).startswith("/webhooks/twilio/voice/queue-wait")
    assert path_of(node.get("action", "")).startswith("/webhooks/twilio/voice/enqueue-action")
    async with vh.hub.sessions() as s:
        call = await s.scalar(select(Call).where(Call.call_sid == sid))
        assert call is not None
        assert (call.state, call.queue, call.language, call.ivr) == (
            "queued",
            "billing",
            "zh",
            ["中文", "billing"],
        )
        conv = await s.get(Conversation, call.conversation_id)
        assert conv is not None
        assert (conv.channel, conv.queue, conv.state) == (
            "voice",
            "billing",
            "queued",
        )


async def test_a_known_caller_is_greeted_by_name_skips_the_language_menu_and_says_the_queue(
    voice_hub: VoiceFactory,
) -> None:
    vh = await voice_hub()
    earlier = await factories.contact(
        vh.hub,
        "+447700900123",
        "my invoice is wrong",
        channel="api",
        display_name="Ann Lee",
        language="en",
    )
    sid = new_call_sid()
    root = (await vh.post("/webhooks/twilio/voice/incoming", call_params(sid))).twiml()
    assert "Ann Lee" in (root.findtext("Say") or "")
    gather = root.find("Gather")
    assert gather is not None
    assert "menu=main" in (gather.get("action") or "")
    assert gather.get("input") == "dtmf speech"
    # Speech picks the option whose words it contains.
    speech = call_params(sid, SpeechResult="It is about my invoice", Confidence="0.9")
    answer = (await vh.post(path_of(gather.get("action", "")), speech)).twiml()
    assert verbs(answer) == ["Enqueue"]
    async with vh.hub.sessions() as s:
        call = await s.scalar(select(Call).where(Call.call_sid == sid))
        assert call is not None
        assert call.queue == "billing"
        assert call.customer_id == earlier.customer_id  # the same customer as the text
        customers = (await s.scalars(select(Customer))).all()
        assert len(customers) == 1


async def test_no_answer_repeats_the_menu_once_then_takes_the_first_option(
    voice_hub: VoiceFactory,
) -> None:
    vh = await voice_hub(voice_section(languages=["en"]))
    sid = new_call_sid()
    root = (await vh.post("/webhooks/twilio/voice/incoming", call_params(sid))).twiml()
    gather = root.find("Gather")
    assert gather is not None
    assert "menu=main" in (gather.get("action") or "")
    again = (await vh.post(path_of(gather.get("action", "")), call_params(sid, Digits="9"))).twiml()
    assert verbs(again)[0] == "Say"
    assert "did not get that" in (again.findtext("Say") or "")
    gather = again.find("Gather")
    assert gather is not None
    assert "tries=1" in (gather.get("action") or "")
    final = (await vh.post(path_of(gather.get("action", "")), call_params(sid))).twiml()
    assert verbs(final) == ["Enqueue"]
    async with vh.hub.sessions() as s:
        call = await s.scalar(select(Call).where(Call.call_sid == sid))
        assert call is not None
        assert call.queue == "support"


async def test_closed_hours_go_straight_to_voicemail(voice_hub: VoiceFactory) -> None:
    # Open one minute a week, on a day that is not today.
    import datetime as dt

    tomorrow = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[
        (dt.datetime.now(dt.UTC).weekday() + 1) % 7
    ]
    vh = await voice_hub(voice_section(hours={tomorrow: "03:00-03:01"}))
    root = (await vh.post("/webhooks/twilio/voice/incoming", call_params(new_call_sid()))).twiml()
    assert "Record" in verbs(root)
    assert "Gather" not in verbs(root)
    record = root.find("Record")
    assert record is not None
    assert record.get("transcribe") == "true"
    assert "closed" in "".join(s.text or "" for s in root.iter("Say"))


async def enqueue(vh: VoiceHub, sid: str, caller: str = "+447700900123", digit: str = "1") -> None:
    await vh.post("/webhooks/twilio/voice/incoming", call_params(sid, caller))
    await vh.post(
        "/webhooks/twilio/voice/gather?lang=en&menu=main&tries=0",
        call_params(sid, caller, Digits=digit),
    )


async def test_the_wait_loop_announces_position_and_only_uses_wait_verbs(
    voice_hub: VoiceFactory,
) -> None:
    vh = await voice_hub(voice_section(languages=["en"]))
    first, second = new_call_sid(), new_call_sid()
    await enqueue(vh, first, "+447700900001")
    await enqueue(vh, second, "+447700900002")
    wait = (
        await vh.post(
            "/webhooks/twilio/voice/queue-wait?lang=en",
            call_params(second, "+447700900002", QueuePosition="1", QueueTime="5"),
        )
    ).twiml()
    assert_only(wait, WAIT_VERBS)
    said = " ".join(s.text or "" for s in wait.iter("Say"))
    # The router's order, not Twilio's one-caller queue: the second caller is number 2.
    assert "number 2 in the queue" in said
    assert "press 1" in said
    assert "press 2" in said
    assert [p.text for p in wait.iter("Play")] == ["http://127.0.0.1:9/hold.mp3"]
    # A withheld number is offered voicemail only.
    hidden = new_call_sid()
    await enqueue(vh, hidden, "anonymous")
    wait = (
        await vh.post("/webhooks/twilio/voice/queue-wait?lang=en", call_params(hidden, "anonymous"))
    ).twiml()
    assert_only(wait, WAIT_VERBS)
    said = " ".join(s.text or "" for s in wait.iter("Say"))
    assert "press 1" in said
    assert "called back" not in said
    # Keys pressed while waiting answer in the wait context too.
    for digits in ("", "7", "1"):
        answer = (
            await vh.post(
                "/webhooks/twilio/voice/gather?lang=en&menu=queue",
                call_params(first, "+447700900001", Digits=digits),
            )
        ).twiml()
        assert_only(answer, WAIT_VERBS)
    assert verbs(answer) == ["Leave"]


async def test_the_whisper_only_uses_whisper_verbs(voice_hub: VoiceFactory) -> None:
    vh = await voice_hub(voice_section(languages=["en"]))
    sid = new_call_sid()
    await enqueue(vh, sid)
    answer = (
        await vh.post(
            "/webhooks/twilio/voice/queue-whisper?lang=en",
            call_params(sid, QueueTime="12", DequeingCallSid=new_call_sid()),
        )
    ).twiml()
    assert_only(answer, WHISPER_VERBS)
    async with vh.hub.sessions() as s:
        call = await s.scalar(select(Call).where(Call.call_sid == sid))
        assert call is not None
        assert (call.state, call.wait_s) == ("talking", 12)


async def test_asking_for_a_callback_leaves_the_queue_and_opens_a_callback_task(
    voice_hub: VoiceFactory,
) -> None:
    vh = await voice_hub(voice_section(languages=["en"]))
    sid = new_call_sid()
    await enqueue(vh, sid, digit="2")
    answer = (
        await vh.post(
            "/webhooks/twilio/voice/gather?lang=en&menu=queue", call_params(sid, Digits="2")
        )
    ).twiml()
    assert verbs(answer) == ["Leave"]
    after = (
        await vh.post(
            "/webhooks/twilio/voice/enqueue-action?lang=en",
            call_params(sid, QueueResult="leave", QueueTime="40"),
        )
    ).twiml()
    assert verbs(after) == ["Say", "Hangup"]
    assert "call you back" in (after.findtext("Say") or "")
    async with vh.hub.sessions() as s:
        call = await s.scalar(select(Call).where(Call.call_sid == sid))
        assert call is not None
        assert call.outcome == "callback_requested"
        convs = (await s.scalars(select(Conversation).order_by(Conversation.id))).all()
        assert [(c.channel, c.state, c.queue) for c in convs] == [
            ("voice", "closed", "billing"),
            ("callback", "queued", "billing"),
        ]
        first = await s.scalar(
            select(Message).where(Message.conversation_id == convs[1].id, Message.direction == "in")
        )
        assert first is not None
        assert first.meta["callback"]["number"] == "+447700900123"


async def test_voicemail_is_recorded_then_transcribed_into_a_message(
    voice_hub: VoiceFactory,
) -> None:
    vh = await voice_hub(voice_section(languages=["en"]))
    sid = new_call_sid()
    await enqueue(vh, sid)
    await vh.post("/webhooks/twilio/voice/gather?lang=en&menu=queue", call_params(sid, Digits="1"))
    record = (
        await vh.post(
            "/webhooks/twilio/voice/enqueue-action?lang=en",
            call_params(sid, QueueResult="leave", QueueTime="20"),
        )
    ).twiml()
    node = record.find("Record")
    assert node is not None
    assert node.get("transcribe") == "true"
    recording = "RE" + "5" * 32
    url = f"http://127.0.0.1:9/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording}"
    done = (
        await vh.post(
            path_of(node.get("action", "")),
            call_params(sid, RecordingSid=recording, RecordingUrl=url, RecordingDuration="14"),
        )
    ).twiml()
    assert verbs(done) == ["Say", "Hangup"]
    transcription = call_params(
        sid,
        RecordingSid=recording,
        RecordingUrl=url,
        TranscriptionText="Please call me about my refund",
        TranscriptionStatus="completed",
        TranscriptionSid="TR" + "1" * 32,
    )
    callback = node.get("transcribeCallback", "")
    assert (await vh.post(path_of(callback), transcription)).status == 200
    # Twilio retries: the same transcription again changes nothing.
    assert (await vh.post(path_of(callback), transcription)).status == 200
    async with vh.hub.sessions() as s:
        call = await s.scalar(select(Call).where(Call.call_sid == sid))
        assert call is not None
        assert call.outcome == "voicemail"
        vm = await s.scalar(select(Message).where(Message.channel == "voicemail"))
        assert vm is not None
        assert vm.text == "Voicemail: Please call me about my refund"
        conv = await s.get(Conversation, vm.conversation_id)
        assert conv is not None
        assert (conv.channel, conv.queue) == ("voicemail", "support")
        assert conv.customer_id == call.customer_id


@pytest.mark.parametrize("params", [{}, {"QueueResult": "bridged"}])
async def test_unknown_menu_or_reference_is_a_400(voice_hub: VoiceFactory, params: Any) -> None:
    vh = await voice_hub()
    sid = new_call_sid()
    assert (
        await vh.post("/webhooks/twilio/voice/gather?menu=evil", call_params(sid, **params))
    ).status == 400
    assert (
        await vh.post("/webhooks/twilio/voice/agent-dial-action?call=x", call_params(sid))
    ).status == 400


async def test_a_vip_caller_waits_with_priority(voice_hub: VoiceFactory) -> None:
    vh = await voice_hub(voice_section(languages=["en"]))
    regular, vip = new_call_sid(), new_call_sid()
    await enqueue(vh, regular, "+447700900301")
    known = await factories.contact(vh.hub, "+447700900302", "hello", display_name="Vera VIP")
    async with vh.hub.sessions() as s, s.begin():
        customer = await s.get(Customer, known.customer_id)
        assert customer is not None
        customer.segment = "vip"
    await enqueue(vh, vip, "+447700900302")
    async with vh.hub.sessions() as s:
        call = await s.scalar(select(Call).where(Call.call_sid == vip))
        assert call is not None
        conv = await s.get(Conversation, call.conversation_id)
        assert conv is not None
        assert conv.priority == vh.hub.settings.vip_priority
    # Announced ahead of the caller who was there first.
    wait = (
        await vh.post(
            "/webhooks/twilio/voice/queue-wait?lang=en", call_params(vip, "+447700900302")
        )
    ).twiml()
    assert "number 1 in the queue" in " ".join(s.text or "" for s in wait.iter("Say"))


async def test_a_caller_whose_conversation_was_closed_is_not_left_on_hold(
    voice_hub: VoiceFactory,
) -> None:
    vh = await voice_hub(voice_section(languages=["en"]))
    sid = new_call_sid()
    await enqueue(vh, sid)
    async with vh.hub.sessions() as s:
        call = await s.scalar(select(Call).where(Call.call_sid == sid))
        assert call is not None
        assert call.conversation_id is not None
    # A supervisor closes the stale conversation while the caller still hears music.
    await vh.hub.conversations.close(call.conversation_id, agent_id=None, disposition="")
    wait = (await vh.post("/webhooks/twilio/voice/queue-wait?lang=en", call_params(sid))).twiml()
    assert_only(wait, WAIT_VERBS)
    assert verbs(wait) == ["Say", "Hangup"]
    # The hang-up ends the call as abandoned (it never reached anyone).
    await vh.post(
        "/webhooks/twilio/voice/enqueue-action?lang=en",
        call_params(sid, QueueResult="hangup", QueueTime="50"),
    )
    async with vh.hub.sessions() as s:
        ended = await s.scalar(select(Call).where(Call.call_sid == sid))
        assert ended is not None
        assert ended.outcome == "abandoned"
