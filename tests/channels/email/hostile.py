"""Hostile HTML and mail for the linear-time tests: unbalanced, deeply nested tag soup."""

from __future__ import annotations

import quopri
import random

# Shapes that were quadratic before: end tags with nothing to close under an ever deeper stack
# (no piece of _OTHERS closes an element of _OPENS),
# whitespace-only text, nested links and lists; plus what must never come out: scripts, event
# handlers, javascript: links, remote loads.
_OPENS = (
    "<div>",
    "<b>",
    "<font color=red>",
    "<span title='x'>",
    "<ul><li>",
    "<table><tr><td>",
    "<a href='https://shop.example/{n}' onclick='steal()'>",
    '<a href="javascript:alert({n})">',
    "<a href=' java\tscript:alert({n})'>",
    "<blockquote style='background:url(https://t.example/{n})'>",
)
_STRAYS = ("</p>", "</em>", "</h2>", "</code>", "<b> </b>")
_OTHERS = (
    "<br>",
    "&amp; text {n} ",
    "<img src=https://t.example/{n}.gif alt=logo onerror=alert(1)>",
    "<script>alert({n})</script>",
    "<svg onload=alert(1)><script>alert({n})</script></svg>",
    "<iframe src=https://x.example/{n}></iframe>",
    "<!-- {n} -->",
    "<em onmouseover=alert({n})>x</em>",
    " < ",
)


def tag_soup(rng: random.Random, size: int) -> str:
    """About ``size`` characters of random tag soup that nests ever deeper, never balancing."""
    out: list[str] = []
    total = 0
    while total < size:
        draw = rng.random()
        pool = _OPENS if draw < 0.4 else _STRAYS if draw < 0.8 else _OTHERS
        piece = rng.choice(pool).format(n=rng.randrange(1000))
        out.append(piece)
        total += len(piece)
    return "".join(out)


def deep_nesting(size: int) -> str:
    """Open tags that are never closed, each followed by end tags that close nothing."""
    unit = "<div><b><span>x</p></table></em>"
    return unit * (size // len(unit))


def hostile_mail(size: int, *, sender: str, to: str) -> bytes:
    """A mail of at least ``size`` bytes whose HTML body is tag soup in 76-character lines."""
    html = deep_nesting(size // 2) + tag_soup(random.Random(1), size // 2)
    body = quopri.encodestring(html.encode())  # soft line breaks at 76 characters
    head = (
        f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: soup\r\n"
        "Message-ID: <soup.1@attacker.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    return head.encode() + body.replace(b"\n", b"\r\n") + b"\r\n"
