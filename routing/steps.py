"""Step lists: compile each caller's steps once, then give tasks a shared template.

A task's steps are its own (per IVR choice) or its queue's, preceded by the preferred-agent
step when it names agents and followed by "anyone in the queue" under the ``any``
fallback. Compiled lists are cached by the caller's tuple, by identity first (hashing a
tuple of dataclasses costs more than the rest of a decision), then by value.
"""

from __future__ import annotations

import contextlib
from typing import TypeVar

from routing.models import Step
from routing.records import INF, CompiledStep, QueueRec, TaskRec
from routing.requirements import compile_condition, compile_requirement

ANY_STEP = CompiledStep(compile_requirement(None), None, None, None, None)
PREFERRED = compile_requirement("agent.id IN task.preferred_agents")
CACHE_MAX = 4096
# (base steps, kept for the identity check; steps with preferred and fallback; end offsets)
Template = tuple[tuple[CompiledStep, ...], tuple[CompiledStep, ...], tuple[float, ...]]
K = TypeVar("K")
V = TypeVar("V")


def _bounded(cache: dict[K, V]) -> dict[K, V]:
    if len(cache) >= CACHE_MAX:
        cache.pop(next(iter(cache)))
    return cache


def step_at(t: TaskRec, at: float, start: int) -> int:
    """The step the task is on at ``at`` (``len(t.steps)`` when past the last)."""
    # ``origin + offset`` exactly as the deadline was pushed: ``at - origin >= offset``
    # can round the other way and leave the task on an expired step.
    i, offsets, origin = start, t.offsets, t.origin
    while i < len(offsets) and at >= origin + offsets[i]:
        i += 1
    return i


class StepBook:
    """Compiled step lists and per-task templates, both bounded caches."""

    __slots__ = ("by_id", "by_value", "templates")

    def __init__(self) -> None:
        self.by_value: dict[tuple[Step, ...], tuple[CompiledStep, ...]] = {}
        self.by_id: dict[int, tuple[tuple[Step, ...], tuple[CompiledStep, ...]]] = {}
        self.templates: dict[tuple[int, float | None, bool, str], Template] = {}

    def compile(self, steps: tuple[Step, ...]) -> tuple[CompiledStep, ...]:
        """Compile (or find) a step list; raises ``ExpressionError`` on a bad requirement."""
        hit = self.by_id.get(id(steps))
        if hit is not None and hit[0] is steps:
            return hit[1]
        try:
            compiled = self.by_value.get(steps)
        except TypeError:  # a structured requirement (a dict) is not hashable
            compiled = None
        if compiled is None:
            compiled = tuple(
                CompiledStep(
                    compile_requirement(s.requirement),
                    s.timeout_s,
                    s.priority,
                    s.queue,
                    compile_condition(s.skip_if) if s.skip_if else None,
                )
                for s in steps
            )
            with contextlib.suppress(TypeError):
                _bounded(self.by_value)[steps] = compiled
        _bounded(self.by_id)[id(steps)] = (steps, compiled)
        return compiled

    def build(self, t: TaskRec, q: QueueRec) -> None:
        """Give the task its steps, their end offsets and its step clock origin."""
        base = t.own_steps if t.own_steps is not None else q.steps
        preferred = bool(t.preferred_agents)
        key = (id(base), t.preferred_timeout_s if preferred else -1.0, preferred, q.spec.fallback)
        template = self.templates.get(key)
        if template is None or template[0] is not base:
            template = _bounded(self.templates)[key] = _template(base, t, q)
        _, t.steps, t.offsets = template
        t.origin = t.created_at if q.spec.step_clock == "created" else t.entered_at


def _template(base: tuple[CompiledStep, ...], t: TaskRec, q: QueueRec) -> Template:
    steps = list(base)
    if t.preferred_agents:
        steps.insert(0, CompiledStep(PREFERRED, t.preferred_timeout_s, None, None, None))
    last = steps[-1] if steps else None
    if last is None or (
        q.spec.fallback == "any"
        and not (last.req.pred is None and last.timeout_s is None and last.queue is None)
    ):
        steps.append(ANY_STEP)
    offsets, acc = [], 0.0
    for step in steps:
        acc = INF if step.timeout_s is None else acc + step.timeout_s
        offsets.append(acc)
    return base, tuple(steps), tuple(offsets)
