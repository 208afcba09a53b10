"""Parsing real-shaped .eml fixtures into ParsedEmail: people, ids, bodies, charsets, kinds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from channels.email.charset import decode_bytes, decode_header_value
from channels.email.payloads import ParsedEmail, parse_email

FIXTURES = Path(__file__).parent / "fixtures"
FIRST_ID = "CAF7kQx3p0aT1wM+q7nU2e=Yb0dH8k@mail.example.org"
SECOND_ID = "CAF7kQx0Zt9hR4sLm2w=Qp8jX5cV1n@mail.example.org"
HUB_17 = "hub.17.3f9a0c1d@support.example.com"
HUB_18 = "hub.18.b27e4410@support.example.com"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str, **kwargs: object) -> ParsedEmail:
    return parse_email(raw(name), **kwargs)  # type: ignore[arg-type]


def test_every_fixture_parses_without_defects_that_lose_the_sender() -> None:
    names = sorted(p.name for p in FIXTURES.glob("*.eml"))
    assert len(names) >= 19
    for name in names:
        parsed = parse(name)
        assert parsed.message_id
        assert "<" not in parsed.message_id
        assert ">" not in parsed.message_id
        assert parsed.customer is not None, name


# ---------------------------------------------------------------------- threading
def test_first_mail_of_a_thread_has_no_references_and_prefers_the_plain_body() -> None:
    parsed = parse("thread_1_first.eml")
    assert parsed.message_id == FIRST_ID
    assert parsed.thread_refs == ()
    assert parsed.thread_root == FIRST_ID
    assert parsed.kind == "message"
    assert parsed.text.startswith("Hello,\n\nmy order 4471 (the blue ceramic teapot)")
    assert "<div" not in parsed.text  # one body, not both alternatives
    assert parsed.html is not None
    assert "cracked lid" in parsed.html
    assert parsed.subject == "Order 4471 arrived damaged"
    assert parsed.date == datetime(2025, 3, 3, 9, 13, 55, tzinfo=UTC)


def test_replies_carry_in_reply_to_and_every_reference_in_order() -> None:
    second = parse("thread_2_reply.eml")
    assert second.in_reply_to == (HUB_17,)
    assert second.references == (FIRST_ID, HUB_17)
    assert second.thread_refs == (FIRST_ID, HUB_17)
    third = parse("thread_3_reply.eml")
    assert third.references == (FIRST_ID, HUB_17, SECOND_ID, HUB_18)
    assert third.thread_refs[-1] == HUB_18
    assert third.thread_root == FIRST_ID


def test_reply_with_references_only_still_has_thread_refs() -> None:
    parsed = parse("reply_references_only.eml")
    assert parsed.in_reply_to == ()
    assert parsed.thread_refs == (FIRST_ID, HUB_17)
    assert parsed.text.endswith("-- \nAlice")


def test_reply_all_by_another_person_keeps_the_thread_and_lists_cc() -> None:
    parsed = parse("reply_all_other_participant.eml")
    assert parsed.customer is not None
    assert parsed.customer.address == "bob.chen@example.org"
    assert parsed.thread_refs == (FIRST_ID, HUB_17, SECOND_ID)
    assert [a.address for a in parsed.cc] == ["alice@example.org", "warehouse@example.org"]
    assert parsed.cc[1].display_name == "Warehouse Team"
    assert parsed.to[0].address == "reply+3f9a0c1d2e4b5a6c7d8e@support.example.com"


# ---------------------------------------------------------------------- classification
def test_out_of_office_is_an_auto_reply_that_must_not_be_answered() -> None:
    parsed = parse("auto_reply_ooo.eml")
    assert parsed.kind == "auto_reply"
    assert parsed.auto_submitted == "auto-replied"
    assert parsed.suppress_auto_reply
    assert parsed.thread_refs == (FIRST_ID, HUB_18)
    assert parsed.text.startswith("I am out of the office until 10 March")
    assert "urgent matters" in parsed.text  # soft line break of quoted-printable joined


def test_x_autoreply_marks_an_auto_reply_even_without_auto_submitted() -> None:
    parsed = parse("auto_reply_unthreaded.eml")
    assert parsed.kind == "auto_reply"
    assert parsed.thread_refs == ()


def test_auto_submitted_no_is_a_person() -> None:
    data = raw("thread_1_first.eml").replace(b"MIME-Version", b"Auto-Submitted: no\nMIME-Version")
    assert parse_email(data).kind == "message"


def test_newsletter_is_bulk_and_never_answered() -> None:
    parsed = parse("newsletter_list_id.eml")
    assert parsed.kind == "bulk"
    assert parsed.list_id == "Kitchen Weekly <kitchenweekly.news.list-id.mcsv.example>"
    assert parsed.precedence == "bulk"
    assert parsed.suppress_auto_reply
    assert parsed.subject == "10 teapots you’ll love this spring"
    assert parsed.text.startswith("Spring is here!")


def test_null_sender_mail_is_automatic_from_envelope_or_return_path() -> None:
    from_header = parse("null_sender_notification.eml")
    assert from_header.null_sender
    assert from_header.kind == "auto_reply"
    assert from_header.suppress_auto_reply
    envelope = parse_email(raw("thread_1_first.eml"), mail_from="<>")
    assert envelope.null_sender
    assert envelope.kind == "auto_reply"
    person = parse_email(raw("null_sender_notification.eml"), mail_from="cal@example.org")
    assert not person.null_sender


def test_dsn_bounce_names_the_failed_recipient_status_and_original_message() -> None:
    parsed = parse("bounce_dsn.eml")
    assert parsed.kind == "bounce"
    assert parsed.bounce is not None
    assert parsed.bounce.original_message_id == "hub.42.7c1e9f0a5b3d@support.example.com"
    assert parsed.bounce.reporting_mta == "mx.example.net"
    (failure,) = parsed.bounce.recipients
    assert failure.recipient == "nobody@example.net"
    assert failure.action == "failed"
    assert failure.status == "5.1.1"
    assert failure.permanent
    assert failure.diagnostic.startswith("550 5.1.1 <nobody@example.net>: Recipient address")
    assert "User unknown in virtual mailbox table" in failure.diagnostic
    assert parsed.attachments == ()


def test_dsn_with_the_original_as_message_rfc822_and_a_delay_is_not_permanent() -> None:
    data = (
        raw("bounce_dsn.eml")
        .replace(b"Content-Type: text/rfc822-headers", b"Content-Type: message/rfc822")
        .replace(b"Action: failed", b"Action: delayed")
        .replace(b"Status: 5.1.1", b"Status: 4.4.1")
    )
    bounce = parse_email(data).bounce
    assert bounce is not None
    assert bounce.original_message_id == "hub.42.7c1e9f0a5b3d@support.example.com"
    assert bounce.recipients[0].status == "4.4.1"
    assert not bounce.recipients[0].permanent


# ---------------------------------------------------------------------- charsets
def test_gb2312_label_with_gbk_only_characters_decodes_as_gb18030() -> None:
    parsed = parse("gb2312_labelled_gbk.eml")
    assert parsed.subject == "订单88231未收到（王堃）"
    assert parsed.customer is not None
    assert parsed.customer.display_name == "王堃"
    assert parsed.text == (
        "您好：\n我在贵店购买的电饭煲（订单号 88231）至今未收到，物流信息停在三天前。\n"
        "朱镕基先生推荐的这家店，我一直很信任。请尽快帮我查询。\n\n王堃"
    )
    assert "\ufffd" not in parsed.text


def test_iso_8859_1_label_with_windows_1252_bytes_decodes_as_cp1252() -> None:
    parsed = parse("cp1252_labelled_latin1.eml")
    assert parsed.text == (
        "Hi,\n\nI was charged €49.99 twice for order 5512 – the “premium” plan.\n"
        "Could you refund one of the payments?\n\nThanks,\nRené Dubois"
    )
    assert parsed.subject == "Charged twice – € 49.99"
    assert parsed.customer is not None
    assert parsed.customer.display_name == "René Dubois"


def test_quoted_printable_flowed_text_is_decoded_and_unflowed() -> None:
    parsed = parse("quoted_printable.eml")
    assert parsed.subject == "Rechnung Nr. 2025-0193 – falscher Betrag"
    assert "149,00 €, bestellt und bestätigt waren aber 129,00 €." in parsed.text
    assert "(Formel: Summe = Menge × Preis)" in parsed.text
    assert parsed.text.endswith("Mit freundlichen Grüßen\nJürgen und Jana Weber")


def test_raw_utf8_headers_stay_intact() -> None:
    parsed = parse("raw_utf8_headers.eml")
    assert parsed.subject == "Lieferung für Bestellung 7781 – Grüße aus Köln 你好"
    assert parsed.customer is not None
    assert parsed.customer.display_name == "Jürgen Müller-Lüdenscheidt"
    assert parsed.customer.address == "jurgen@example.de"
    assert parsed.text == "Hallo, wann wird meine Bestellung 7781 geliefert? Viele Grüße, Jürgen"


def test_encoded_words_in_subject_and_names_are_decoded() -> None:
    parsed = parse("encoded_word_subject.eml")
    # Whitespace between adjacent encoded-words is dropped (RFC 2047 §6.2).
    assert parsed.subject == "Rückfrage zur Bestellung „Teekanne Inga“ 🍵 dringend"
    assert parsed.customer is not None
    assert parsed.customer.display_name == "Müller, Jürgen"  # comma inside the encoded-word
    assert parsed.customer.address == "juergen.mueller@example.at"
    assert [(a.address, a.display_name) for a in parsed.cc] == [("andre@example.at", "André Pirlo")]
    assert parsed.text == "Hallo, kommt die Teekanne „Inga“ noch diese Woche? Danke!"


@pytest.mark.parametrize(
    ("data", "label", "expected"),
    [
        ("堃".encode("gb18030"), "gb2312", "堃"),
        ("“x”".encode("cp1252"), "iso-8859-1", "“x”"),
        ("é".encode(), "us-ascii", "é"),
        ("é".encode("cp1252"), "us-ascii", "é"),
        ("é".encode(), "x-unknown-charset", "é"),
        ("é".encode("cp1252"), "x-unknown-charset", "é"),
        (b"\x81\x8d", "windows-1252", "\x81\x8d"),
        ("한국".encode("cp949"), "ks_c_5601-1987", "한국"),
        (b"plain", None, "plain"),
    ],
)
def test_charset_labels_are_read_the_way_mail_clients_read_them(
    data: bytes, label: str | None, expected: str
) -> None:
    assert decode_bytes(data, label) == expected


def test_encoded_words_split_inside_a_character_are_joined() -> None:
    word = "Grüße".encode()
    left, right = word[:3], word[3:]  # splits the two bytes of "ü"
    value = f"=?utf-8?B?{_b64(left)}?= =?utf-8?B?{_b64(right)}?="
    assert decode_header_value(value) == "Grüße"


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


# ---------------------------------------------------------------------- html
def test_html_only_mail_becomes_readable_text_and_inert_html() -> None:
    parsed = parse("html_only.eml")
    assert parsed.text.startswith("Hello,\n\nsince yesterday I cannot log in – the page says")
    assert '"account locked".\nMy username is mrossi.' in parsed.text
    assert "- Browser: Firefox\n- Tried: password reset" in parsed.text
    assert "my notes <https://example.it/help>" in parsed.text
    assert "Marco\u00a0Rossi" not in parsed.text
    assert "Marco Rossi" in parsed.text
    assert "document.cookie" not in parsed.text
    assert "font-family" not in parsed.text
    html = parsed.html
    assert html is not None
    lowered = html.lower()
    for banned in ("<script", "<style", "<iframe", "<object", "onload", "onclick", "javascript:"):
        assert banned not in lowered
    assert "src=" not in lowered
    assert "url(" not in lowered
    assert "style=" not in lowered
    assert "track.example.it" not in html
    assert "evil.example" not in html
    assert '<a href="https://example.it/help" rel="noopener noreferrer nofollow"' in html
    assert "[Rossi Logo]" in html
    assert parsed.blocked_remote_content == 2


# ---------------------------------------------------------------------- attachments
def test_rfc2231_continuations_and_encoded_word_names_give_the_real_filenames() -> None:
    parsed = parse("rfc2231_attachment_name.eml")
    assert parsed.text == "Anbei die Rechnung und das Foto der Quittung.\n\nJana"
    pdf, jpeg = parsed.attachments
    assert pdf.filename == "Rechnung März 2025 – Kunde Nr. 47112 überarbeitet.pdf"
    assert pdf.content_type == "application/pdf"
    assert pdf.data is not None
    assert pdf.data.startswith(b"%PDF-1.4")
    assert pdf.size == len(pdf.data)
    assert jpeg.filename == "Quittung Straße ä.jpg"
    assert jpeg.content_type == "image/jpeg"
    assert jpeg.data is not None
    assert jpeg.data.startswith(b"\xff\xd8")


def test_attachment_over_the_limit_is_kept_as_metadata_without_bytes() -> None:
    parsed = parse("rfc2231_attachment_name.eml", attachment_max_bytes=150)
    pdf, jpeg = parsed.attachments
    assert pdf.data is not None
    assert pdf.size == 138
    assert jpeg.data is None
    assert jpeg.size == 159
    assert jpeg.filename == "Quittung Straße ä.jpg"


def test_attachment_names_cannot_traverse_directories() -> None:
    data = raw("rfc2231_attachment_name.eml").replace(
        b'filename="=?UTF-8?Q?Quittung_Stra=C3=9Fe_=C3=A4.jpg?="',
        b'filename="../../etc/passwd"',
    )
    names = [a.filename for a in parse_email(data).attachments]
    assert names[1] == "passwd"


# ---------------------------------------------------------------------- ids, dates, addresses
def test_missing_message_id_gets_a_synthetic_id_stable_across_parses() -> None:
    first = parse("missing_message_id.eml")
    second = parse("missing_message_id.eml")
    assert first.message_id_synthetic
    assert first.message_id == second.message_id
    assert first.message_id.endswith("@hub.invalid")
    other = parse_email(raw("missing_message_id.eml") + b"\nP.S. and the lid?\n")
    assert other.message_id != first.message_id


def test_unparseable_date_is_none_so_the_hub_uses_receive_time() -> None:
    parsed = parse("bad_date.eml")
    assert parsed.date is None
    assert parsed.kind == "message"
    assert parsed.text.startswith("My scanner's e-mail has a strange date.")


def test_date_keeps_its_offset() -> None:
    parsed = parse("gb2312_labelled_gbk.eml")
    assert parsed.date == datetime(2025, 3, 7, 10, 31, 12, tzinfo=timezone(timedelta(hours=8)))


def test_uppercase_address_is_lower_cased() -> None:
    parsed = parse("uppercase_address.eml")
    assert parsed.customer is not None
    assert parsed.customer.address == "alice@example.org"
    assert [a.address for a in parsed.to] == ["support@support.example.com"]


def test_single_reply_to_is_the_customer_not_the_contact_form_sender() -> None:
    data = raw("thread_1_first.eml").replace(
        b"From: Alice Martin <alice@example.org>",
        b"From: Shop Contact Form <noreply@shop.example>\nReply-To: Dana <dana@example.com>",
    )
    parsed = parse_email(data, mail_from="bounces@shop.example")
    assert parsed.customer is not None
    assert (parsed.customer.address, parsed.customer.display_name) == ("dana@example.com", "Dana")


# ---------------------------------------------------------------------- robustness
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff\xfe garbage without headers",
        b"From: a@b.org\nContent-Type: multipart/mixed\n\nno boundary at all",
        b'From: a@b.org\nContent-Type: multipart/mixed; boundary="x"\n\n'
        b"--x\nContent-Type: text/plain\n\ntruncated before the end",
        b'From: a@b.org\nContent-Type: text/plain; charset="bogus"\n'
        b"Content-Transfer-Encoding: base64\n\n!!!not base64!!!",
        b"From: =?utf-8?B?broken?= <a@b.org>\nSubject: =?x-nope?Q?=FF?=\nDate: 99 99 99\n\nhi",
        b'From: a@b.org\nContent-Type: text/html\n\n<div><p onclick="x"><script>evil()',
        b"From: <<<>>>\nMessage-ID: <<>>\nReferences: <>\n\nbody",
    ],
)
def test_malformed_mail_never_raises(data: bytes) -> None:
    parsed = parse_email(data)
    assert parsed.message_id
    assert "evil()" not in parsed.text


def test_body_split_around_an_inline_image_is_joined_and_the_image_kept() -> None:
    data = (
        b"From: Ann <ann@example.org>\nMessage-ID: <split@example.org>\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="A"\n\n'
        b"--A\nContent-Type: text/plain; charset=utf-8\n\nBefore the photo.\n"
        b"--A\nContent-Type: image/png\nContent-Disposition: inline\nContent-ID: <img1@x>\n"
        b"Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"
        b"--A\nContent-Type: text/plain; charset=utf-8\n\nAfter the photo.\n"
        b"--A\nContent-Type: message/rfc822\n\nFrom: x@y.org\nSubject: old\n\nforwarded body\n"
        b"--A--\n"
    )
    parsed = parse_email(data)
    assert parsed.text == "Before the photo.\n\nAfter the photo."
    image, forwarded = parsed.attachments
    assert (image.content_type, image.inline, image.content_id) == ("image/png", True, "img1@x")
    assert image.data == b"\x89PNG\r\n\x1a\n"
    assert forwarded.filename == "message.eml"
    assert forwarded.data is not None
    assert b"forwarded body" in forwarded.data
