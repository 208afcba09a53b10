"""Requirement expressions: a small safe parser (no eval) from text or JSON to a syntax tree.

Grammar (keywords case-insensitive; ``&&``, ``||``, ``!`` and ``=`` are accepted too)::

    expr    := and ("OR" and)*
    and     := unary ("AND" unary)*
    unary   := "NOT" unary | "(" expr ")" | compare
    compare := value [op value]          op: == != > >= < <= IN "NOT IN" HAS CONTAINS
    value   := number | 'string' | "string" | true | false | name(.name)* | "[" value,* "]"

Names: a bare name is a skill's proficiency (``billing >= 3``); ``skills`` and ``languages``
are the agent's maps (``languages HAS 'en'``, ``languages.fr >= 4``); ``agent.id`` (or
``worker.id``), ``agent.<attribute>``; ``task.id|priority|channel|queue|preferred_agents``
and ``task.<attribute>``. A missing value makes every comparison false except ``!=``.
``routing.requirements`` compiles the tree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from routing.models import RoutingError

MAX_SOURCE = 4_000


class ExpressionError(RoutingError):
    """A requirement expression could not be parsed or compiled."""


# ---------------------------------------------------------------- syntax tree


@dataclass(frozen=True, slots=True)
class Const:
    """A literal."""

    value: object


@dataclass(frozen=True, slots=True)
class Ref:
    """A dotted name."""

    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListLit:
    """A bracketed list."""

    items: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Cmp:
    """A comparison."""

    op: str
    left: Value
    right: Value


@dataclass(frozen=True, slots=True)
class And:
    """All of."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Any of."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """Negation."""

    item: Node


@dataclass(frozen=True, slots=True)
class Truth:
    """A bare value used as a condition."""

    item: Value


Value = Const | Ref | ListLit
Node = Const | Ref | ListLit | Cmp | And | Or | Not | Truth

# ---------------------------------------------------------------- parser

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>-?\d+(?:\.\d+)?)
     |(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
     |(?P<op>==|!=|>=|<=|&&|\|\||[<>=!()\[\],])
     |(?P<name>[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_\-]*)*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "HAS", "CONTAINS", "TRUE", "FALSE"}
_CMP_OPS = {"==", "!=", ">", ">=", "<", "<=", "IN", "HAS", "CONTAINS", "NOT IN"}


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    end = len(source.rstrip())
    while pos < end:
        m = _TOKEN.match(source, pos)
        if m is None or m.end() == pos:
            raise ExpressionError(f"unexpected character at {pos}: {source[pos : pos + 10]!r}")
        pos = m.end()
        kind = m.lastgroup
        text = m.group(kind or "")
        if kind == "name" and text.upper() in _KEYWORDS:
            tokens.append(("kw", text.upper()))
        elif kind == "op":
            aliases = {"&&": "AND", "||": "OR", "!": "NOT", "=": "=="}
            tokens.append(("kw", aliases[text]) if text in aliases else ("op", text))
        else:
            tokens.append((kind or "", text))
    return tokens


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ExpressionError(f"unexpected end of expression: {self.source!r}")
        self.pos += 1
        return tok

    def accept(self, text: str) -> bool:
        tok = self.peek()
        if tok is not None and tok[1] == text and tok[0] in ("kw", "op"):
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            raise ExpressionError(f"expected {text!r} in {self.source!r}")

    def parse(self) -> Node:
        node = self.expr()
        extra = self.peek()
        if extra is not None:
            raise ExpressionError(f"unexpected {extra[1]!r} in {self.source!r}")
        return node

    def expr(self) -> Node:
        items = [self.conj()]
        while self.accept("OR"):
            items.append(self.conj())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conj(self) -> Node:
        items = [self.unary()]
        while self.accept("AND"):
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Node:
        if self.accept("NOT"):
            return Not(self.unary())
        if self.accept("("):
            node = self.expr()
            self.expect(")")
            return node
        return self.compare()

    def compare(self) -> Node:
        left = self.value()
        tok = self.peek()
        if tok is None:
            return Truth(left)
        op = tok[1]
        if op == "NOT" and self.pos + 1 < len(self.tokens) and self.tokens[self.pos + 1][1] == "IN":
            self.pos += 2
            return Not(Cmp("IN", left, self.value()))
        if op in _CMP_OPS and tok[0] in ("op", "kw"):
            self.pos += 1
            return Cmp(op, left, self.value())
        return Truth(left)

    def value(self) -> Value:
        kind, text = self.take()
        if kind == "num":
            return Const(float(text) if "." in text else int(text))
        if kind == "str":
            return Const(re.sub(r"\\(.)", r"\1", text[1:-1]))
        if kind == "kw" and text in ("TRUE", "FALSE"):
            return Const(text == "TRUE")
        if kind == "name":
            return Ref(tuple(text.split(".")))
        if kind == "op" and text == "[":
            items: list[Value] = []
            if not self.accept("]"):
                items.append(self.value())
                while self.accept(","):
                    items.append(self.value())
                self.expect("]")
            return ListLit(tuple(items))
        raise ExpressionError(f"unexpected {text!r} in {self.source!r}")


