"""HTML mail to readable text, and a sanitizer that leaves nothing that runs or loads remotely."""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

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


class _Walker(HTMLParser):
    """One pass producing both the plain text and the sanitized markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.html: list[str] = []
        self.open: list[str] = []
        self.drop_depth = 0
        self.drop_tag = ""
        self.in_pre = 0
        self.link_href: list[str | None] = []
        self.link_text_start: list[int] = []
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
        if tag in self.open:
            while self.open:
                top = self.open.pop()
                self.html.append(f"</{top}>")
                if top == tag:
                    break

    def handle_data(self, data: str) -> None:
        if self.drop_depth:
            return
        self.html.append(escape(data, quote=False))
        self.has_text = self.has_text or bool(data.strip())
        if self.in_pre:
            self.text.append(data)
            return
        collapsed = _SPACES.sub(" ", data.replace("\n", " "))
        self.text.append(collapsed.lstrip(" ") if self._after_space() else collapsed)

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
            stripped = piece.rstrip("\n")
            have += len(piece) - len(stripped)
            if stripped or have >= wanted:
                break
        if have < wanted:
            self.text.append("\n" * (wanted - have))

    def _text_start(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _PARAGRAPH:
            self._breaks(2)
        elif tag in _LINE:
            self._breaks(1)
        elif tag == "br":
            self.text.append("\n")
        if tag == "pre":
            self.in_pre += 1
        elif tag in ("ul", "ol"):
            self.list_kind.append(tag)
        elif tag == "li":
            self.text.append("- " if not self.list_kind or self.list_kind[-1] == "ul" else "* ")
        elif tag in ("td", "th") and not self._line_start():
            self.text.append("\t")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and alt.strip():
                self.text.append(f"[{alt.strip()}]")
        elif tag == "a":
            self.link_href.append(dict(attrs).get("href"))
            self.link_text_start.append(len(self.text))

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
            start = self.link_text_start.pop()
            label = "".join(self.text[start:]).strip()
            if href.lower().startswith(("http://", "https://")) and href != label:
                self.text.append(f" <{href}>")

    def finish(self) -> None:
        self.close()
        while self.open:
            self.html.append(f"</{self.open.pop()}>")


def _walk(markup: str) -> _Walker:
    walker = _Walker()
    walker.feed(markup)
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
