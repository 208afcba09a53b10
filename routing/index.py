"""Indexes that keep a decision sub-linear: routable agents by (channel, key), waiting tasks by
(queue, channel).

An agent is *routable* on a channel when its activity is available, the channel has a free
slot and every channel it is busy on may be interrupted by this one. Routable agents sit in
one bucket per index key (``q:<queue>``, ``s:<skill>``, ``l:<language>``) per channel, longest
idle first. A task's requirement hint picks the smallest bucket that must contain every
match, so a decision reads a few agents of one skill rather than the whole floor.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Mapping

from routing.models import ChannelRule
from routing.policy import select, task_key
from routing.records import AgentRec, Bucket, TaskRec
from routing.requirements import AndHint, Hint, IdsHint, KeyHint, OrHint

WAITING = ("pending", "reserved")
_NONE: frozenset[str] = frozenset()
_EMPTY = Bucket()
Entry = tuple[float, float, int, TaskRec]


def _size(source: Bucket | list[AgentRec]) -> int:
    return len(source)


class AgentIndex:
    """Routable agents by channel and index key, longest idle first."""

    __slots__ = (
        "_default_rule",
        "_idle_seq",
        "_rng",
        "_rules",
        "agents",
        "buckets",
        "dirty",
        "pool_of",
    )

    def __init__(
        self,
        rules: Mapping[str, ChannelRule],
        default_rule: ChannelRule,
        rng: Callable[[], float],
        agents: dict[int, AgentRec],
        pools: Mapping[str, int],
    ) -> None:
        self._rules = rules
        self._default_rule = default_rule
        # channel -> the pool whose limit it shares (channels of no configured pool: absent)
        self.pool_of = {
            c: r.pool for c, r in rules.items() if r.pool is not None and r.pool in pools
        }
        self._rng = rng
        self._idle_seq = 0
        self.agents = agents
        self.buckets: dict[str, dict[str, Bucket]] = {}
        # Agents that gained a routable channel: the router looks for work for them.
        self.dirty: dict[AgentRec, None] = {}

    # ------------------------------------------------------------ maintenance
    def routable_channels(self, a: AgentRec) -> frozenset[str]:
        """Channels on which the agent can take one more task now."""
        if not a.available:
            return _NONE
        total = a.total
        if not total:
            return a.channels
        solo = a.solo
        if solo is not None and a.load.get(solo, 0) == total:  # one channel, no other work
            return a.channels if total < a.solo_cap else _NONE
        load = a.load
        busy = [c for c, n in load.items() if n > 0]
        out = []
        for c in a.channels:
            if load.get(c, 0) >= a.cap[c]:
                continue
            p = self.pool_of.get(c)
            if p is not None and a.pool_load.get(p, 0) >= a.pool_cap[p]:
                continue
            for d in busy:
                if d != c and c not in self._rules.get(d, self._default_rule).interruptible_by:
                    break
            else:
                out.append(c)
        return frozenset(out)

    def free_slots(self, a: AgentRec, channel: str) -> int:
        """How many more tasks the agent could take on the channel, by capacity alone."""
        free = a.cap.get(channel, 0) - a.load.get(channel, 0)
        p = self.pool_of.get(channel)
        if p is not None:
            free = min(free, a.pool_cap.get(p, 0) - a.pool_load.get(p, 0))
        return max(free, 0)

    def file(self, a: AgentRec) -> None:
        """Resolve the agent's buckets once per channel (after its keys change)."""
        slots = {}
        for c in a.channels:
            idx = self.buckets.setdefault(c, {})
            slots[c] = tuple(idx[k] if k in idx else idx.setdefault(k, Bucket()) for k in a.keys)
        a.slots = slots
        a.solo_buckets = slots[a.solo] if a.solo is not None else ()
        self.refresh(a)

    def refresh(self, a: AgentRec) -> None:
        """Re-file the agent after a change of activity or load."""
        new = self.routable_channels(a)
        old = a.routable
        if new == old:
            return
        a.routable = new
        # Bucket.discard inlined: this runs twice per task (offer, then release).
        if a.solo is not None:  # one channel: it was lost or gained
            if new:
                self._enter(a, a.solo_buckets)
            else:
                for b in a.solo_buckets:
                    del b.agents[a]
            return
        slots = a.slots
        for c in old:
            if c not in new:
                for b in slots[c]:
                    del b.agents[a]
        for c in new:
            if c not in old:
                self._enter(a, slots[c])

    def _enter(self, a: AgentRec, buckets: tuple[Bucket, ...]) -> None:
        """Put a newly routable agent at the back of its buckets (``Bucket.add`` inlined)."""
        since = a.idle_since
        for b in buckets:
            b.agents[a] = None
            if since >= b.last:
                b.last = since
            else:
                b.dirty = True
        self.dirty[a] = None  # it may take waiting work

    def unfile(self, a: AgentRec) -> None:
        """Take the agent out of every bucket (before its keys change or it leaves)."""
        for c in a.routable:
            for b in a.slots[c]:
                b.agents.pop(a, None)
        a.routable = _NONE

    def load(self, a: AgentRec, channel: str, delta: int) -> None:
        """Change the agent's load on a channel (and on the pool the channel is in)."""
        n = a.load.get(channel, 0) + delta
        if n:
            a.load[channel] = n
        else:
            a.load.pop(channel, None)
        p = self.pool_of.get(channel)
        if p is not None:
            n = a.pool_load.get(p, 0) + delta
            if n:
                a.pool_load[p] = n
            else:
                a.pool_load.pop(p, None)
        a.total += delta
        self.refresh(a)

    def set_idle(self, a: AgentRec, at: float) -> None:
        """Restart the agent's idle clock (it moves to the back of its buckets)."""
        self._idle_seq += 1
        a.idle_since = at
        a.idle_seq = self._idle_seq
        for c in a.routable:
            for b in a.slots[c]:
                b.agents.move_to_end(a)
                if at >= b.last:
                    b.last = at
                else:
                    b.dirty = True

    def restore_idle(self, a: AgentRec, at: float) -> None:
        """Set a remembered idle clock (no re-filing: the agent is not filed yet)."""
        self._idle_seq += 1
        a.idle_since = at
        a.idle_seq = self._idle_seq

    # ------------------------------------------------------------ task-driven decision
    def _source(self, hint: Hint, idx: dict[str, Bucket], t: TaskRec) -> Bucket | list[AgentRec]:
        if isinstance(hint, KeyHint):
            b = idx.get(hint.key)
            return _EMPTY if b is None else b
        if isinstance(hint, AndHint):
            best: Bucket | list[AgentRec] | None = None
            for part in hint.parts:
                s = self._source(part, idx, t)
                if best is None or _size(s) < _size(best):
                    best = s
                    if not _size(best):
                        break
            return _EMPTY if best is None else best
        if isinstance(hint, OrHint):
            union: dict[AgentRec, None] = {}
            for part in hint.parts:
                s = self._source(part, idx, t)
                union.update(dict.fromkeys(s if isinstance(s, list) else s.agents))
            return list(union)
        ids = hint.ids if isinstance(hint, IdsHint) else hint.getter(None, t)
        if not isinstance(ids, list | tuple | set | frozenset):
            return []
        agents = self.agents
        channel = t.channel
        return [a for i in ids if (a := agents.get(i)) is not None and channel in a.routable]

    def find(self, t: TaskRec, now: float, k: int) -> list[AgentRec]:
        """Up to ``k`` agents for the task under its queue's selection policy."""
        idx = self.buckets.get(t.channel)
        q = t.q
        if idx is None or q is None:
            return []
        qb = idx.get(q.key)
        if qb is None or not qb.agents:
            return []
        src: Bucket | list[AgentRec] = qb
        keys = t.keys
        if keys is not None:
            size = len(qb.agents)
            for key in keys:
                b = idx.get(key)
                if b is None or not b.agents:
                    return []
                if len(b.agents) < size:
                    src, size = b, len(b.agents)
        elif t.hint is not None:
            alt = self._source(t.hint, idx, t)
            if _size(alt) < len(qb.agents):
                src = alt
        qname = q.name
        qwait = now - t.entered_at
        excluded = t.excluded
        held = t.res
        pred = t.pred
        spec = q.spec
        if spec.selection == "longest_idle" and isinstance(src, Bucket):
            # The hot path: walk longest-idle first and stop at the k-th match. Without member
            # delays, membership is a key test (no read of the agent's delay), and the queue's
            # own bucket holds members only.
            check_delay = bool(q.delays) or qwait < 0
            check_member = src is not qb
            out: list[AgentRec] = []
            for a in src.ordered() if src.dirty else src.agents:
                if (excluded and a.id in excluded) or (held and a.id in held):
                    continue
                if check_delay:
                    m = a.queues.get(qname)
                    if m is None or m[1] > qwait:
                        continue
                elif check_member and qname not in a.queues:
                    continue
                if pred is not None and not pred(a, t):
                    continue
                out.append(a)
                if len(out) >= k:
                    break
            return out
        ordered = isinstance(src, Bucket)
        agents = src.ordered() if isinstance(src, Bucket) else src
        eligible = []
        for a in agents:
            if (excluded and a.id in excluded) or (held and a.id in held):
                continue
            m = a.queues.get(qname)
            if m is None or m[1] > qwait or (pred is not None and not pred(a, t)):
                continue
            eligible.append(a)
        return select(
            spec.selection,
            eligible,
            k,
            ordered=ordered,
            skills=t.skills,
            best_of=spec.best_of,
            rng=self._rng,
        )


