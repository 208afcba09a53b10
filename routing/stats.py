"""Queue statistics: pure arithmetic (ASA, abandonment, service level) and a windowed log.

Service level at threshold T (Amazon Connect's definition):

- counting abandons: (answered within T + abandoned within T) / (answered + abandoned).
  A contact that abandons within T left the queue within T, so it meets the target; one that
  abandons later misses it.
- answered only: answered within T / answered.

"Within T" means a wait of at most T seconds (``wait <= T``).
"""

from __future__ import annotations

import struct
from collections import Counter
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
# One logged outcome: four native doubles (at, code of its (queue, kind) pair, wait, queue
# wait), so that a memoryview cast to "d" reads the log in place.
_ENTRY = struct.Struct("4d")
_PACK = _ENTRY.pack
_WIDTH = 4  # doubles per outcome
_PRUNE_EVERY = 64 * _ENTRY.size  # bytes: prune every 64 outcomes


class StatsLog:
    """Timestamped outcomes kept for ``retention_s``; queried over any shorter window.

    Outcomes are packed into one bytearray (``_ENTRY``), not kept as a tuple each. An hour
    at 25 contacts/s is ~360k outcomes: as tuples they fed the garbage collector (each new
    one counted towards a gen-0 pass, and every full pass walked all of them through the
    deque): 15 % of the router benchmark's time at 10k agents went to collections, 3 % now.
    A bytearray is one untracked object of a fifth of the memory, and dropping its front end
    is O(1); packing costs ~0.1 us more than building the tuple did.
    """

    __slots__ = ("_codes", "_log", "_pairs", "retention_s")

    def __init__(self, retention_s: float) -> None:
        self.retention_s = retention_s
        self._log = bytearray()
        # queue -> kind -> code; ``_pairs[code]`` is (queue, kind).
        self._codes: dict[str, dict[str, int]] = {}
        self._pairs: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self._log) // _ENTRY.size

    def _code(self, queue: str, kind: str) -> int:
        by_kind = self._codes.setdefault(queue, {})
        code = by_kind.get(kind)
        if code is None:
            code = by_kind[kind] = len(self._pairs)
            self._pairs.append((queue, kind))
        return code

    def record(
        self, at: float, queue: str, kind: str, wait_s: float = 0.0, queue_wait_s: float = 0.0
    ) -> None:
        """Append one outcome and drop what is older than the retention."""
        try:
            code = self._codes[queue][kind]
        except KeyError:
            code = self._code(queue, kind)
        log = self._log
        log += _PACK(at, code, wait_s, queue_wait_s)
        if len(log) % _PRUNE_EVERY == 0:  # prune now and then: the old end is cold memory
            self._prune(at - self.retention_s)

    def _prune(self, horizon: float) -> None:
        """Drop outcomes from the old end up to the first one not older than ``horizon``."""
        log = self._log
        with memoryview(log) as raw, raw.cast("d") as fields:
            cut, end = 0, len(fields)
            while cut < end and fields[cut] < horizon:
                cut += _WIDTH
            cut *= fields.itemsize
        del log[:cut]

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
        by_code: Counter[int] = Counter()
        answered: list[float] = []
        answered_in_queue: list[float] = []
        abandoned: list[float] = []
        horizon = max(since, now - self.retention_s)
        pairs = self._pairs
        wanted = [queue is None or q == queue for q, _ in pairs]
        answer = [kind == "answered" for _, kind in pairs]
        abandon = [kind == "abandoned" for _, kind in pairs]
        with memoryview(self._log) as raw, raw.cast("d") as fields:
            for i in range(len(fields) - _WIDTH, -1, -_WIDTH):  # newest first
                if fields[i] <= horizon:
                    break
                code = int(fields[i + 1])
                if not wanted[code]:
                    continue
                by_code[code] += 1
                if answer[code]:
                    answered.append(fields[i + 2])
                    answered_in_queue.append(fields[i + 3])
                elif abandon[code]:
                    abandoned.append(fields[i + 2])
        kinds: Counter[str] = Counter()
        for code, n in by_code.items():
            kinds[pairs[code][1]] += n
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
