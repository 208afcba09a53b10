"""HTML mail to readable text, and a sanitizer that leaves nothing that runs or loads remotely.

Linear in the input: the tokenizer never rescans (the stdlib ``HTMLParser`` of Python 3.11 is
quadratic on unclosed quotes, tags and comments: 256 KB of ``<a b='`` took three minutes), each
end tag costs O(1), and nesting deeper than ``MAX_DEPTH`` elements is flattened.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import escape, unescape

# Whole subtrees dropped from both the text and the sanitized HTML.
_DROP_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "applet", "head", "title", "noscript",
     "template", "svg", "math", "frame", "frameset", "noembed", "noframes", "xml"}
)  # fmt: skip
_VOID = frozenset({"br", "hr", "img", "wbr", "meta", "link", "input", "source", "area", "col"})
_ALLOWED_TAGS = frozenset(
    {"a", "abbr", "address", "b", "bdi", "bdo", "blockquote", "br", "caption", "center",
     "cite", "code", "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em",
     "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "ins", "kbd", "li", "mark",
     "ol", "p", "pre", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "summary",
     "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var"}
)  # fmt: skip
# No style (url() loads), no class/id (collide with the console's CSS), no event handlers.
_ALLOWED_ATTRS = frozenset(
    {"href", "title", "alt", "colspan", "rowspan", "align", "valign", "dir", "lang", "width",
     "height", "cite", "start", "type", "color", "size", "face"}
)  # fmt: skip
_SAFE_HREF = re.compile(r"^(https?:|mailto:|#)", re.IGNORECASE)
# Paragraph-like blocks are set apart by a blank line, line-like blocks by a line break.
_PARAGRAPH = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl",
     "hr", "address", "section", "article", "header", "footer", "form", "details"}
)  # fmt: skip
_LINE = frozenset({"div", "tr", "li", "dt", "dd", "center", "caption", "summary"})
_SPACES = re.compile(r"[ \t\f\v\r\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# Open kept elements beyond this are ignored (browsers cap the tree depth too: Chromium at 512);
# it bounds the stacks of lists and links as well.
MAX_DEPTH = 256
# Attributes kept per tag (all are parsed): a tag of a million attributes is one of 64.
_MAX_ATTRS = 64
# A link label longer than its href by more than this cannot be the href itself.
_LABEL_SLACK = 1024

# ---------------------------------------------------------------------- tokenizer
# The HTML tokenizer's states that matter here, as regular expressions that never backtrack
# over more than the token they match; an unclosed quote, tag or comment runs to the end of the
# input (as in browsers), so nothing is scanned twice.
_TAG_OPEN = re.compile(r"<(/?)([A-Za-z][^\t\n\f\r />]*)")
_ATTR = re.compile(
    r"[\t\n\f\r /]*"
    r"(?:(?P<name>[^\t\n\f\r />][^\t\n\f\r /=>]*)"
    r"(?:[\t\n\f\r ]*=[\t\n\f\r ]*"
    r"(?P<value>\"[^\"]*(?:\"|\Z)|'[^']*(?:'|\Z)|[^\t\n\f\r >]*))?)?"
)
# Elements whose content is text up to their own end tag (RCDATA ones decode entities).
_RAW_TEXT = frozenset({"script", "style", "xmp", "iframe", "noembed", "noframes", "noscript"})
_RCDATA = frozenset({"title", "textarea"})
_RAW_END = {
    name: re.compile(rf"</{name}(?=[\t\n\f\r />])", re.IGNORECASE)
    for name in (*_RAW_TEXT, *_RCDATA)
}

Attrs = list[tuple[str, str | None]]
# ("start", tag, attrs, self_closing) | ("end", tag, [], False) | ("data", text, [], False)
Token = tuple[str, str, Attrs, bool]


def _tag(markup: str, pos: int) -> tuple[int, Attrs, bool] | None:
    """Attributes from ``pos`` to the tag's ``>``: (position after it, attrs, self-closing).

    None when the input ends inside the tag (a browser drops such a tag).
    """
    attrs: Attrs = []
    end = len(markup)
    while True:
        match = _ATTR.match(markup, pos)  # every part is optional: it always matches
        if match is None or match.end() >= end:
            return None
        pos = match.end()
        name = match.group("name")
        if name is None:  # only ">" can follow
            return pos + 1, attrs, markup[pos - 1] == "/"
        if len(attrs) >= _MAX_ATTRS:
            continue
        value = match.group("value")
        if value is not None and value[:1] in ("'", '"'):
            value = value[1:-1]
        attrs.append((name.lower(), None if value is None else unescape(value)))


def tokens(markup: str) -> Iterator[Token]:
    """Start tags, end tags and text of ``markup`` in one forward pass (comments dropped)."""
    pos, end = 0, len(markup)
    pending: list[str] = []
    while pos < end:
        lt = markup.find("<", pos)
        if lt < 0:
            pending.append(markup[pos:])
            break
        if lt > pos:
            pending.append(markup[pos:lt])
        opened = _TAG_OPEN.match(markup, lt)
        if opened is None:
            if markup.startswith("<!--", lt):
                close = markup.find("-->", lt + 2)  # "<!-->" is an empty comment
                pos = end if close < 0 else close + 3
            elif markup.startswith(("<!", "<?", "</"), lt):
                close = markup.find(">", lt + 2)  # bogus comment; "</>" is nothing
                pos = end if close < 0 else close + 1
            else:
                pending.append("<")
                pos = lt + 1
            continue
        parsed = _tag(markup, opened.end())
        if parsed is None:
            break
        if pending:
            yield "data", unescape("".join(pending)), [], False
            pending = []
        pos, attrs, closing = parsed
        name = opened.group(2).lower()
        if opened.group(1):
            yield "end", name, [], False
            continue
        yield "start", name, attrs, closing
        if name == "plaintext":
            pending.append(markup[pos:])
            break
        raw_end = _RAW_END.get(name)
        if raw_end is not None and not closing:
            found = raw_end.search(markup, pos)
            stop = end if found is None else found.start()
            if stop > pos:
                text = markup[pos:stop]
                yield "data", unescape(text) if name in _RCDATA else text, [], False
            pos = stop
    if pending:
        yield "data", unescape("".join(pending)), [], False


class _Walker:
    """One pass producing both the plain text and the sanitized markup."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.text_len = 0
        self.html: list[str] = []
        self.open: list[str] = []
        # How many of each tag ``open`` holds: an end tag with nothing to close costs O(1).
        self.open_count: dict[str, int] = {}
        self.drop_depth = 0
        self.drop_tag = ""
        self.in_pre = 0
        self.link_href: list[str | None] = []
        self.link_text_start: list[tuple[int, int]] = []
        self.list_kind: list[str] = []
        self.blocked_remote = 0
        self.has_text = False

    # ------------------------------------------------------------------ tags
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.drop_depth:
            if tag == self.drop_tag:
                self.drop_depth += 1
            return
        if tag in _DROP_CONTENT:
            if tag not in _VOID:
                self.drop_depth, self.drop_tag = 1, tag
            return
        if len(self.open) >= MAX_DEPTH and tag in _ALLOWED_TAGS and tag not in _VOID:
            return
        self._text_start(tag, attrs)
        if tag == "img":
            # Images never load (tracking pixels, remote content); their alt text stays.
            self.blocked_remote += any(name == "src" for name, _ in attrs)
            alt = (dict(attrs).get("alt") or "").strip()
            if alt:
                self.html.append(escape(f"[{alt}]", quote=False))
            return
        if tag not in _ALLOWED_TAGS:
            return
        kept = self._attrs(tag, attrs)
        rendered = "".join(f' {name}="{escape(value)}"' for name, value in kept)
        self.html.append(f"<{tag}{rendered}>")
        if tag not in _VOID:
            self.open.append(tag)
            self.open_count[tag] = self.open_count.get(tag, 0) + 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.drop_depth:
            if tag == self.drop_tag:
                self.drop_depth -= 1
            return
        self._text_end(tag)
        if self.open_count.get(tag):
            while self.open:
                top = self._pop()
                self.html.append(f"</{top}>")
                if top == tag:
                    break

    def _pop(self) -> str:
        top = self.open.pop()
        self.open_count[top] -= 1
        return top

    def handle_data(self, data: str) -> None:
        if self.drop_depth:
            return
        self.html.append(escape(data, quote=False))
        self.has_text = self.has_text or bool(data.strip())
        if self.in_pre:
            self._put(data)
            return
        collapsed = _SPACES.sub(" ", data.replace("\n", " "))
        self._put(collapsed.lstrip(" ") if self._after_space() else collapsed)

    def _put(self, piece: str) -> None:
        # Never an empty piece: the look-backs below stop at the first non-empty one.
        if piece:
            self.text.append(piece)
            self.text_len += len(piece)

    def _after_space(self) -> bool:
        for piece in reversed(self.text):
            if piece:
                return piece[-1] in " \t\n"
        return True

    def _line_start(self) -> bool:
        for piece in reversed(self.text):
            if piece:
                return piece.endswith("\n")
        return True

    # ------------------------------------------------------------------ sanitizing
    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
        kept: list[tuple[str, str]] = []
        for name, value in attrs:
            if name not in _ALLOWED_ATTRS or value is None:
                continue
            if name == "href":
                # Browsers ignore whitespace and control characters inside the scheme.
                compact = re.sub(r"[\x00-\x20]", "", value)
                if tag != "a" or not _SAFE_HREF.match(compact):
                    continue
            kept.append((name, value))
        if tag == "a" and any(name == "href" for name, _ in kept):
            kept += [("rel", "noopener noreferrer nofollow"), ("target", "_blank")]
        return kept

    # ------------------------------------------------------------------ text
    def _breaks(self, wanted: int) -> None:
        """End the text with at least ``wanted`` line breaks (none at the very start)."""
        if not self.has_text:
            return
        have = 0
        for piece in reversed(self.text):
            # Count at most the breaks still wanted: a long text ending in newlines is not
            # rescanned (or copied) for every block tag that follows it.
            trailing = 0
            while trailing < min(len(piece), wanted - have) and piece[-1 - trailing] == "\n":
                trailing += 1
            have += trailing
            if have >= wanted or trailing < len(piece):
                break
        if have < wanted:
            self._put("\n" * (wanted - have))

    def _text_start(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _PARAGRAPH:
            self._breaks(2)
        elif tag in _LINE:
            self._breaks(1)
        elif tag == "br":
            self._put("\n")
        if tag == "pre":
            self.in_pre += 1
        elif tag in ("ul", "ol"):
            self.list_kind.append(tag)
        elif tag == "li":
            self._put("- " if not self.list_kind or self.list_kind[-1] == "ul" else "* ")
        elif tag in ("td", "th") and not self._line_start():
            self._put("\t")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and alt.strip():
                self._put(f"[{alt.strip()}]")
        elif tag == "a":
            self.link_href.append(dict(attrs).get("href"))
            self.link_text_start.append((len(self.text), self.text_len))

    def _text_end(self, tag: str) -> None:
        if tag in _PARAGRAPH:
            self._breaks(2)
        elif tag in _LINE:
            self._breaks(1)
        if tag == "pre" and self.in_pre:
            self.in_pre -= 1
        elif tag in ("ul", "ol") and self.list_kind:
            self.list_kind.pop()
        elif tag == "a" and self.link_href:
            href = (self.link_href.pop() or "").strip()
            start, start_len = self.link_text_start.pop()
            if not href.lower().startswith(("http://", "https://")):
                return
            # Joining only a label that could still equal the href keeps nested links linear.
            same = self.text_len - start_len <= len(href) + _LABEL_SLACK and (
                "".join(self.text[start:]).strip() == href
            )
            if not same:
                self._put(f" <{href}>")

    def finish(self) -> None:
        while self.open:
            self.html.append(f"</{self._pop()}>")


def _walk(markup: str) -> _Walker:
    walker = _Walker()
    for kind, name, attrs, closing in tokens(markup):
        if kind == "data":
            walker.handle_data(name)
        elif kind == "end":
            walker.handle_endtag(name)
        elif closing:
            walker.handle_startendtag(name, attrs)
        else:
            walker.handle_starttag(name, attrs)
    walker.finish()
    return walker


def _tidy(text: str) -> str:
    lines = [line.rstrip(" \t") for line in text.replace("\r", "").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(markup: str) -> str:
    """Readable plain text of an HTML mail body (no scripts, styles or head)."""
    return _tidy("".join(_walk(markup).text))


def sanitize_html(markup: str) -> str:
    """Markup safe to show an agent: allow-listed tags and attributes, no remote loads."""
    return "".join(_walk(markup).html)


def convert(markup: str) -> tuple[str, str, int]:
    """Text, sanitized HTML and the number of image loads blocked, in one pass."""
    walker = _walk(markup)
    return _tidy("".join(walker.text)), "".join(walker.html), walker.blocked_remote