class WaitingLists:
    """Routable tasks by (queue, channel), best first (priority, then age by queue order)."""

    __slots__ = ("_seq", "lists", "size")

    def __init__(self) -> None:
        self._seq = 0
        self.size = 0  # filed tasks in all lists: none means a freed agent has nothing to pull
        self.lists: dict[tuple[str, str], list[Entry]] = {}

    def add(self, t: TaskRec) -> None:
        """File a task that can take (another) offer."""
        q = t.q
        assert q is not None
        k0, k1 = task_key(q.spec.task_order, t.priority, t.created_at)
        self._seq += 1
        entry = (k0, k1, self._seq, t)
        lst = self.lists.get((q.name, t.channel))
        if lst is None:
            self.lists[(q.name, t.channel)] = [entry]
        elif not lst or entry > lst[-1]:
            lst.append(entry)
        else:
            insort(lst, entry)
        t.entry = entry
        self.size += 1

    def remove(self, t: TaskRec) -> None:
        """Unfile a filed task."""
        entry = t.entry
        assert entry is not None
        assert t.q is not None
        lst = self.lists[(t.q.name, t.channel)]
        del lst[bisect_left(lst, entry)]
        t.entry = None
        self.size -= 1

    def best_for(self, a: AgentRec, now: float) -> TaskRec | None:
        """The task this agent should get next, by its queue priorities (Connect style)."""
        aid = a.id
        routable = a.routable
        lists = self.lists
        for group in a.groups:
            best: Entry | None = None
            for qname in group:
                delay = a.queues[qname][1]
                for c in routable:
                    lst = lists.get((qname, c))
                    if not lst:
                        continue
                    for entry in lst:
                        if best is not None and entry >= best:
                            break
                        t = entry[3]
                        if aid in t.excluded or aid in t.res:
                            continue
                        if delay and now - t.entered_at < delay:
                            continue
                        if t.pred is not None and not t.pred(a, t):
                            continue
                        best = entry
                        break
            if best is not None:
                return best[3]
        return None
