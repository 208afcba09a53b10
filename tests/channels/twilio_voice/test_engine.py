"""The fake Twilio Voice (REST Calls API + call engine) against a tiny TwiML app on 127.0.0.1.

Every request the engine sends is checked with twilio's own RequestValidator; time runs on a
ManualClock, so queue times and durations are exact.
"""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator

from channels.twilio_voice.testing.engine import (
    Callee,
    Caller,
    Leg,
    ManualClock,
    Script,
    Speech,
    compute_signature,
)
from channels.twilio_voice.testing.fake_api import FakeTwilioVoice
from contract.testing import free_port

ACCOUNT_SID = "AC" + "5a" * 16
AUTH_TOKEN = "voice-test-auth-token"
CALLER = "+447700900123"
AGENT = "client:alice"


@dataclass
class Hit:
    """One request the TwiML app received."""

    method: str
    path: str
    url: str
    params: dict[str, str]
    valid: bool


Answer = str | Callable[[Hit], str]


class TwimlApp:
    """A tiny TwiML application: answers by path, records each request, checks signatures."""

    def __init__(self) -> None:
        self.routes: dict[str, Answer] = {}
        self.hits: list[Hit] = []
        self.validator = RequestValidator(AUTH_TOKEN)
        self.base = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str) -> str:
        return self.base + path

    async def _handle(self, request: web.Request) -> web.Response:
        url = str(request.url)
        signature = request.headers.get("X-Twilio-Signature", "")
        if request.method == "POST":
            form = await request.post()
            valid = self.validator.validate(url, form, signature)
            params = {k: str(v) for k, v in form.items()}
        else:
            valid = self.validator.validate(url, {}, signature)
            params = dict(request.query)
        hit = Hit(request.method, request.path, url, params, valid)
        self.hits.append(hit)
        answer = self.routes.get(request.path)
        if answer is None:
            return web.Response(status=404, text="no such route")
        text = answer(hit) if callable(answer) else answer
        if not text:
            return web.Response(status=204)
        return web.Response(text=text, content_type="text/xml")

    def to(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]

    def one(self, path: str) -> Hit:
        found = self.to(path)
        assert len(found) == 1, (path, found)
        return found[0]


@pytest.fixture
async def app() -> AsyncIterator[TwimlApp]:
    twiml = TwimlApp()
    await twiml.start()
    yield twiml
    await twiml.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(app: TwimlApp, clock: ManualClock) -> AsyncIterator[FakeTwilioVoice]:
    app.routes["/status"] = ""
    fake = FakeTwilioVoice(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        voice_url=app.url("/voice"),
        status_url=app.url("/status?source=number&tag=a&tag=b"),
        clock=clock,
    )
    await fake.start()
    yield fake
    await fake.stop()
    assert all(h.valid for h in app.hits), [h for h in app.hits if not h.valid]


@pytest.fixture
async def rest(fake: FakeTwilioVoice) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=fake.base_url, headers=basic(AUTH_TOKEN)) as session:
        yield session


def basic(password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(ACCOUNT_SID, password)}


CALLS = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"


async def create_call(session: aiohttp.ClientSession, **fields: Any) -> tuple[int, Any]:
    data: list[tuple[str, str]] = []
    for key, value in fields.items():
        values = value if isinstance(value, list) else [value]
        data += [(key, str(v)) for v in values]
    async with session.post(CALLS, data=data) as resp:
        return resp.status, await resp.json()


async def ended(*legs: Leg) -> None:
    async with asyncio.timeout(5):
        for leg in legs:
            await leg.ended.wait()


def logged(leg: Leg, verb: str) -> bool:
    return any(v == verb for v, _ in leg.log)


# ---------------------------------------------------------------------------- signatures
def test_own_signature_matches_twilio_worked_example_and_validator() -> None:
    url = "https://example.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675310",
        "Digits": "1234",
        "From": "+14158675310",
        "To": "+18005551212",
    }
    assert compute_signature(url, params.items(), "12345") == "L/OH5YylLD5NRKLltdqwSvS0BnU="
    validator = RequestValidator(AUTH_TOKEN)
    tricky = {
        **params,
        "SpeechResult": "Ça va très bien 👍 你好",
        "msg": "Gather End",
        "ToCity": "",
        "To": "+18005551212",
    }
    url = "http://127.0.0.1:8080/voice/next?x=1&x=2&name=Jos%C3%A9"
    ours = compute_signature(url, tricky.items(), AUTH_TOKEN)
    assert ours == validator.compute_signature(url, tricky)
    assert validator.validate(url, tricky, ours)


