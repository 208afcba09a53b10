"""Requirement expressions: grammar, structured form, missing values, index hints."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from routing.expr import ExpressionError, parse, render
from routing.requirements import (
    AndHint,
    IdsHint,
    KeyHint,
    OrHint,
    TaskIdsHint,
    compile_condition,
    compile_requirement,
)


def agent(**kw: object) -> SimpleNamespace:
    base: dict[str, object] = {"id": 7, "skills": {}, "languages": {}, "attributes": {}}
    base.update(kw)
    return SimpleNamespace(**base)


def task(**kw: object) -> SimpleNamespace:
    base: dict[str, object] = {
        "id": 1,
        "priority": 0,
        "channel": "voice",
        "queue": "support",
        "attributes": {},
        "preferred_agents": (),
    }
    base.update(kw)
    return SimpleNamespace(**base)


def matches(source: object, a: SimpleNamespace, t: SimpleNamespace | None = None) -> bool:
    req = compile_requirement(source)
    return True if req.pred is None else req.pred(a, t or task())


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("billing >= 3", True),
        ("billing > 3.5", True),
        ("billing >= 4.5", False),
        ("billing <= 4 AND billing < 5", True),
        ("billing == 4", True),
        ("billing != 4", False),
        ("sales >= 1", False),
        ("NOT sales >= 1", True),
        ("sales != 2", True),
        ("skills HAS 'billing'", True),
        ("skills HAS 'sales'", False),
        ("languages HAS 'fr' AND languages.fr >= 4", True),
        ("languages.de >= 1 OR billing >= 4", True),
        ("(languages.de >= 1 OR billing >= 5) AND billing >= 1", False),
        ("agent.id IN [1, 7, 9]", True),
        ("agent.id NOT IN [1, 9]", True),
        ("worker.id == 8", False),
        ("agent.team == 'blue'", True),
        ("agent.team IN ['red', 'green']", False),
        ("agent.tags CONTAINS 'vip'", True),
        ("agent.tier.level >= 2", True),
        ("agent.missing == 'x'", False),
        ("1 == 1", True),
        ("true", True),
        ("false OR billing >= 1", True),
        ("billing >= 3 && !(sales >= 1) || false", True),
        ("agent.team = 'blue'", True),
        ("billing >= 'x'", False),
        ("agent.team", True),
    ],
)
def test_expression_against_an_agent(source: str, expected: bool) -> None:
    a = agent(
        skills={"billing": 4.0},
        languages={"fr": 5},
        attributes={"team": "blue", "tags": ["vip"], "tier": {"level": 3}},
    )
    assert matches(source, a) is expected


def test_task_references_and_explicit_agent_lists() -> None:
    t = task(attributes={"language": "fr", "vip": True}, preferred_agents=(7,), priority=5)
    a = agent(languages={"fr": 3})
    assert matches("agent.id IN task.preferred_agents", a, t)
    assert matches("languages HAS task.language", a, t)
    assert matches("task.vip == true AND task.priority >= 5", a, t)
    assert not matches("agent.id IN task.preferred_agents", agent(id=8), t)
    assert matches("task.channel == 'voice' AND task.queue == 'support'", a, t)
    assert not matches("agent.id IN task.nothing", a, t)


def test_structured_form_compiles_like_the_string_form() -> None:
    a = agent(skills={"billing": 4}, languages={"en": 2}, attributes={"team": "blue"})
    structured = {
        "all": [
            {"skill": "billing", "min": 3},
            {"language": "en"},
            {"any": [{"attribute": "team", "eq": "blue"}, {"agents": [1, 2]}]},
            {"not": {"skill": "sales"}},
        ]
    }
    assert matches(structured, a)
    assert matches([{"skill": "billing", "in": [4, 5]}, {"expr": "languages.en >= 2"}], a)
    assert matches({"attribute": "team"}, a)
    assert matches({"attribute": "team", "in": ["blue"]}, a)
    assert matches({"attribute": "team", "min": 0}, a) is False
    assert matches({"language": "en", "min": 3}, a) is False
    assert matches(None, a)
    assert matches("", a)
    req = compile_requirement(structured)
    assert "billing >= 3" in req.source
    assert req.skills == ("billing",)


@pytest.mark.parametrize(
    "source",
    [
        "billing >=",
        "billing >= 3 AND",
        "(billing >= 3",
        "billing >= 3)",
        "billing >= 3 $",
        "[1, 2",
        "agent",
        "task.id.x.y == 1 AND workers.available == 0",
        "billing >= 3 billing",
        "x" * 5000,
        ">= 3",
    ],
)
def test_bad_expressions_are_refused(source: str) -> None:
    with pytest.raises(ExpressionError):
        compile_requirement(source)


@pytest.mark.parametrize(
    "structured",
    [{"unknown": 1}, 42, {"all": "billing"}, {"agents": 3}],
)
def test_bad_structured_forms_are_refused(structured: object) -> None:
    with pytest.raises(ExpressionError):
        compile_requirement(structured)


def test_hints_point_at_the_smallest_sufficient_index() -> None:
    assert compile_requirement("billing >= 3").hint == KeyHint("s:billing")
    assert compile_requirement("billing >= 3").keys == ("s:billing",)
    both = compile_requirement("billing >= 3 AND languages.fr >= 2")
    assert both.hint == AndHint((KeyHint("s:billing"), KeyHint("l:fr")))
    assert both.keys == ("s:billing", "l:fr")
    assert compile_requirement("skills HAS 'x' OR languages HAS 'y'").hint == OrHint(
        (KeyHint("s:x"), KeyHint("l:y"))
    )
    assert compile_requirement("agent.id IN [1, 2]").hint == IdsHint(frozenset({1, 2}))
    assert compile_requirement("agent.id == 3").hint == IdsHint(frozenset({3}))
    assert isinstance(compile_requirement("agent.id IN task.preferred_agents").hint, TaskIdsHint)
    # Negations, inequalities and OR with an unindexed branch give no hint.
    for source in ("NOT billing >= 3", "billing != 3", "billing >= 3 OR agent.team == 'a'"):
        assert compile_requirement(source).hint is None
    mixed = compile_requirement("agent.id IN [1] AND billing >= 1")
    assert mixed.keys is None
    assert isinstance(mixed.hint, AndHint)
    assert compile_requirement("agent.id == 'x'").hint is None
    assert compile_requirement("1 == 1").pred is None


def test_skip_if_conditions_read_live_counts() -> None:
    cond = compile_condition("workers.available == 0 AND eligible > 0")
    assert cond({"available": 0, "eligible": 2, "waiting": 1}, None)
    assert not cond({"available": 1, "eligible": 2, "waiting": 1}, None)
    assert compile_condition("tasks.waiting >= 3")({"waiting": 3}, None)
    with pytest.raises(ExpressionError):
        compile_condition("billing >= 1")


def test_render_round_trips_through_the_parser() -> None:
    source = "(billing >= 3 AND NOT languages HAS 'en') OR agent.id IN [1, 2] OR true"
    text = render(parse(source))
    assert render(parse(text)) == text
    assert render(parse('x == "a\'b"')) == 'x == "a\'b"'


def test_configuration_checks_compile_through_the_requirements_module() -> None:
    from routing.requirements import compile_requirement

    assert compile_requirement("billing >= 3").keys == ("s:billing",)
    with pytest.raises(ExpressionError):
        compile_requirement("billing >=")
