"""Limits on what one mail may cost: HTML fed to the cleaner, parse time in the workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.email.const import HTML_INPUT_MAX_CHARS
from channels.email.payloads import parse_email
from channels.email.worker import ParsePool, ParseTimeout

FIXTURES = Path(__file__).parent / "fixtures"


def html_mail(markup: str) -> bytes:
    head = (
        "From: <alice@example.org>\r\nTo: <support@support.example.com>\r\nSubject: long\r\n"
        "Message-ID: <long.1@example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
    )
    return head.encode() + markup.encode()


def test_html_beyond_the_cleaners_limit_is_dropped_and_flagged() -> None:
    line = "<p>line of a very long newsletter</p>\r\n"
    parsed = parse_email(html_mail(line * (HTML_INPUT_MAX_CHARS // len(line) + 10_000)))
    assert parsed.html_truncated
    assert parsed.text.startswith("line of a very long newsletter")
    assert not parse_email(html_mail(line * 10)).html_truncated


async def test_a_parse_over_the_time_limit_is_refused_and_fresh_workers_take_the_next() -> None:
    raw = (FIXTURES / "thread_1_first.eml").read_bytes()
    pool = ParsePool(workers=1, timeout=0.001)
    try:
        with pytest.raises(ParseTimeout):
            await pool.parse(raw, attachment_max_bytes=1000, mail_from=None)
        pool.timeout = 30
        parsed = await pool.parse(raw, attachment_max_bytes=1000, mail_from=None)
    finally:
        await pool.close()
    assert parsed.subject == "Order 4471 arrived damaged"
