"""The HTML sanitizer and the HTML-to-text conversion of mail bodies."""

from __future__ import annotations

import pytest

from channels.email.html import html_to_text, sanitize_html


@pytest.mark.parametrize(
    ("markup", "banned"),
    [
        ('<a href="javascript:alert(1)">x</a>', "javascript"),
        ('<a href=" java\tscript:alert(1)">x</a>', "script"),
        ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', "data:"),
        ('<p style="background:url(https://t.example/p.gif)">x</p>', "url("),
        ('<div onmouseover="steal()">x</div>', "steal"),
        ("<iframe src=https://x.example><p>inside</p></iframe>after", "inside"),
        ("<svg><script>alert(1)</script></svg>", "alert"),
        ('<img src="cid:logo@x" alt="">', "cid:"),
        ('<link rel="stylesheet" href="https://x.example/a.css">', "x.example"),
        ('<form action="https://phish.example"><input name=p></form>', "phish"),
        ("<body background='https://t.example/bg.png'>x</body>", "t.example"),
    ],
)
def test_sanitizer_leaves_nothing_that_runs_or_loads(markup: str, banned: str) -> None:
    assert banned not in sanitize_html(markup).lower()


def test_sanitizer_closes_what_the_mail_left_open_and_escapes_text() -> None:
    out = sanitize_html("<div><b>bold <i>both</div> 1 &lt; 2 <x-tag>kept text</x-tag>")
    assert out == "<div><b>bold <i>both</i></b></div> 1 &lt; 2 kept text"


def test_sanitizer_keeps_safe_links_with_noopener() -> None:
    out = sanitize_html('<a href="mailto:a@b.org" title="t">mail</a>')
    assert out == (
        '<a href="mailto:a@b.org" title="t" rel="noopener noreferrer nofollow" '
        'target="_blank">mail</a>'
    )


def test_text_of_html_mail_keeps_paragraphs_lists_links_and_entities() -> None:
    text = html_to_text(
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<p>Dear&nbsp;team,</p><p>first line<br>second &amp; third</p>"
        "<ol><li>one</li><li>two</li></ol>"
        '<p><a href="https://shop.example/o/1">order page</a></p>'
        "<table><tr><td>a</td><td>b</td></tr></table></body></html>"
    )
    assert text == (
        "Dear team,\n\nfirst line\nsecond & third\n\n* one\n* two\n\n"
        "order page <https://shop.example/o/1>\n\na\tb"
    )


def test_text_keeps_preformatted_whitespace() -> None:
    assert html_to_text("<pre>a  b\n  c</pre>") == "a  b\n  c"
