"""Selection policies (which agent gets a task) and task order keys (which task goes first)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from routing.models import Selection, TaskOrder

# A Genesys conversation score adds the priority as minutes of extra waiting.
SCORE_SECONDS_PER_PRIORITY = 60.0


class Candidate(Protocol):
    """What a policy reads of an agent."""

    @property
    def idle_since(self) -> float: ...
    @property
    def idle_seq(self) -> int: ...
    @property
    def total(self) -> int: ...
    @property
    def last_offer_seq(self) -> int: ...
    @property
    def skills(self) -> dict[str, float]: ...


A = TypeVar("A", bound="Candidate")


def idle_key(agent: Candidate) -> tuple[float, int]:
    """Longest idle first: earliest idle-since, then who became idle first."""
    return (agent.idle_since, agent.idle_seq)


def select(
    selection: Selection,
    eligible: Sequence[A],
    k: int,
    *,
    ordered: bool,
    skills: Sequence[str] = (),
    best_of: int | None = None,
    rng: Callable[[], float],
) -> list[A]:
    """Pick up to ``k`` agents among eligible ones (``ordered``: already longest-idle first)."""
    if selection == "random":
        pool = list(eligible)
        picked: list[A] = []
        while pool and len(picked) < k:
            picked.append(pool.pop(min(int(rng() * len(pool)), len(pool) - 1)))
        return picked
    by_idle = list(eligible) if ordered else sorted(eligible, key=idle_key)
    # The sorts below are stable, so ties keep the longest-idle order.
    if selection == "best_proficiency":
        window = by_idle[:best_of] if best_of else by_idle

        def score(agent: A) -> float:
            return -sum(agent.skills.get(s, 0.0) for s in skills)

        return sorted(window, key=score)[:k]
    if selection == "least_busy":
        return sorted(by_idle, key=lambda a: a.total)[:k]
    if selection == "round_robin":
        return sorted(by_idle, key=lambda a: a.last_offer_seq)[:k]
    return by_idle[:k]


def task_key(order: TaskOrder, priority: int, created_at: float) -> tuple[float, float]:
    """Sort key of a waiting task: higher priority first, then older (FIFO) or newer (LIFO)."""
    if order == "lifo":
        return (-priority, -created_at)
    if order == "score":
        return (0.0, created_at - SCORE_SECONDS_PER_PRIORITY * priority)
    return (-priority, created_at)


class SplitMix:
    """A tiny deterministic generator, the default ``rng`` (the hub may inject its own)."""

    __slots__ = ("state",)

    def __init__(self, seed: int = 0) -> None:
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def __call__(self) -> float:
        """A float in [0, 1)."""
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        z ^= z >> 31
        return (z >> 11) / float(1 << 53)
