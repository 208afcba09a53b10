"""Compiled requirements: closures over (agent, task) and the index hints that narrow a search.

A name resolves once, at compile time, to a getter; the hot comparison (``billing >= 3``)
becomes one dict lookup and one comparison. ``Requirement.keys`` is set when the hint is a
plain conjunction of index keys, the common case a decision reads directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from routing.expr import (
    And,
    Cmp,
    Const,
    ExpressionError,
    ListLit,
    Node,
    Not,
    Or,
    Ref,
    Truth,
    Value,
    from_structured,
    parse,
    render,
)

Pred = Callable[[Any, Any], bool]
Getter = Callable[[Any, Any], object]


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


def _const_of(node: Value) -> tuple[bool, object]:
    if isinstance(node, Const):
        return True, node.value
    if isinstance(node, ListLit) and all(isinstance(i, Const) for i in node.items):
        values = tuple(i.value for i in node.items if isinstance(i, Const))
        try:
            return True, frozenset(values)
        except TypeError:
            return True, values
    return False, None


def _value(node: Value, ref: Callable[[tuple[str, ...]], Getter]) -> Getter:
    is_const, value = _const_of(node)
    if is_const:
        return lambda a, t: value
    if isinstance(node, Ref):
        return ref(node.path)
    assert isinstance(node, ListLit)  # a Const is always constant
    getters = [_value(i, ref) for i in node.items]
    return lambda a, t: tuple(g(a, t) for g in getters)


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