async def test_every_request_the_engine_sends_validates(
    app: TwimlApp, fake: FakeTwilioVoice
) -> None:
    app.routes["/voice"] = (
        '<Response><Gather input="speech dtmf" '
        'action="/gathered?lang=fr&amp;tag=a&amp;tag=b&amp;q=caf%C3%A9">'
        "<Say>Bonjour</Say></Gather></Response>"
    )
    app.routes["/gathered"] = (
        '<Response><Redirect method="GET">/menu?step=2&amp;step=3</Redirect></Response>'
    )
    app.routes["/menu"] = '<Response><Gather numDigits="1" action="next"/></Response>'
    app.routes["/next"] = "<Response><Say>Au revoir</Say><Hangup/></Response>"
    speech = Speech("Ça va très bien, merci 👍", 0.87)
    leg = await fake.place_call(Caller(number=CALLER, script=Script(inputs=[speech, "7"])))
    await ended(leg)

    assert [h.path for h in app.hits] == ["/voice", "/gathered", "/menu", "/next", "/status"]
    assert all(h.valid for h in app.hits)
    gathered = app.one("/gathered")
    assert gathered.params["SpeechResult"] == speech.text
    assert gathered.params["Confidence"] == "0.87"
    assert gathered.params["msg"] == "Gather End"
    assert "q=caf%C3%A9" in gathered.url
    menu = app.one("/menu")
    assert menu.method == "GET"
    assert menu.params["CallSid"] == leg.sid
    assert menu.params["CallStatus"] == "in-progress"
    assert app.one("/next").params["Digits"] == "7"
    for hit in app.hits:
        assert hit.params["AccountSid"] == ACCOUNT_SID
        assert hit.params["ApiVersion"] == "2010-04-01"
        assert hit.params["Direction"] == "inbound"
        assert hit.params["From"] == hit.params["Caller"] == CALLER
        assert hit.params["To"] == hit.params["Called"] == fake.number
    assert fake.errors == []


# ---------------------------------------------------------------------------- Gather
@pytest.mark.parametrize(
    ("typed", "digits", "finished_on"),
    [("42", "42", ""), ("4213", "42", ""), ("3#", "3", "#")],
)
async def test_gathered_digits_reach_the_action(
    app: TwimlApp, fake: FakeTwilioVoice, typed: str, digits: str, finished_on: str
) -> None:
    app.routes["/voice"] = (
        '<Response><Gather numDigits="2" action="/menu"><Say>Choose</Say>'
        "<Play>/menu.mp3</Play></Gather><Say>Nothing chosen</Say></Response>"
    )
    app.routes["/menu"] = "<Response><Hangup/></Response>"
    leg = await fake.place_call(Caller(number=CALLER, script=Script(inputs=[typed])))
    await ended(leg)

    menu = app.one("/menu")
    assert menu.params["Digits"] == digits
    assert menu.params["FinishedOnKey"] == finished_on
    assert leg.log[:3] == [
        ("Gather", "action=/menu numDigits=2"),
        ("Say", "Choose"),
        ("Play", app.url("/menu.mp3")),
    ]
    assert ("Say", "Nothing chosen") not in leg.log


async def test_gathered_speech_reaches_the_action(app: TwimlApp, fake: FakeTwilioVoice) -> None:
    app.routes["/voice"] = '<Response><Gather input="speech" action="/heard"/></Response>'
    app.routes["/heard"] = "<Response/>"
    script = Script(inputs=[Speech("billing please", 0.42)])
    leg = await fake.place_call(Caller(number=CALLER, script=script))
    await ended(leg)

    heard = app.one("/heard")
    assert (heard.params["SpeechResult"], heard.params["Confidence"]) == ("billing please", "0.42")
    assert "Digits" not in heard.params


@pytest.mark.parametrize("action_on_empty", [False, True])
async def test_empty_gather_falls_through_unless_action_on_empty_result(
    app: TwimlApp, fake: FakeTwilioVoice, clock: ManualClock, action_on_empty: bool
) -> None:
    flag = ' actionOnEmptyResult="true"' if action_on_empty else ""
    app.routes["/voice"] = (
        f'<Response><Gather action="/menu" timeout="3"{flag}><Say>Press a key</Say></Gather>'
        "<Say>No input</Say></Response>"
    )
    app.routes["/menu"] = "<Response><Say>Menu</Say></Response>"
    leg = await fake.place_call(Caller(number=CALLER, script=Script(inputs=[None])))
    await fake.wait_until(lambda: logged(leg, "Gather"))
    clock.advance(2)
    await asyncio.sleep(0.05)
    assert not app.to("/menu")  # still listening
    clock.advance(1)
    await ended(leg)

    if action_on_empty:
        menu = app.one("/menu")
        assert "Digits" not in menu.params
        assert leg.log[-1] == ("Say", "Menu")
    else:
        assert not app.to("/menu")
        assert leg.log[-1] == ("Say", "No input")