def parse(source: str) -> Node:
    """Parse an expression string into a syntax tree."""
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"expression longer than {MAX_SOURCE} characters")
    if not source.strip():
        return Const(True)
    return _Parser(source).parse()


def from_structured(data: object) -> Node:
    """Build a tree from the structured form (JSON-friendly dicts, lists and strings)."""
    if data is None:
        return Const(True)
    if isinstance(data, str):
        return parse(data)
    if isinstance(data, list | tuple):
        return And(tuple(from_structured(item) for item in data))
    if not isinstance(data, Mapping):
        raise ExpressionError(f"requirement must be a string or an object, not {data!r}")
    if "all" in data:
        return And(tuple(from_structured(item) for item in _items(data["all"])))
    if "any" in data:
        return Or(tuple(from_structured(item) for item in _items(data["any"])))
    if "not" in data:
        return Not(from_structured(data["not"]))
    if "expr" in data:
        return parse(str(data["expr"]))
    if "agents" in data:
        ids = tuple(Const(i) for i in _items(data["agents"]))
        return Cmp("IN", Ref(("agent", "id")), ListLit(ids))
    for kind, root in (("skill", "skills"), ("language", "languages"), ("attribute", "agent")):
        if kind in data:
            ref = Ref((root, str(data[kind])))
            if "min" in data:
                return Cmp(">=", ref, Const(data["min"]))
            if "eq" in data:
                return Cmp("==", ref, Const(data["eq"]))
            if "in" in data:
                return Cmp("IN", ref, ListLit(tuple(Const(v) for v in _items(data["in"]))))
            if kind == "attribute":
                return Truth(ref)
            return Cmp("HAS", Ref((root,)), Const(str(data[kind])))
    raise ExpressionError(f"unknown requirement form: {dict(data)!r}")


def _items(value: object) -> list[object]:
    if not isinstance(value, list | tuple):
        raise ExpressionError(f"expected a list, got {value!r}")
    return list(value)


def render(node: Node) -> str:
    """The canonical text of a tree (used in events and errors)."""
    if isinstance(node, Const):
        return repr(node.value) if isinstance(node.value, str) else str(node.value).lower()
    if isinstance(node, Ref):
        return ".".join(node.path)
    if isinstance(node, ListLit):
        return "[" + ", ".join(render(i) for i in node.items) + "]"
    if isinstance(node, Cmp):
        return f"{render(node.left)} {node.op} {render(node.right)}"
    if isinstance(node, And | Or):
        sep = " AND " if isinstance(node, And) else " OR "
        return "(" + sep.join(render(i) for i in node.items) + ")"
    if isinstance(node, Not):
        return f"NOT {render(node.item)}"
    return render(node.item)
