"""X-Twilio-Signature: our simulator's signing and twilio's RequestValidator agree."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl, urlencode

from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import RequestValidator

from channels.twilio_sms.const import PATH_INBOUND, SIGNATURE_HEADER
from channels.twilio_sms.testing.simulator import compute_signature, sign_body, signed_inbound
from tests.channels.twilio_sms.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_URL,
    fixture_body,
    fixture_params,
)

URL = PUBLIC_URL + PATH_INBOUND


def _valid(params: list[tuple[str, str]], signature: str, token: str = AUTH_TOKEN) -> bool:
    return bool(RequestValidator(token).validate(URL, MultiDictProxy(MultiDict(params)), signature))


def test_worked_example_from_twilio_docs() -> None:
    url = "https://example.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675310",
        "Digits": "1234",
        "From": "+14158675310",
        "To": "+18005551212",
    }
    expected = "L/OH5YylLD5NRKLltdqwSvS0BnU="
    assert compute_signature(url, params.items(), "12345") == expected
    assert RequestValidator("12345").compute_signature(url, params) == expected
    assert RequestValidator("12345").validate(url, params, expected)


def test_signed_fixture_validates() -> None:
    headers = sign_body(URL, fixture_body("inbound__sms_plain"), AUTH_TOKEN)
    assert _valid(fixture_params("inbound__sms_plain"), headers[SIGNATURE_HEADER])


def test_tampered_body_fails() -> None:
    headers = sign_body(URL, fixture_body("inbound__sms_plain"), AUTH_TOKEN)
    tampered = [
        (k, "Please refund me $500" if k == "Body" else v)
        for k, v in fixture_params("inbound__sms_plain")
    ]
    assert not _valid(tampered, headers[SIGNATURE_HEADER])


def test_wrong_token_fails() -> None:
    headers = sign_body(URL, fixture_body("inbound__sms_plain"), "not-the-token")
    assert not _valid(fixture_params("inbound__sms_plain"), headers[SIGNATURE_HEADER])


def test_blank_parameters_are_part_of_the_signature() -> None:
    params = fixture_params("inbound__sms_plain")
    assert any(v == "" for _, v in params)
    headers = sign_body(URL, fixture_body("inbound__sms_plain"), AUTH_TOKEN)
    # A framework that drops blank fields (FromCity=, ToZip=...) breaks validation.
    without_blanks = [(k, v) for k, v in params if v != ""]
    assert not _valid(without_blanks, headers[SIGNATURE_HEADER])
    assert _valid(params, headers[SIGNATURE_HEADER])


def test_parameter_order_is_irrelevant() -> None:
    params = fixture_params("inbound__mms_two_media")
    shuffled = params[:]
    random.Random(7).shuffle(shuffled)
    assert shuffled != params
    one = compute_signature(URL, params, AUTH_TOKEN)
    other = sign_body(URL, urlencode(shuffled).encode(), AUTH_TOKEN)[SIGNATURE_HEADER]
    assert one == other
    assert _valid(shuffled, one)


def test_sorting_is_case_sensitive_code_point_order() -> None:
    # "To" < "ToCity" and every capitalised name sorts before a lower-case one.
    params = [("msg", "a"), ("ToCity", "b"), ("To", "c"), ("Body", "d")]
    sig = compute_signature("https://x.test/hook", params, "k")
    assert sig == RequestValidator("k").compute_signature("https://x.test/hook", dict(params))


def test_signature_covers_the_url_query_string() -> None:
    params = fixture_params("inbound__sms_plain")
    sig = compute_signature(URL + "?tenant=a", params, AUTH_TOKEN)
    validator = RequestValidator(AUTH_TOKEN)
    assert validator.validate(URL + "?tenant=a", MultiDictProxy(MultiDict(params)), sig)
    assert not validator.validate(URL + "?tenant=b", MultiDictProxy(MultiDict(params)), sig)


def test_simulator_builds_real_shaped_shuffled_signed_bodies() -> None:
    body, headers = signed_inbound(
        PUBLIC_URL,
        AUTH_TOKEN,
        ACCOUNT_SID,
        from_="+447700900123",
        to="+14155550100",
        body="Hello there + welcome",
        rng=random.Random(3),
    )
    text = body.decode()
    assert "Body=Hello+there+%2B+welcome" in text
    assert "FromCity=&" in text or text.endswith("FromCity=")
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    params = parse_qsl(text, keep_blank_values=True)
    assert _valid(params, headers[SIGNATURE_HEADER])