# ---------------------------------------------------------------------------- queues
async def test_wait_url_gets_queue_position_time_and_sizes(
    app: TwimlApp, fake: FakeTwilioVoice, clock: ManualClock
) -> None:
    app.routes["/voice"] = '<Response><Enqueue waitUrl="/hold">support</Enqueue></Response>'
    app.routes["/hold"] = '<Response><Say>Please hold</Say><Pause length="10"/></Response>'
    first = await fake.place_call(Caller(number=CALLER))
    await fake.wait_until(lambda: len(app.to("/hold")) == 1)
    second = await fake.place_call(Caller(number="+15551230002"))
    await fake.wait_until(lambda: len(app.to("/hold")) == 2)
    clock.advance(10)
    await fake.wait_until(lambda: len(app.to("/hold")) == 4)

    hold = app.to("/hold")
    assert hold[0].params["CallSid"] == first.sid
    assert hold[0].params["QueueSid"].startswith("QU")
    assert len(hold[0].params["QueueSid"]) == 34
    assert {k: hold[0].params[k] for k in ("QueuePosition", "QueueTime", "CurrentQueueSize")} == {
        "QueuePosition": "1",
        "QueueTime": "0",
        "CurrentQueueSize": "1",
    }
    assert hold[0].params["MaxQueueSize"] == "1000"
    assert hold[1].params["CallSid"] == second.sid
    assert (hold[1].params["QueuePosition"], hold[1].params["CurrentQueueSize"]) == ("2", "2")
    again = {h.params["CallSid"]: h.params for h in hold[2:]}
    assert again[first.sid]["QueueTime"] == "10"
    assert again[first.sid]["AvgQueueTime"] == "10"
    assert again[second.sid]["QueuePosition"] == "2"
    assert fake.queue("support").legs == [first, second]
    assert fake.violations == []


@pytest.mark.parametrize(
    ("verb", "name"),
    [
        ("<Dial>+15550001111</Dial>", "Dial"),
        ('<Record maxLength="5"/>', "Record"),
        ("<Enqueue>other</Enqueue>", "Enqueue"),
    ],
)
async def test_disallowed_verb_in_wait_url_is_a_violation_and_queue_error(
    app: TwimlApp, fake: FakeTwilioVoice, verb: str, name: str
) -> None:
    app.routes["/voice"] = (
        '<Response><Enqueue action="/after" waitUrl="/hold">support</Enqueue></Response>'
    )
    app.routes["/hold"] = f"<Response><Say>Please hold</Say>{verb}</Response>"
    app.routes["/after"] = "<Response><Say>Sorry</Say><Hangup/></Response>"
    leg = await fake.place_call(Caller(number=CALLER))
    await ended(leg)

    assert len(fake.violations) == 1
    assert f"<{name}>" in fake.violations[0]
    assert leg.sid in fake.violations[0]
    assert app.one("/after").params["QueueResult"] == "error"
    assert leg.log[-2:] == [("Say", "Sorry"), ("Hangup", "")]
    assert [x for x in fake.legs.values() if x.direction == "outbound-dial"] == []
    assert "other" not in fake.queues


