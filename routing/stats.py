"""Queue statistics: pure arithmetic (ASA, abandonment, service level) and a windowed log.

Service level at threshold T (Amazon Connect's definition, routing.md §2):

- counting abandons: (answered within T + abandoned within T) / (answered + abandoned).
  A contact that abandons within T left the queue within T, so it meets the target; one that
  abandons later misses it.
- answered only: answered within T / answered.

"Within T" means a wait of at most T seconds (``wait <= T``).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitSummary:
    """Count, total, mean, min and max of a set of waits (None when empty)."""

    count: int
    total: float
    avg: float | None
    min: float | None
    max: float | None


def summarize(waits: Iterable[float]) -> WaitSummary:
    """Summarize waits in seconds."""
    values = list(waits)
    if not values:
        return WaitSummary(count=0, total=0.0, avg=None, min=None, max=None)
    total = sum(values)
    return WaitSummary(
        count=len(values), total=total, avg=total / len(values), min=min(values), max=max(values)
    )


def asa(answered_waits: Sequence[float]) -> float | None:
    """Average speed of answer: the mean wait of answered contacts."""
    return sum(answered_waits) / len(answered_waits) if answered_waits else None


def abandonment_rate(answered: int, abandoned: int) -> float | None:
    """Abandoned over contacts that left the queue (answered + abandoned)."""
    total = answered + abandoned
    return abandoned / total if total else None


def service_level(
    answered_waits: Sequence[float],
    abandoned_waits: Sequence[float],
    threshold_s: float,
    *,
    count_abandons: bool = True,
) -> float | None:
    """Share of contacts handled within ``threshold_s`` (see the module docstring)."""
    met = sum(1 for w in answered_waits if w <= threshold_s)
    if not count_abandons:
        return met / len(answered_waits) if answered_waits else None
    total = len(answered_waits) + len(abandoned_waits)
    met += sum(1 for w in abandoned_waits if w <= threshold_s)
    return met / total if total else None


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowStats:
    """Cumulative statistics of one queue (or all) over the last ``window_s`` seconds."""

    queue: str | None
    window_s: float
    reservations: Mapping[str, int]
    tasks_entered: int
    tasks_canceled: int
    tasks_abandoned: int
    tasks_completed: int
    wait_until_accepted: WaitSummary
    wait_in_queue_until_accepted: WaitSummary
    wait_until_abandoned: WaitSummary
    asa_s: float | None
    abandonment_rate: float | None
    service_level: Mapping[float, float | None] = field(default_factory=dict)
    service_level_answered: Mapping[float, float | None] = field(default_factory=dict)


RESERVATION_OUTCOMES = ("created", "accepted", "rejected", "timeout", "rescinded")


class StatsLog:
    """Timestamped outcomes kept for ``retention_s``; queried over any shorter window."""

    __slots__ = ("_log", "retention_s")

    def __init__(self, retention_s: float) -> None:
        self.retention_s = retention_s
        # (at, queue, kind, wait_s, queue_wait_s)
        self._log: deque[tuple[float, str, str, float, float]] = deque()

    def __len__(self) -> int:
        return len(self._log)

    def record(
        self, at: float, queue: str, kind: str, wait_s: float = 0.0, queue_wait_s: float = 0.0
    ) -> None:
        """Append one outcome and drop what is older than the retention."""
        log = self._log
        log.append((at, queue, kind, wait_s, queue_wait_s))
        if len(log) & 63 == 0:  # prune now and then: the old end is cold memory
            horizon = at - self.retention_s
            while log[0][0] < horizon:
                log.popleft()

    def window(
        self,
        now: float,
        window_s: float,
        *,
        queue: str | None = None,
        thresholds: Iterable[float] = (20.0,),
    ) -> WindowStats:
        """Statistics over ``(now - window_s, now]``, for one queue or all."""
        since = now - window_s
        kinds: Counter[str] = Counter()
        answered: list[float] = []
        answered_in_queue: list[float] = []
        abandoned: list[float] = []
        horizon = max(since, now - self.retention_s)
        for at, q, kind, wait, queue_wait in reversed(self._log):
            if at <= horizon:
                break
            if queue is not None and q != queue:
                continue
            kinds[kind] += 1
            if kind == "answered":
                answered.append(wait)
                answered_in_queue.append(queue_wait)
            elif kind == "abandoned":
                abandoned.append(wait)
        answered.reverse()
        abandoned.reverse()
        levels = tuple(thresholds)
        return WindowStats(
            queue=queue,
            window_s=window_s,
            # An accepted reservation is recorded once, as the answered contact.
            reservations={
                k: kinds["answered" if k == "accepted" else "reservation." + k]
                for k in RESERVATION_OUTCOMES
            },
            tasks_entered=kinds["entered"],
            tasks_canceled=kinds["canceled"] + kinds["abandoned"],
            tasks_abandoned=kinds["abandoned"],
            tasks_completed=kinds["completed"],
            wait_until_accepted=summarize(answered),
            wait_in_queue_until_accepted=summarize(answered_in_queue),
            wait_until_abandoned=summarize(abandoned),
            asa_s=asa(answered),
            abandonment_rate=abandonment_rate(len(answered), len(abandoned)),
            service_level={t: service_level(answered, abandoned, t) for t in levels},
            service_level_answered={
                t: service_level(answered, abandoned, t, count_abandons=False) for t in levels
            },
        )
