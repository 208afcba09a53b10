"""Router benchmark: decisions per second on a synthetic floor at steady state.

Population (seeded): skills come in product lines of five; each agent belongs to one line,
holds 2-5 of its skills (proficiency 1-5 in halves) and, one time in four, one skill of
another line; one queue per line. Each task asks for 1-2 skills of one line (``s7 >= 2 AND
s9 >= 1``), relaxing to "anyone in the queue" after 30 s. Demand per line follows headcount.
Steady state: a task arrives every 40 ms of router time, its offer is accepted at once, and
the oldest conversation is completed whenever more than 80 % of the agents are busy, which
frees an agent who then pulls the best waiting task, if any.

A *decision* routes one task: an offer, or "no agent" (a task-driven attempt), plus every
offer a freed agent makes by pulling a waiting task. Three rates are reported:

- ``decisions_per_s``: decisions per second of the routing step itself (the router's
  ``_drain``: pick the candidate bucket, walk it, create the reservation and its event);
- ``add_task_per_s``: tasks per second of ``add_task`` calls (intake, task-created event,
  steps and the decision);
- ``cycles_per_s``: tasks per second of all router calls (add, accept, complete).

Rates are medians over ten chunks of the timed loop; ``best_decisions_per_s`` is the fastest
chunk (noise from a shared machine only ever slows a chunk down).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass

from routing.core import Router
from routing.events import ReservationCreated
from routing.models import AgentSpec, QueueMembership, QueueSpec, RouterConfig, Step, TaskSpec
from routing.records import TaskRec

LINE = 5  # skills per product line
CHANNEL = "voice"
CHUNKS = 10
# Router time between arrivals: 25 contacts/s, what a 10,000-seat floor with a 5-minute
# handle time at 80 % occupancy receives (it sizes the stats window and deadline heap).
TICK_S = 0.04


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchResult:
    """One measured run (rates are medians over equal chunks of the timed loop)."""

    agents: int
    skills: int
    decisions: int
    decisions_per_s: float
    best_decisions_per_s: float
    us_per_decision: float
    add_task_per_s: float
    cycles_per_s: float
    no_agent_share: float


class TimedRouter(Router):
    """A router that clocks its routing step; the benchmark's only instrument."""

    def __init__(self, config: RouterConfig, queues: list[QueueSpec]) -> None:
        super().__init__(config, queues=queues)
        self.routing_s = 0.0
        self.attempts = 0
        self.misses = 0

    def _drain(self, at: float) -> None:
        start = time.perf_counter()
        super()._drain(at)
        self.routing_s += time.perf_counter() - start

    def _route_task(self, t: TaskRec, at: float) -> None:
        before = len(t.res)
        super()._route_task(t, at)
        self.attempts += 1
        if len(t.res) == before and t.agent is None:
            self.misses += 1