async def test_journey_caller_queued_agent_dials_queue_whisper_bridge_and_actions(
    app: TwimlApp, fake: FakeTwilioVoice, clock: ManualClock, rest: aiohttp.ClientSession
) -> None:
    app.routes["/voice"] = (
        "<Response><Say>Welcome</Say>"
        '<Enqueue action="/queue-result" waitUrl="/hold">q1</Enqueue></Response>'
    )
    app.routes["/hold"] = '<Response><Say>Please hold</Say><Pause length="30"/></Response>'
    app.routes["/queue-result"] = "<Response><Say>Thanks for calling</Say></Response>"
    app.routes["/whisper"] = lambda hit: (
        f"<Response><Say>Caller waited {hit.params['QueueTime']} seconds</Say></Response>"
    )
    app.routes["/dial-done"] = "<Response><Hangup/></Response>"
    app.routes["/agent-status"] = ""
    caller = await fake.place_call(Caller(number=CALLER, script=Script(talk_s=30)))
    await fake.wait_until(lambda: fake.queue("q1").legs == [caller])
    clock.advance(10)

    twiml = (
        f'<Response><Dial action="{app.url("/dial-done")}">'
        f'<Queue url="{app.url("/whisper")}">q1</Queue></Dial></Response>'
    )
    status, body = await create_call(
        rest, To=AGENT, From=fake.number, Twiml=twiml, StatusCallback=app.url("/agent-status")
    )
    assert status == 201
    assert body["status"] == "queued"
    assert body["sid"].startswith("CA")
    assert len(body["sid"]) == 34
    assert (body["to"], body["from"], body["direction"]) == (AGENT, fake.number, "outbound-api")
    agent = fake.legs[body["sid"]]
    await fake.wait_until(lambda: len(fake.bridges) == 1)
    bridge = fake.bridges[0]
    assert (bridge.a_sid, bridge.b_sid, bridge.ended) == (agent.sid, caller.sid, None)
    assert fake.queue("q1").legs == []
    clock.advance(30)
    await ended(caller, agent)

    whisper = app.one("/whisper")
    assert whisper.params["CallSid"] == caller.sid
    assert whisper.params["DequeingCallSid"] == agent.sid
    assert whisper.params["QueueTime"] == "10"
    assert whisper.params["QueueSid"] == fake.queue("q1").sid
    assert ("Say", "Caller waited 10 seconds") in caller.log
    result = app.one("/queue-result").params
    assert (result["QueueResult"], result["QueueTime"], result["CallSid"]) == (
        "bridged",
        "10",
        caller.sid,
    )
    done = app.one("/dial-done").params
    assert done["CallSid"] == agent.sid
    assert done["DialCallStatus"] == "completed"
    assert done["DialCallSid"] == caller.sid
    assert done["DialCallDuration"] == "30"
    assert done["DialBridged"] == "true"
    assert bridge.ended is not None
    assert bridge.ended - bridge.started == 30
    assert ("Say", "Thanks for calling") not in caller.log  # the caller had hung up
    assert app.one("/status").params["CallStatus"] == "completed"
    assert app.one("/status").params["CallDuration"] == "40"
    agent_status = app.one("/agent-status").params
    assert (agent_status["CallStatus"], agent_status["Direction"]) == ("completed", "outbound-api")
    assert agent.log == [("Dial", "queue:q1"), ("Hangup", "")]
    assert fake.created[0]["To"] == AGENT
    assert fake.created[0]["sid"] == agent.sid
    assert fake.violations == []
    assert fake.errors == []


async def test_agent_hanging_up_lets_the_caller_continue_with_the_enqueue_action(
    app: TwimlApp, fake: FakeTwilioVoice, clock: ManualClock, rest: aiohttp.ClientSession
) -> None:
    app.routes["/voice"] = (
        '<Response><Enqueue action="/queue-result" waitUrl="/hold">q1</Enqueue></Response>'
    )
    app.routes["/hold"] = '<Response><Play loop="0">https://example.com/m.mp3</Play></Response>'
    app.routes["/queue-result"] = "<Response><Say>Please rate the call</Say></Response>"
    caller = await fake.place_call(Caller(number=CALLER))
    await fake.wait_until(lambda: len(fake.queue("q1").legs) == 1)
    clock.advance(5)
    twiml = "<Response><Dial><Queue>q1</Queue></Dial></Response>"
    _, body = await create_call(rest, To=AGENT, From=fake.number, Twiml=twiml)
    await fake.wait_until(lambda: len(fake.bridges) == 1)
    clock.advance(20)
    url = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{body['sid']}.json"
    async with rest.post(url, data={"Status": "completed"}) as resp:
        assert resp.status == 200
    await ended(caller, fake.legs[body["sid"]])

    result = app.one("/queue-result").params
    assert (result["QueueResult"], result["QueueTime"]) == ("bridged", "5")
    assert result["CallStatus"] == "in-progress"
    assert caller.log[-1] == ("Say", "Please rate the call")
    assert fake.bridges[0].duration == 20


