"""Requirement expressions: a small safe parser (no eval) compiled to closures plus index hints.

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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from routing.models import RoutingError

MAX_SOURCE = 4_000
Pred = Callable[[Any, Any], bool]
Getter = Callable[[Any, Any], object]


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

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Cmp:
    """A comparison."""

    op: str
    left: Node
    right: Node


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

    item: Node


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

    def value(self) -> Node:
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
            items: list[Node] = []
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


# ---------------------------------------------------------------- hints


@dataclass(frozen=True, slots=True)
class KeyHint:
    """Matching agents all carry this index key (``s:<skill>``, ``l:<language>``)."""

    key: str


@dataclass(frozen=True, slots=True)
class IdsHint:
    """Matching agents are among these ids."""

    ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class TaskIdsHint:
    """Matching agents are among the ids a task attribute lists."""

    getter: Getter


@dataclass(frozen=True, slots=True)
class AndHint:
    """Matching agents satisfy every part (the smallest one drives)."""

    parts: tuple[Hint, ...]


@dataclass(frozen=True, slots=True)
class OrHint:
    """Matching agents satisfy some part."""

    parts: tuple[Hint, ...]


Hint = KeyHint | IdsHint | TaskIdsHint | AndHint | OrHint


@dataclass(frozen=True, slots=True)
class Requirement:
    """A compiled agent requirement: predicate (None = anyone), index hint and skills used."""

    source: str
    pred: Pred | None
    hint: Hint | None
    skills: tuple[str, ...]
    # Set when the hint is a plain conjunction of index keys (the common case).
    keys: tuple[str, ...] | None = None


# ---------------------------------------------------------------- compilation

_NUMERIC_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
}
_TASK_FIELDS = ("id", "priority", "channel", "queue", "preferred_agents")


def _nested(root: Callable[[Any, Any], Mapping[str, object]], rest: tuple[str, ...]) -> Getter:
    def get(a: Any, t: Any) -> object:
        value: object = root(a, t)
        for part in rest:
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    return get


def agent_ref(path: tuple[str, ...]) -> Getter:
    """Resolve a name in an agent requirement to a getter of (agent, task)."""
    head, rest = path[0], path[1:]
    if head in ("agent", "worker") and rest:
        head, rest = rest[0], rest[1:]
        if head == "id" and not rest:
            return lambda a, t: a.id
        if head not in ("skills", "languages"):
            return _nested(lambda a, t: a.attributes, (head, *rest))
    if head == "skills":
        return _nested(lambda a, t: a.skills, rest)
    if head == "languages":
        return _nested(lambda a, t: a.languages, rest)
    if head == "task":
        if len(rest) == 1 and rest[0] in _TASK_FIELDS:
            name = rest[0]
            return lambda a, t: getattr(t, name)
        return _nested(lambda a, t: t.attributes, rest)
    if not rest and head not in ("agent", "worker"):
        return _nested(lambda a, t: a.skills, (head,))
    raise ExpressionError(f"unknown name {'.'.join(path)!r}")


def counts_ref(path: tuple[str, ...]) -> Getter:
    """Resolve a name in a ``skip_if`` condition: live counts of the step being entered."""
    name = path[-1]
    if path[:-1] in ((), ("workers",), ("tasks",)) and name in ("available", "eligible", "waiting"):
        return lambda counts, t: counts.get(name)
    raise ExpressionError(
        f"unknown name in skip_if {'.'.join(path)!r}: use available, eligible, waiting"
    )


def _const_of(node: Node) -> tuple[bool, object]:
    if isinstance(node, Const):
        return True, node.value
    if isinstance(node, ListLit) and all(isinstance(i, Const) for i in node.items):
        values = tuple(i.value for i in node.items if isinstance(i, Const))
        try:
            return True, frozenset(values)
        except TypeError:
            return True, values
    return False, None


def _value(node: Node, ref: Callable[[tuple[str, ...]], Getter]) -> Getter:
    is_const, value = _const_of(node)
    if is_const:
        return lambda a, t: value
    if isinstance(node, Ref):
        return ref(node.path)
    if isinstance(node, ListLit):
        getters = [_value(i, ref) for i in node.items]
        return lambda a, t: tuple(g(a, t) for g in getters)
    return _pred(node, ref)


def _compare(op: str, left: object, right: object) -> bool:
    if op == "==":
        return left is not None and left == right
    if op == "!=":
        return left != right
    if left is None or right is None:
        return False
    try:
        if op in _NUMERIC_OPS:
            result = bool(_NUMERIC_OPS[op](left, right))
        elif op == "IN":
            result = left in right  # type: ignore[operator]
        else:  # HAS, CONTAINS
            result = right in left  # type: ignore[operator]
    except TypeError:
        return False
    return result


def _skill_root(node: Node) -> tuple[str, str] | None:
    """("skills"|"languages", name) when the node reads one skill or language level."""
    if not isinstance(node, Ref):
        return None
    path = (
        node.path[1:] if node.path[0] in ("agent", "worker") and len(node.path) > 1 else node.path
    )
    if len(path) == 1 and node.path[0] not in ("agent", "worker", "task", "skills", "languages"):
        return ("skills", path[0])
    if len(path) == 2 and path[0] in ("skills", "languages"):
        return (path[0], path[1])
    return None


_SKILL_TESTS: dict[str, Callable[[str, str, Any], Pred]] = {}


def _skill_test(
    op: str,
) -> Callable[[Callable[[str, str, Any], Pred]], Callable[[str, str, Any], Pred]]:
    def register(factory: Callable[[str, str, Any], Pred]) -> Callable[[str, str, Any], Pred]:
        _SKILL_TESTS[op] = factory
        return factory

    return register


# The hot path (``billing >= 3``): one dict lookup and one comparison, no nested calls.
@_skill_test(">=")
def _ge(attr: str, name: str, c: Any) -> Pred:
    if attr == "skills":
        return lambda a, t: (v := a.skills.get(name)) is not None and v >= c
    return lambda a, t: (v := a.languages.get(name)) is not None and v >= c


@_skill_test(">")
def _gt(attr: str, name: str, c: Any) -> Pred:
    if attr == "skills":
        return lambda a, t: (v := a.skills.get(name)) is not None and v > c
    return lambda a, t: (v := a.languages.get(name)) is not None and v > c


@_skill_test("<=")
def _le(attr: str, name: str, c: Any) -> Pred:
    if attr == "skills":
        return lambda a, t: (v := a.skills.get(name)) is not None and v <= c
    return lambda a, t: (v := a.languages.get(name)) is not None and v <= c


@_skill_test("<")
def _lt(attr: str, name: str, c: Any) -> Pred:
    if attr == "skills":
        return lambda a, t: (v := a.skills.get(name)) is not None and v < c
    return lambda a, t: (v := a.languages.get(name)) is not None and v < c


def _all(parts: list[Pred]) -> Pred:
    if len(parts) == 2:
        p0, p1 = parts
        return lambda a, t: p0(a, t) and p1(a, t)
    return lambda a, t: all(p(a, t) for p in parts)


def _pred(node: Node, ref: Callable[[tuple[str, ...]], Getter]) -> Pred:
    if isinstance(node, And):
        return _all([_pred(i, ref) for i in node.items])
    if isinstance(node, Or):
        parts = [_pred(i, ref) for i in node.items]
        return lambda a, t: any(p(a, t) for p in parts)
    if isinstance(node, Not):
        inner = _pred(node.item, ref)
        return lambda a, t: not inner(a, t)
    if isinstance(node, Truth | Const | Ref | ListLit):
        get = _value(node.item if isinstance(node, Truth) else node, ref)
        return lambda a, t: bool(get(a, t))
    op = node.op
    root = _skill_root(node.left) if ref is agent_ref else None
    is_const, const = _const_of(node.right)
    if root is not None and is_const and op in _SKILL_TESTS and isinstance(const, int | float):
        return _SKILL_TESTS[op](root[0], root[1], const)
    left = _value(node.left, ref)
    right = _value(node.right, ref)
    return lambda a, t: _compare(op, left(a, t), right(a, t))


def _hint(node: Node) -> Hint | None:
    if isinstance(node, And):
        parts = tuple(h for h in (_hint(i) for i in node.items) if h is not None)
        return None if not parts else parts[0] if len(parts) == 1 else AndHint(parts)
    if isinstance(node, Or):
        or_parts = [_hint(i) for i in node.items]
        if any(h is None for h in or_parts):
            return None
        return OrHint(tuple(h for h in or_parts if h is not None))
    if not isinstance(node, Cmp):
        return None
    root = _skill_root(node.left)
    if root is not None and node.op in ("==", ">=", ">", "<=", "<", "IN"):
        return KeyHint(("s:" if root[0] == "skills" else "l:") + root[1])
    if (
        node.op in ("HAS", "CONTAINS")
        and isinstance(node.left, Ref)
        and node.left.path
        in (("skills",), ("languages",), ("agent", "skills"), ("agent", "languages"))
        and isinstance(node.right, Const)
    ):
        prefix = "s:" if node.left.path[-1] == "skills" else "l:"
        return KeyHint(prefix + str(node.right.value))
    if isinstance(node.left, Ref) and node.left.path in (("agent", "id"), ("worker", "id")):
        is_const, value = _const_of(node.right)
        if node.op == "==" and is_const:
            return IdsHint(frozenset({value})) if isinstance(value, int) else None
        if node.op == "IN" and is_const and isinstance(value, frozenset | tuple):
            return IdsHint(frozenset(v for v in value if isinstance(v, int)))
        if node.op == "IN" and isinstance(node.right, Ref) and node.right.path[0] == "task":
            return TaskIdsHint(agent_ref(node.right.path))
    return None


def _skills(node: Node) -> list[str]:
    if isinstance(node, And | Or):
        return [s for i in node.items for s in _skills(i)]
    if isinstance(node, Cmp):
        root = _skill_root(node.left)
        if root is not None and root[0] == "skills":
            return [root[1]]
        if node.op == "HAS" and isinstance(node.left, Ref) and node.left.path[-1] == "skills":
            return [str(node.right.value)] if isinstance(node.right, Const) else []
    return []


def _always_true(node: Node) -> bool:
    if isinstance(node, Const):
        return bool(node.value)
    if isinstance(node, Cmp) and isinstance(node.left, Const) and isinstance(node.right, Const):
        return _compare(node.op, node.left.value, node.right.value)
    return False


def compile_requirement(source: object) -> Requirement:
    """Compile an agent requirement (string or structured form)."""
    node = from_structured(source)
    if _always_true(node):
        return Requirement(source="true", pred=None, hint=None, skills=())
    hint = _hint(node)
    keys: tuple[str, ...] | None = None
    if isinstance(hint, KeyHint):
        keys = (hint.key,)
    elif isinstance(hint, AndHint) and all(isinstance(p, KeyHint) for p in hint.parts):
        keys = tuple(p.key for p in hint.parts if isinstance(p, KeyHint))
    return Requirement(
        source=render(node),
        pred=_pred(node, agent_ref),
        hint=hint,
        skills=tuple(dict.fromkeys(_skills(node))),
        keys=keys,
    )


def compile_condition(source: str) -> Pred:
    """Compile a ``skip_if`` condition over live counts (``workers.available == 0``)."""
    return _pred(parse(source), counts_ref)