def _population(agents: int, skills: int, rng: random.Random) -> list[AgentSpec]:
    lines = max(1, skills // LINE)
    out = []
    for agent_id in range(1, agents + 1):
        line = rng.randrange(lines)
        own = rng.sample(range(line * LINE, line * LINE + LINE), rng.randint(2, min(5, LINE)))
        queues = {f"line{line}": QueueMembership()}
        if rng.random() < 0.25:
            other = rng.randrange(lines)
            own.append(rng.randrange(other * LINE, other * LINE + LINE))
            queues[f"line{other}"] = QueueMembership(priority=2)
        out.append(
            AgentSpec(
                id=agent_id,
                skills={f"s{s}": rng.randint(2, 10) / 2 for s in own},
                capacity={CHANNEL: 1},
                queues=queues,
                state="available",
                idle_since=0.0,
            )
        )
    return out


def _requirements(skills: int) -> list[list[tuple[Step, ...]]]:
    """Per line, the distinct step lists tasks draw from (an IVR-sized set)."""
    by_line = []
    for line in range(max(1, skills // LINE)):
        base = range(line * LINE, line * LINE + LINE)
        reqs = [f"s{s} >= {t}" for s in base for t in (1, 2, 3)]
        reqs += [f"s{a} >= {t} AND s{b} >= 1" for a in base for b in base if a < b for t in (1, 2)]
        options: list[tuple[Step, ...]] = [(Step(requirement=r, timeout_s=30.0),) for r in reqs]
        by_line.append(options)
    return by_line


def pick(options: list[tuple[Step, ...]], u: float) -> tuple[Step, ...]:
    """One of a line's step lists."""
    return options[int(u * len(options))]


def run(
    agents: int, skills: int, *, decisions: int = 200_000, seed: int = 1, warmup: int = 20_000
) -> BenchResult:
    """Measure about ``decisions`` decisions after ``warmup`` tasks on a fresh floor."""
    rng = random.Random(seed)
    lines = max(1, skills // LINE)
    config = RouterConfig(wrap_up_s=0.0, task_ttl_s=None)
    router = TimedRouter(config, [QueueSpec(name=f"line{i}") for i in range(lines)])
    population = _population(agents, skills, rng)
    for spec in population:
        router.add_agent(spec, 0.0)
    home_lines = [int(next(iter(spec.queues))[4:]) for spec in population]
    steps = _requirements(skills)
    busy_target = int(agents * 0.8)
    in_progress: deque[int] = deque()
    chunk = max(1, decisions // CHUNKS)
    rates: dict[str, list[float]] = {"decide": [], "add": [], "cycle": []}
    totals = {"decisions": 0, "misses": 0}
    perf = time.perf_counter
    now = 0.0
    add_s = cycle_s = 0.0
    made = 0
    mark = (0.0, 0.0, 0.0, 0, 0)

    def close_chunk(tasks: int) -> None:
        n = made - mark[3] + router.misses - mark[4]
        rates["decide"].append(n / (router.routing_s - mark[0]))
        rates["add"].append(tasks / (add_s - mark[1]))
        rates["cycle"].append(tasks / (cycle_s - mark[2]))
        totals["decisions"] += n
        totals["misses"] += router.misses - mark[4]

    gc.collect()
    for i in range(warmup + decisions):
        if i >= warmup and (i - warmup) % chunk == 0:
            if i > warmup:
                close_chunk(chunk)
            mark = (router.routing_s, add_s, cycle_s, made, router.misses)
        # The arrival is built off the clock: the hub builds it too.
        line = rng.choice(home_lines)
        task = TaskSpec(
            id=i + 1, queue=f"line{line}", channel=CHANNEL, steps=pick(steps[line], rng.random())
        )
        now += TICK_S
        start = perf()
        pending = router.add_task(task, now)
        took = perf() - start
        add_s += took
        cycle_s += took
        while pending:
            events = pending
            pending = []
            for ev in events:
                if isinstance(ev, ReservationCreated):
                    made += 1
                    start = perf()
                    router.accept(ev.task_id, ev.agent_id, now)
                    cycle_s += perf() - start
                    in_progress.append(ev.task_id)
            while len(in_progress) > busy_target:
                start = perf()
                pending.extend(router.complete_task(in_progress.popleft(), now))
                cycle_s += perf() - start
    close_chunk(decisions - chunk * (len(rates["decide"])))  # the last one ends with the loop
    decide = statistics.median(rates["decide"])
    return BenchResult(
        agents=agents,
        skills=skills,
        decisions=totals["decisions"],
        decisions_per_s=decide,
        best_decisions_per_s=max(rates["decide"]),
        us_per_decision=1e6 / decide,
        add_task_per_s=statistics.median(rates["add"]),
        cycles_per_s=statistics.median(rates["cycle"]),
        no_agent_share=totals["misses"] / max(1, totals["decisions"]),
    )


def _rounded(result: BenchResult) -> dict[str, object]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(result).items()}


def main(argv: list[str] | None = None) -> int:
    """``hub bench router``: print decisions per second (and the cost ratio to a smaller floor)."""
    parser = argparse.ArgumentParser(
        prog="hub bench router",
        description="Router decisions per second on a seeded synthetic floor at steady state "
        "(tasks arrive, are offered, accepted and completed; freed agents pull waiting work).",
    )
    parser.add_argument("--agents", type=int, default=10_000, help="agents (default 10000)")
    parser.add_argument("--skills", type=int, default=200, help="distinct skills (default 200)")
    parser.add_argument(
        "--decisions", type=int, default=200_000, help="timed tasks (default 200000)"
    )
    parser.add_argument(
        "--warmup", type=int, default=20_000, help="untimed tasks first (default 20000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="population and arrival seed")
    parser.add_argument(
        "--compare-agents",
        type=int,
        default=1_000,
        metavar="N",
        help="also run N agents and report the per-decision cost ratio (0: skip; default 1000)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--no-save", action="store_true", help="do not write benchmarks/results/router.json"
    )
    args = parser.parse_args(argv)
    main_run = run(
        args.agents, args.skills, decisions=args.decisions, seed=args.seed, warmup=args.warmup
    )
    data = _rounded(main_run)
    if args.compare_agents:
        base = run(
            args.compare_agents,
            args.skills,
            decisions=args.decisions,
            seed=args.seed,
            warmup=args.warmup,
        )
        data["compare"] = _rounded(base)
        data["cost_ratio"] = round(main_run.us_per_decision / base.us_per_decision, 3)
    if not args.no_save:
        from benchmarks.common import write_result

        write_result("router", data)
    if args.json:
        print(json.dumps(data))
        return 0
    print(f"router: {args.agents} agents, {args.skills} skills, {main_run.decisions} decisions")
    print(f"  decisions/s        {main_run.decisions_per_s:>12,.0f}  (routing step)")
    print(f"  best chunk         {main_run.best_decisions_per_s:>12,.0f}  (routing step)")
    print(f"  add_task/s         {main_run.add_task_per_s:>12,.0f}  (intake + decision)")
    print(f"  cycles/s           {main_run.cycles_per_s:>12,.0f}  (add + accept + complete)")
    if args.compare_agents:
        print(f"  at {args.compare_agents} agents: {data['compare']}")
        print(f"  cost ratio         {data['cost_ratio']:>12}  (per decision, vs smaller floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