async def test_rest_redirect_of_a_bridged_caller_ends_the_bridge(
    app: TwimlApp, fake: FakeTwilioVoice, clock: ManualClock, rest: aiohttp.ClientSession
) -> None:
    app.routes["/voice"] = (
        '<Response><Enqueue action="/queue-result" waitUrl="/hold">q1</Enqueue></Response>'
    )
    app.routes["/hold"] = '<Response><Pause length="60"/></Response>'
    app.routes["/queue-result"] = "<Response><Say>Ignored: redirected</Say></Response>"
    app.routes["/survey"] = "<Response><Say>One question</Say></Response>"
    app.routes["/dial-done"] = "<Response><Say>Wrap up</Say></Response>"
    caller = await fake.place_call(Caller(number=CALLER))
    await fake.wait_until(lambda: len(fake.queue("q1").legs) == 1)
    twiml = f'<Response><Dial action="{app.url("/dial-done")}"><Queue>q1</Queue></Dial></Response>'
    _, body = await create_call(rest, To=AGENT, From=fake.number, Twiml=twiml)
    agent = fake.legs[body["sid"]]
    await fake.wait_until(lambda: len(fake.bridges) == 1)
    clock.advance(8)
    url = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{caller.sid}.json"
    async with rest.post(url, data={"Url": app.url("/survey")}) as resp:
        assert resp.status == 200
    await ended(caller, agent)

    assert app.one("/queue-result").params["QueueResult"] == "redirected-from-bridged"
    assert caller.log[-1] == ("Say", "One question")
    done = app.one("/dial-done").params
    assert (done["DialCallStatus"], done["DialCallDuration"]) == ("completed", "8")
    assert agent.log[-1] == ("Say", "Wrap up")


async def test_whisper_with_gather_is_a_violation(
    app: TwimlApp, fake: FakeTwilioVoice, rest: aiohttp.ClientSession
) -> None:
    app.routes["/voice"] = '<Response><Enqueue waitUrl="/hold">q1</Enqueue></Response>'
    app.routes["/hold"] = '<Response><Pause length="60"/></Response>'
    app.routes["/whisper"] = (
        '<Response><Gather numDigits="1"/><Say>Connecting you now</Say></Response>'
    )
    caller = await fake.place_call(Caller(number=CALLER))
    await fake.wait_until(lambda: len(fake.queue("q1").legs) == 1)
    twiml = f'<Response><Dial><Queue url="{app.url("/whisper")}">q1</Queue></Dial></Response>'
    await create_call(rest, To=AGENT, From=fake.number, Twiml=twiml)
    await fake.wait_until(lambda: len(fake.bridges) == 1)
    fake.hangup(caller.sid)
    await ended(caller)

    assert len(fake.violations) == 1
    assert "<Gather>" in fake.violations[0]
    assert "whisper" in fake.violations[0]
    assert ("Say", "Connecting you now") in caller.log


async def test_abandoned_caller_gets_queue_result_hangup_and_completed_status(
    app: TwimlApp, fake: FakeTwilioVoice, clock: ManualClock
) -> None:
    app.routes["/voice"] = (
        '<Response><Enqueue action="/queue-result" waitUrl="/hold">q1</Enqueue></Response>'
    )
    app.routes["/hold"] = '<Response><Play loop="0">https://example.com/m.mp3</Play></Response>'
    app.routes["/queue-result"] = "<Response><Say>Never heard</Say></Response>"
    caller = await fake.place_call(Caller(number=CALLER, script=Script(abandon_after_s=45)))
    await fake.wait_until(lambda: len(app.to("/hold")) == 1)
    clock.advance(30)
    await asyncio.sleep(0.05)
    assert not caller.ended.is_set()
    clock.advance(100)
    await ended(caller)

    result = app.one("/queue-result").params
    assert (result["QueueResult"], result["QueueTime"]) == ("hangup", "45")
    assert result["CallStatus"] == "completed"
    status = app.one("/status").params
    assert (status["CallStatus"], status["CallDuration"]) == ("completed", "45")
    assert status["CallbackSource"] == "call-progress-events"
    assert status["SequenceNumber"] == "0"
    assert status["Timestamp"].endswith("+0000")
    assert ("Say", "Never heard") not in caller.log
    assert fake.queue("q1").legs == []


