"""Asking Twilio whether a send whose answer was lost got through (``find_sent``), against the
fake's Messages list, which pages and filters as Twilio's does."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from channels.twilio_sms.adapter import TwilioMessagingAdapter, create
from channels.twilio_sms.const import RECONCILE_MAX_PAGES, RECONCILE_PAGE_SIZE
from channels.twilio_sms.reconcile import UncertainSends, UnreadableList, parse_page
from channels.twilio_sms.testing.fake_api import FakeTwilio
from contract.channel import ChannelContext, OutboundMessage, SendReconciler
from contract.errors import ChannelError
from tests.channels.twilio_sms.conftest import (
    ACCOUNT_SID,
    FIXTURES,
    RecordingHub,
    twilio_settings,
)

CUSTOMER = "+447700900123"
OUR_NUMBER = "+14155550100"
SERVICE = "MG5f4e3d2c1b0a99887766554433221100"
TEXT = "Your refund was issued today."


class KnowingHub(RecordingHub):
    """A hub port that has already recorded some sids as sent messages of ours."""

    def __init__(self, recorded: set[str]) -> None:
        super().__init__()
        self.recorded = recorded
        self.asked: list[str] = []

    async def sent_message_exists(self, *, channel: str, provider_id: str) -> bool:
        self.asked.append(provider_id)
        return provider_id in self.recorded


def _adapter(
    base: str, http: aiohttp.ClientSession, hub: RecordingHub | None = None, **settings: Any
) -> TwilioMessagingAdapter:
    ctx = ChannelContext(
        settings=twilio_settings(twilio_api_base=base, **settings),
        hub=hub or RecordingHub(),
        http=lambda: http,
    )
    adapter = create(ctx)
    assert adapter is not None
    return adapter


def _out(**kw: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "message_id": 41,
        "conversation_id": 7,
        "channel": "sms",
        "to": CUSTOMER,
        "sender": OUR_NUMBER,
        "text": TEXT,
        "idempotency_key": "hub-msg-41",
    }
    values.update(kw)
    return OutboundMessage(**values)


def _ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


# ---------------------------------------------------------------------- the list's wire format


def test_a_page_of_the_list_reads_as_twilio_writes_it() -> None:
    page = parse_page(json.loads((FIXTURES / "list__messages_page.json").read_text()))
    queued, with_media, older = page.messages
    assert queued.sid == "SM0c1b2a39485766a5b4c3d2e1f0a9b8c7"
    assert (queued.to, queued.from_, queued.body) == (CUSTOMER, OUR_NUMBER, TEXT)
    assert queued.status == "queued"
    assert queued.date_sent is None
    assert queued.date_created == datetime(2024, 5, 14, 9, 31, 5, tzinfo=UTC)
    assert (with_media.num_media, with_media.error_code) == (1, "30007")
    assert with_media.messaging_service_sid == SERVICE
    assert older.date_sent == datetime(2024, 5, 14, 9, 2, 17, tzinfo=UTC)
    assert page.next_page_uri is not None
    assert page.next_page_uri.endswith("&Page=1&PageToken=PASM1f2e3d4c5b6a79880716253443526170")


@pytest.mark.parametrize(
    "body",
    [{"code": 20404}, {"messages": {"sid": "SM1"}}, {"messages": [{"body": "no sid"}]}, []],
)
def test_an_answer_that_is_no_page_of_the_list_is_refused(body: Any) -> None:
    with pytest.raises(UnreadableList):
        parse_page(body)


def test_the_adapter_is_a_send_reconciler() -> None:
    ctx = ChannelContext(settings=twilio_settings(), hub=RecordingHub(), http=aiohttp.ClientSession)
    assert isinstance(create(ctx), SendReconciler)


# ---------------------------------------------------------------------- found / not found


async def test_a_send_twilio_already_has_is_found_and_not_sent_twice(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    adapter = _adapter(base, http)
    since = datetime.now(UTC)
    first = await adapter.send(_out())  # Twilio took it; the answer was lost on our side

    found = await adapter.find_sent(_out(), since=since)

    assert found is not None
    assert found.provider_id == first.provider_id
    assert found.status == "queued"  # not handed to the carrier yet: no date_sent
    assert found.metadata == {"reconciled": True}
    assert len(fake.sent) == 1
    [query] = fake.list_requests
    assert query == {"To": CUSTOMER, "From": OUR_NUMBER, "PageSize": str(RECONCILE_PAGE_SIZE)}


async def test_a_send_twilio_lacks_is_not_found_and_the_send_goes_ahead(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    adapter = _adapter(base, http)
    fake.add_message(to=CUSTOMER, from_=OUR_NUMBER, body="An earlier answer.", created=_ago(30))
    since = _ago(5)

    assert await adapter.find_sent(_out(), since=since) is None

    # What the outbox does next: the one send that reaches Twilio.
    receipt = await adapter.send(_out())
    [sent] = fake.sent
    assert (sent["sid"], sent["Body"]) == (receipt.provider_id, TEXT)
    found = await adapter.find_sent(_out(), since=since)
    assert found is not None
    assert found.provider_id == receipt.provider_id


async def test_the_status_is_twilios_current_one_with_its_error(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    sid = fake.add_message(
        to=CUSTOMER,
        from_=OUR_NUMBER,
        body=TEXT,
        created=_ago(20),
        sent=_ago(19),
        status="undelivered",
        error_code=30003,
    )
    found = await _adapter(base, http).find_sent(_out(), since=_ago(25))
    assert found is not None
    assert (found.provider_id, found.status) == (sid, "undelivered")
    assert found.metadata == {"reconciled": True, "error_code": "30003"}


async def test_a_match_on_the_second_page_is_found(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    since = _ago(600)
    ours = fake.add_message(
        to=CUSTOMER, from_=OUR_NUMBER, body=TEXT, created=_ago(590), sent=_ago(589)
    )
    for n in range(RECONCILE_PAGE_SIZE + 10):  # a busy conversation went on afterwards
        fake.add_message(
            to=CUSTOMER,
            from_=OUR_NUMBER,
            body=f"later {n}",
            created=_ago(500 - n),
            sent=_ago(499 - n),
        )

    found = await _adapter(base, http).find_sent(_out(), since=since)

    assert found is not None
    assert found.provider_id == ours
    first, second = fake.list_requests
    assert "PageToken" not in first
    assert second["PageToken"].startswith("PA")
    assert (second["To"], second["From"], second["Page"]) == (CUSTOMER, OUR_NUMBER, "1")


async def test_at_most_the_configured_number_of_pages_is_read(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    since = _ago(3600)
    fake.add_message(to=CUSTOMER, from_=OUR_NUMBER, body=TEXT, created=_ago(3500), sent=_ago(3500))
    for n in range(RECONCILE_PAGE_SIZE * RECONCILE_MAX_PAGES):
        fake.add_message(
            to=CUSTOMER,
            from_=OUR_NUMBER,
            body=f"later {n}",
            created=_ago(3000 - n),
            sent=_ago(3000 - n),
        )

    assert await _adapter(base, http).find_sent(_out(), since=since) is None
    assert len(fake.list_requests) == RECONCILE_MAX_PAGES


# ---------------------------------------------------------------------- what is not a match


@pytest.mark.parametrize(
    ("case", "listed"),
    [
        ("another body", {"body": TEXT + " "}),
        ("older than the attempt", {"age_s": 70}),
        ("another sender", {"from_": "+14155550199"}),
        ("with media", {"num_media": 1}),
        ("a TwiML reply", {"direction": "outbound-reply"}),
    ],
)
async def test_a_near_match_is_not_our_message(
    fake_twilio: tuple[FakeTwilio, str],
    http: aiohttp.ClientSession,
    case: str,
    listed: dict[str, Any],
) -> None:
    fake, base = fake_twilio
    values: dict[str, Any] = {"to": CUSTOMER, "from_": OUR_NUMBER, "body": TEXT, "age_s": 10}
    near = {**values, **listed}
    age = near.pop("age_s")
    fake.add_message(**near, created=_ago(age), sent=_ago(age - 1))
    assert await _adapter(base, http).find_sent(_out(), since=_ago(60)) is None, case
    # The same message without the difference is found: the case alone made it no match.
    age = values.pop("age_s")
    fake.add_message(**values, created=_ago(age), sent=_ago(age - 1))
    assert await _adapter(base, http).find_sent(_out(), since=_ago(60)) is not None


async def test_time_is_compared_to_twilios_second(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    since = datetime.now(UTC).replace(microsecond=900_000) - timedelta(seconds=30)
    # Twilio dates the message in the second the attempt began (it cannot say .9).
    sid = fake.add_message(to=CUSTOMER, from_=OUR_NUMBER, body=TEXT, created=since)
    found = await _adapter(base, http).find_sent(_out(), since=since)
    assert found is not None
    assert found.provider_id == sid
    # A minute before the attempt is an earlier message with the same text, never this one.
    assert await _adapter(base, http).find_sent(_out(), since=since + timedelta(seconds=60)) is None


async def test_an_identical_text_the_hub_already_recorded_is_another_message(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    earlier = fake.add_message(to=CUSTOMER, from_=OUR_NUMBER, body="OK", created=_ago(20))
    lost = fake.add_message(to=CUSTOMER, from_=OUR_NUMBER, body="OK", created=_ago(10))
    hub = KnowingHub({earlier})
    found = await _adapter(base, http, hub).find_sent(_out(text="OK"), since=_ago(30))
    assert found is not None
    assert found.provider_id == lost
    assert hub.asked == [earlier, lost]


# ---------------------------------------------------------------------- senders and media


async def test_a_messaging_service_send_is_matched_on_the_service(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    adapter = _adapter(base, http)
    fake.add_message(  # the same text from the same number, but not through our service
        to=CUSTOMER, from_=OUR_NUMBER, body=TEXT, created=_ago(5)
    )
    assert await adapter.find_sent(_out(sender=SERVICE), since=_ago(10)) is None
    sid = fake.add_message(
        to=CUSTOMER, from_=OUR_NUMBER, messaging_service_sid=SERVICE, body=TEXT, created=_ago(4)
    )
    found = await adapter.find_sent(_out(sender=SERVICE), since=_ago(10))
    assert found is not None
    assert found.provider_id == sid
    # The service picks the number: the list is filtered by recipient only.
    assert all("From" not in q for q in fake.list_requests)


async def test_whatsapp_is_matched_with_its_prefixes(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    adapter = _adapter(base, http)
    out = _out(channel="whatsapp", sender="whatsapp:+14155238886")
    receipt = await adapter.send(out)
    found = await adapter.find_sent(out, since=_ago(5))
    assert found is not None
    assert found.provider_id == receipt.provider_id
    [query] = fake.list_requests
    assert (query["To"], query["From"]) == (f"whatsapp:{CUSTOMER}", "whatsapp:+14155238886")


async def test_media_sends_match_on_body_and_number_of_media(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    adapter = _adapter(base, http)
    urls = ("https://cdn.example.com/label.png", "https://cdn.example.com/receipt.pdf")
    two = _out(text="The label and the receipt.", options={"media_urls": urls})
    one = _out(text="The label and the receipt.", options={"media_urls": urls[:1]})
    receipt = await adapter.send(two)
    assert await adapter.find_sent(one, since=_ago(5)) is None
    found = await adapter.find_sent(two, since=_ago(5))
    assert found is not None
    assert found.provider_id == receipt.provider_id
    assert len(fake.sent) == 1


async def test_a_template_send_is_not_looked_for(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    adapter = _adapter(base, http)
    out = _out(
        channel="whatsapp",
        sender="whatsapp:+14155238886",
        options={"template_sid": "HX" + "1" * 32},
    )
    await adapter.send(out)
    # Twilio stores the text it rendered from the template; we cannot compare it.
    assert await adapter.find_sent(out, since=_ago(5)) is None
    assert fake.list_requests == []


async def test_a_closed_whatsapp_window_does_not_stop_the_lookup(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    sid = fake.add_message(
        to=f"whatsapp:{CUSTOMER}", from_="whatsapp:+14155238886", body=TEXT, created=_ago(5)
    )
    # The attempt went out inside the 24 h window; the window closed before we asked.
    late = _out(
        channel="whatsapp",
        sender="whatsapp:+14155238886",
        options={"last_inbound_at": _ago(25 * 3600).isoformat()},
    )
    with pytest.raises(ChannelError):
        await _adapter(base, http).send(late)
    found = await _adapter(base, http).find_sent(late, since=_ago(10))
    assert found is not None
    assert found.provider_id == sid


# ---------------------------------------------------------------------- Twilio cannot say


async def test_a_failing_list_is_a_retryable_error(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    fake.list_fail_next = 1
    with pytest.raises(ChannelError) as info:
        await _adapter(base, http).find_sent(_out(), since=_ago(5))
    assert info.value.retryable
    assert "503" in str(info.value)
    assert fake.sent == []


async def test_refused_credentials_are_retryable_when_only_asking(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    _, base = fake_twilio
    adapter = _adapter(base, http, twilio_auth_token="not-the-token")
    with pytest.raises(ChannelError) as info:
        await adapter.find_sent(_out(), since=_ago(5))
    assert info.value.retryable
    assert info.value.code == "20003"


async def test_an_unreachable_twilio_is_a_retryable_error(http: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = _adapter(f"http://127.0.0.1:{port}", http)
    with pytest.raises(ChannelError) as info:
        await adapter.find_sent(_out(), since=_ago(5))
    assert info.value.retryable


@pytest.mark.parametrize(
    "elsewhere",
    [
        f"https://collector.example/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?Page=1",
        f"//collector.example/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?Page=1",
        "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json?Page=1",
    ],
)
async def test_a_next_page_elsewhere_is_never_followed(
    http: aiohttp.ClientSession, elsewhere: str
) -> None:
    asked: list[str] = []

    async def page(request: web.Request) -> web.Response:
        asked.append(str(request.rel_url))
        return web.json_response(
            {
                "messages": [],
                "next_page_uri": elsewhere,
                "page": 0,
                "page_size": 50,
            }
        )

    app = web.Application()
    app.router.add_get("/2010-04-01/Accounts/{account}/Messages.json", page)
    async with TestServer(app, host="127.0.0.1") as server:
        adapter = _adapter(str(server.make_url("")).rstrip("/"), http)
        with pytest.raises(ChannelError, match="unexpected next page") as info:
            await adapter.find_sent(_out(), since=_ago(5))
    assert info.value.retryable
    assert len(asked) == 1


# ---------------------------------------------------------------------- the fake's list


async def test_the_fakes_date_filter_is_whole_days_and_skips_unsent(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    today = datetime.now(UTC)
    sent_today = fake.add_message(to=CUSTOMER, from_=OUR_NUMBER, body="a", sent=today)
    fake.add_message(to=CUSTOMER, from_=OUR_NUMBER, body="b", sent=None)
    fake.add_message(
        to=CUSTOMER,
        from_=OUR_NUMBER,
        body="c",
        created=today - timedelta(2),
        sent=today - timedelta(2),
    )
    url = f"{base}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    # As a client writes it on the wire: DateSent>=YYYY-MM-DD (the key is "DateSent>").
    query = f"?To=%2B447700900123&DateSent>={today:%Y-%m-%d}"
    auth = {"Authorization": aiohttp.encode_basic_auth(fake.account_sid, fake.auth_token)}
    async with http.get(url + query, headers=auth) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert [m["sid"] for m in body["messages"]] == [sent_today]
    assert body["next_page_uri"] is None


# ---------------------------------------------------------------------- this process's retries


async def test_a_send_whose_answer_was_lost_is_looked_for_before_the_retry(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    adapter = _adapter(base, http)
    fake.lose_answer_next = 1
    with pytest.raises(ChannelError) as info:
        await adapter.send(_out())
    assert info.value.retryable
    [taken] = fake.sent  # Twilio has it; we do not know

    receipt = await adapter.send(_out())  # the outbox's retry

    assert receipt.provider_id == taken["sid"]
    assert receipt.metadata == {"reconciled": True}
    assert len(fake.sent) == 1
    assert len(fake.list_requests) == 1
    # Settled: a later send of the same message would simply go out.
    assert adapter.uncertain.began("hub-msg-41") is None


async def test_a_retry_after_a_500_looks_first_and_then_sends(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    adapter = _adapter(base, http)
    fake.fail_next, fake.fail_status = 1, 500
    with pytest.raises(ChannelError):
        await adapter.send(_out())
    receipt = await adapter.send(_out())
    [sent] = fake.sent
    assert sent["sid"] == receipt.provider_id
    assert len(fake.list_requests) == 1  # asked once, found nothing, sent


@pytest.mark.parametrize("status", [429, 503])
async def test_a_refusal_that_took_nothing_is_retried_without_looking(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession, status: int
) -> None:
    fake, base = fake_twilio
    adapter = _adapter(base, http)
    fake.fail_next, fake.fail_status = 1, status
    with pytest.raises(ChannelError):
        await adapter.send(_out())
    await adapter.send(_out())
    assert len(fake.sent) == 1
    assert fake.list_requests == []


async def test_a_retry_looks_while_twilio_cannot_be_asked_and_never_sends_blind(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    adapter = _adapter(base, http)
    fake.lose_answer_next = 1
    with pytest.raises(ChannelError):
        await adapter.send(_out())
    fake.list_fail_next = 1
    with pytest.raises(ChannelError) as info:
        await adapter.send(_out())
    assert info.value.retryable
    assert len(fake.sent) == 1
    receipt = await adapter.send(_out())
    assert receipt.provider_id == fake.sent[0]["sid"]
    assert len(fake.sent) == 1


async def test_a_connection_never_made_leaves_nothing_uncertain(
    http: aiohttp.ClientSession,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = _adapter(f"http://127.0.0.1:{port}", http)
    with pytest.raises(ChannelError) as info:
        await adapter.send(_out())
    assert info.value.retryable
    assert adapter.uncertain.began("hub-msg-41") is None


def test_uncertain_sends_keep_the_first_start_and_a_bounded_number() -> None:
    sends = UncertainSends(keep=2)
    first = _ago(30)
    sends.add("a", first)
    sends.add("a", _ago(5))
    assert sends.began("a") == first
    sends.add("b", _ago(4))
    sends.add("c", _ago(3))
    assert sends.began("a") is None  # the oldest remembered went first
    assert sends.began("b") is not None
    assert sends.began("c") is not None
    sends.settle("b")
    assert sends.began("b") is None
