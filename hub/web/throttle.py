"""Login throttling: failures per client address and per username back off exponentially."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

# A username or address may fail this many times freely; each further failure doubles the
# wait (1 s, 2 s, 4 s ... up to MAX_LOCK_S). A success for the username clears its record;
# records idle for FORGET_S are dropped.
USER_FREE_FAILURES = 5
ADDRESS_FREE_FAILURES = 20
MAX_LOCK_S = 900.0
FORGET_S = 3600.0
MAX_RECORDS = 100_000  # a spray of random usernames must not grow memory without bound


@dataclass(slots=True)
class _Record:
    failures: int = 0
    locked_until: float = 0.0
    last: float = field(default=0.0)


class LoginThrottle:
    """In-process counters (one hub process: each process throttles on its own)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._users: dict[str, _Record] = {}
        self._addresses: dict[str, _Record] = {}

    def retry_after(self, *, username: str, address: str) -> float:
        """Seconds until a login for this username from this address may be tried (0: now)."""
        now = self._clock()
        waits = [
            rec.locked_until - now
            for rec in (self._users.get(username.lower()), self._addresses.get(address))
            if rec is not None
        ]
        return max([0.0, *waits])

    def failed(self, *, username: str, address: str) -> None:
        """Count a failed attempt against both the username and the address."""
        now = self._clock()
        self._bump(self._users, username.lower(), USER_FREE_FAILURES, now)
        self._bump(self._addresses, address, ADDRESS_FREE_FAILURES, now)

    def succeeded(self, *, username: str) -> None:
        """A right password clears the username's record (the address keeps its count)."""
        self._users.pop(username.lower(), None)

    def _bump(self, table: dict[str, _Record], key: str, free: int, now: float) -> None:
        if len(table) >= MAX_RECORDS:
            self._forget(table, now)
        rec = table.setdefault(key, _Record())
        if now - rec.last > FORGET_S:
            rec.failures = 0
        rec.failures += 1
        rec.last = now
        over = rec.failures - free
        if over > 0:
            rec.locked_until = now + min(MAX_LOCK_S, 2.0 ** (over - 1))

    @staticmethod
    def _forget(table: dict[str, _Record], now: float) -> None:
        stale = [k for k, rec in table.items() if now - rec.last > FORGET_S]
        for key in stale:
            del table[key]
        if len(table) >= MAX_RECORDS:
            # Still full of fresh records: drop the oldest half rather than grow.
            for key in sorted(table, key=lambda k: table[k].last)[: len(table) // 2]:
                del table[key]