async def test_leave_from_wait_gather_continues_with_record_and_transcription(
    app: TwimlApp, fake: FakeTwilioVoice, clock: ManualClock, rest: aiohttp.ClientSession
) -> None:
    app.routes["/voice"] = (
        '<Response><Enqueue action="/queue-result" waitUrl="/hold">q1</Enqueue></Response>'
    )
    app.routes["/hold"] = (
        '<Response><Gather numDigits="1" action="/hold-choice" timeout="60">'
        "<Say>Press 1 to leave a message</Say></Gather></Response>"
    )
    app.routes["/hold-choice"] = "<Response><Leave/></Response>"
    app.routes["/queue-result"] = (
        "<Response><Say>Leave a message after the tone</Say>"
        '<Record action="/recorded" maxLength="60" transcribe="true" '
        'transcribeCallback="/transcribed" recordingStatusCallback="/recording-status"/>'
        "</Response>"
    )
    app.routes["/recorded"] = "<Response><Say>Thank you</Say><Hangup/></Response>"
    app.routes["/transcribed"] = ""
    app.routes["/recording-status"] = ""
    script = Script(press_in_queue=(20, "1"), record_s=7, transcript="Please call me back")
    caller = await fake.place_call(Caller(number=CALLER, script=script))
    await fake.wait_until(lambda: logged(caller, "Gather"))
    clock.advance(20)
    await fake.wait_until(lambda: logged(caller, "Record"))
    clock.advance(7)
    await ended(caller)
    await fake.wait_until(
        lambda: bool(app.to("/transcribed")) and bool(app.to("/recording-status"))
    )

    assert app.one("/hold-choice").params["Digits"] == "1"
    result = app.one("/queue-result").params
    assert (result["QueueResult"], result["QueueTime"]) == ("leave", "20")
    recorded = app.one("/recorded").params
    sid = recorded["RecordingSid"]
    assert sid.startswith("RE")
    assert len(sid) == 34
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}"
    assert recorded["RecordingUrl"] == fake.base_url + path
    assert (recorded["RecordingDuration"], recorded["Digits"]) == ("7", "#")
    transcribed = app.one("/transcribed").params
    assert transcribed["TranscriptionText"] == "Please call me back"
    assert transcribed["TranscriptionStatus"] == "completed"
    assert transcribed["TranscriptionSid"].startswith("TR")
    assert transcribed["TranscriptionUrl"].startswith(fake.base_url)
    assert (transcribed["RecordingSid"], transcribed["CallSid"]) == (sid, caller.sid)
    assert transcribed["RecordingUrl"] == recorded["RecordingUrl"]
    assert app.one("/recording-status").params["RecordingStatus"] == "completed"
    assert caller.log[-2:] == [("Say", "Thank you"), ("Hangup", "")]

    async with rest.get(path) as resp:
        assert resp.status == 200
        assert resp.content_type == "audio/x-wav"
        with wave.open(io.BytesIO(await resp.read())) as audio:
            assert audio.getnframes() > 0
    async with rest.get(path + ".mp3") as resp:
        assert resp.status == 200
        assert resp.content_type == "audio/mpeg"
        assert (await resp.read())[:2] == b"\xff\xfb"
    async with rest.get(path + ".wav", headers=basic("wrong")) as resp:
        assert resp.status == 401
    async with rest.get(path.replace(sid, "RE" + "0" * 32)) as resp:
        assert resp.status == 404


async def test_caller_hanging_up_during_record_reports_digits_hangup(
    app: TwimlApp, fake: FakeTwilioVoice, clock: ManualClock
) -> None:
    app.routes["/voice"] = '<Response><Record action="/recorded"/><Say>Not heard</Say></Response>'
    app.routes["/recorded"] = "<Response><Say>Not heard either</Say></Response>"
    caller = await fake.place_call(
        Caller(number=CALLER, script=Script(record_s=4, record_end="hangup"))
    )
    await fake.wait_until(lambda: logged(caller, "Record"))
    clock.advance(4)
    await ended(caller)

    recorded = app.one("/recorded").params
    assert (recorded["Digits"], recorded["RecordingDuration"]) == ("hangup", "4")
    assert caller.log[-1][0] == "Record"


async def test_rest_redirect_moves_a_queued_caller_out_with_result_redirected(
    app: TwimlApp, fake: FakeTwilioVoice, clock: ManualClock, rest: aiohttp.ClientSession
) -> None:
    app.routes["/voice"] = (
        '<Response><Enqueue action="/queue-result" waitUrl="/hold">q1</Enqueue></Response>'
    )
    app.routes["/hold"] = '<Response><Pause length="60"/></Response>'
    app.routes["/queue-result"] = "<Response><Say>Ignored: redirected</Say></Response>"
    app.routes["/moved"] = "<Response><Say>Moved</Say></Response>"
    caller = await fake.place_call(Caller(number=CALLER))
    await fake.wait_until(lambda: len(fake.queue("q1").legs) == 1)
    clock.advance(12)
    url = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{caller.sid}.json"
    async with rest.post(url, data={"Url": app.url("/moved")}) as resp:
        assert resp.status == 200
        assert (await resp.json())["sid"] == caller.sid
    await ended(caller)

    result = app.one("/queue-result").params
    assert (result["QueueResult"], result["QueueTime"]) == ("redirected", "12")
    assert caller.log[-2:] == [("Redirected", app.url("/moved")), ("Say", "Moved")]
    async with rest.post(url, data={"Url": app.url("/moved")}) as resp:
        assert resp.status == 400
        assert (await resp.json())["code"] == 21220


# ---------------------------------------------------------------------------- REST errors
async def test_rest_create_rejects_bad_auth_missing_url_and_told_failures(
    app: TwimlApp, fake: FakeTwilioVoice, rest: aiohttp.ClientSession
) -> None:
    app.routes["/agent"] = "<Response><Hangup/></Response>"
    async with aiohttp.ClientSession(headers=basic("nope")) as bad:
        async with bad.post(fake.base_url + CALLS, data={"To": AGENT}) as resp:
            assert resp.status == 401
            assert (await resp.json())["code"] == 20003
        async with bad.post(fake.base_url + CALLS) as resp:
            assert resp.status == 401
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.post(fake.base_url + CALLS, data={"To": AGENT}) as resp,
    ):
        assert resp.status == 401

    status, body = await create_call(rest, To=AGENT, From=fake.number)
    assert (status, body["code"], body["status"]) == (400, 21205, 400)
    assert body["more_info"].endswith("/21205")

    fake.fail_next_create(503, 20503)
    status, body = await create_call(rest, To=AGENT, From=fake.number, Url=app.url("/agent"))
    assert (status, body["code"]) == (503, 20503)
    status, body = await create_call(rest, To=AGENT, From=fake.number, Url=app.url("/agent"))
    assert status == 201
    await ended(fake.legs[body["sid"]])
    assert len(fake.created) == 2
    assert fake.created[0]["failed"] == "503"
    assert fake.created[1]["sid"] == body["sid"]
    assert fake.created[1]["Url"] == app.url("/agent")
    agent_request = app.one("/agent").params
    assert (agent_request["Direction"], agent_request["CallStatus"]) == (
        "outbound-api",
        "in-progress",
    )


# ---------------------------------------------------------------------------- Dial
@pytest.mark.parametrize(("answer", "wait_s"), [("no-answer", 15), ("busy", 0)])
async def test_dial_number_that_is_not_answered_reports_dial_call_status(
    app: TwimlApp, fake: FakeTwilioVoice, clock: ManualClock, answer: Any, wait_s: int
) -> None:
    number = "+15557770000"
    app.routes["/voice"] = (
        f'<Response><Dial action="/dialed" timeout="15" callerId="{fake.number}">'
        f"<Number>{number}</Number></Dial></Response>"
    )
    app.routes["/dialed"] = "<Response><Say>Nobody there</Say></Response>"
    fake.callee = lambda to: Callee(answer) if to == number else Callee()
    caller = await fake.place_call(Caller(number=CALLER))
    await fake.wait_until(lambda: fake.leg_by_to(number) is not None)
    if wait_s:
        await asyncio.sleep(0.05)
        assert not app.to("/dialed")
        clock.advance(wait_s)
    await ended(caller)

    child = fake.leg_by_to(number)
    assert child is not None
    dialed = app.one("/dialed").params
    assert dialed["DialCallStatus"] == answer
    assert dialed["DialBridged"] == "false"
    assert dialed["DialCallSid"] == child.sid
    assert (child.direction, child.parent_sid, child.status) == (
        "outbound-dial",
        caller.sid,
        answer,
    )
    assert child.from_ == fake.number
    assert caller.log[-1] == ("Say", "Nobody there")
    assert fake.bridges == []


async def test_dial_number_answered_bridges_until_the_callee_hangs_up(
    app: TwimlApp, fake: FakeTwilioVoice, clock: ManualClock
) -> None:
    app.routes["/voice"] = '<Response><Dial action="/dialed">+15557770001</Dial></Response>'
    app.routes["/dialed"] = "<Response><Say>Back to you</Say></Response>"
    fake.callee = lambda to: Callee("answer", talk_s=12)
    caller = await fake.place_call(Caller(number=CALLER))
    await fake.wait_until(lambda: len(fake.bridges) == 1)
    clock.advance(12)
    await ended(caller)

    dialed = app.one("/dialed").params
    assert (dialed["DialCallStatus"], dialed["DialCallDuration"], dialed["DialBridged"]) == (
        "completed",
        "12",
        "true",
    )
    child = fake.legs[dialed["DialCallSid"]]
    await ended(child)
    assert child.status == "completed"
    assert child.duration == 12
    assert caller.log[-1] == ("Say", "Back to you")


async def test_dial_queue_with_nobody_waiting_times_out_as_no_answer(
    app: TwimlApp, fake: FakeTwilioVoice, clock: ManualClock, rest: aiohttp.ClientSession
) -> None:
    app.routes["/dial-done"] = "<Response/>"
    twiml = (
        f'<Response><Dial action="{app.url("/dial-done")}" timeout="10">'
        "<Queue>empty</Queue></Dial></Response>"
    )
    _, body = await create_call(rest, To=AGENT, From=fake.number, Twiml=twiml)
    agent = fake.legs[body["sid"]]
    await fake.wait_until(lambda: logged(agent, "Dial"))
    clock.advance(10)
    await ended(agent)

    done = app.one("/dial-done").params
    assert (done["DialCallStatus"], done["DialBridged"]) == ("no-answer", "false")


# ---------------------------------------------------------------------------- failures
@pytest.mark.parametrize(
    ("answer", "code"), [(None, "11200"), ("<Response><Say>unclosed</Response>", "12100")]
)
async def test_broken_twiml_answer_is_an_application_error_and_ends_the_call(
    app: TwimlApp, fake: FakeTwilioVoice, answer: str | None, code: str
) -> None:
    if answer is not None:
        app.routes["/voice"] = answer
    caller = await fake.place_call(Caller(number=CALLER))
    await ended(caller)

    assert len(fake.errors) == 1
    assert fake.errors[0].startswith(f"{caller.sid}: {code}")
    assert caller.log == [("Say", "We are sorry, an application error has occurred. Goodbye.")]
    assert app.one("/status").params["CallStatus"] == "completed"


async def test_reject_busy_ends_an_unanswered_call_as_busy(
    app: TwimlApp, fake: FakeTwilioVoice
) -> None:
    app.routes["/voice"] = '<Response><Reject reason="busy"/><Say>unreachable</Say></Response>'
    caller = await fake.place_call(Caller(number=CALLER))
    await ended(caller)

    status = app.one("/status").params
    assert (status["CallStatus"], status["CallDuration"]) == ("busy", "0")
    assert caller.answered_at is None
    assert app.one("/voice").params["CallStatus"] == "ringing"


# ---------------------------------------------------------------------------- callbacks
@pytest.mark.parametrize("order", ["ordered", "shuffled", "duplicated"])
async def test_status_callbacks_follow_the_requested_events_and_delivery_order(
    app: TwimlApp,
    fake: FakeTwilioVoice,
    clock: ManualClock,
    rest: aiohttp.ClientSession,
    order: Any,
) -> None:
    app.routes["/agent-status"] = ""
    fake.status_order = order
    _, body = await create_call(
        rest,
        To="+15557770002",
        From=fake.number,
        Twiml='<Response><Pause length="5"/></Response>',
        StatusCallback=app.url("/agent-status?leg=agent"),
        StatusCallbackEvent=["initiated", "ringing", "answered", "completed"],
    )
    leg = fake.legs[body["sid"]]
    assert fake.created[0]["StatusCallbackEvent"] == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]
    await fake.wait_until(lambda: logged(leg, "Pause"))
    clock.advance(5)
    await ended(leg)

    hits = app.to("/agent-status")
    assert all(h.params["CallSid"] == leg.sid for h in hits)
    got = [(h.params["SequenceNumber"], h.params["CallStatus"]) for h in hits]
    expected = [("0", "initiated"), ("1", "ringing"), ("2", "in-progress"), ("3", "completed")]
    if order == "ordered":
        assert got == expected
    elif order == "shuffled":
        assert sorted(got) == expected
        assert got != expected
    else:
        assert got == [e for e in expected for _ in range(2)]
    final = next(h.params for h in hits if h.params["CallStatus"] == "completed")
    assert (final["CallDuration"], final["Duration"], final["SipResponseCode"]) == ("5", "1", "200")
    assert "CallDuration" not in hits[0].params or hits[0].params["CallStatus"] == "completed"
