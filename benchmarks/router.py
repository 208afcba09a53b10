"""Router benchmark: decisions per second on a synthetic floor at steady state.

Population (seeded): skills come in product lines of five; each agent belongs to one line,
holds 2-5 of its skills (proficiency 1-5 in halves) and, one time in four, one skill of
another line; one queue per line. Each task asks for 1-2 skills of one line (``s7 >= 2 AND
s9 >= 1``), relaxing to "anyone in the queue" after 30 s. Steady state: a task arrives every
10 ms of router time, its offer is accepted at once, and the oldest conversation is completed
whenever more than 80 % of the agents are busy, which frees an agent who then pulls the best
waiting task.

A *decision* is one routing attempt for one task (an offer, or no agent found) plus every
offer made when a freed agent pulls a waiting task. The timed loop includes every router
call (add, accept, complete), so ``decisions_per_s`` is the whole cycle's rate.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections import deque
from dataclasses import dataclass

from routing.core import Router
from routing.events import ReservationCreated
from routing.models import AgentSpec, QueueMembership, QueueSpec, RouterConfig, Step, TaskSpec

LINE = 5  # skills per product line
CHANNEL = "voice"


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchResult:
    """One measured run."""

    agents: int
    skills: int
    decisions: int
    seconds: float
    decisions_per_s: float
    us_per_decision: float
    no_agent_share: float


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
    """Per line, the distinct step lists tasks draw from (a realistic IVR-sized set)."""
    by_line = []
    for line in range(max(1, skills // LINE)):
        base = range(line * LINE, line * LINE + LINE)
        reqs = [f"s{s} >= {t}" for s in base for t in (1, 2, 3)]
        reqs += [f"s{a} >= {t} AND s{b} >= 1" for a in base for b in base if a < b for t in (1, 2)]
        by_line.append([(Step(requirement=r, timeout_s=30.0),) for r in reqs])
    return by_line


def run(
    agents: int, skills: int, *, decisions: int = 200_000, seed: int = 1, warmup: int = 20_000
) -> BenchResult:
    """Measure ``decisions`` decisions after ``warmup`` on a fresh floor."""
    rng = random.Random(seed)
    lines = max(1, skills // LINE)
    config = RouterConfig(wrap_up_s=0.0, task_ttl_s=None, record_stats=False)
    router = Router(config, queues=[QueueSpec(name=f"line{i}") for i in range(lines)])
    for spec in _population(agents, skills, rng):
        router.add_agent(spec, 0.0)
    steps = _requirements(skills)
    busy_target = int(agents * 0.8)
    in_progress: deque[int] = deque()
    # Pre-draw the arrivals so the timed loop measures the router, not the generator.
    total = warmup + decisions
    draws = [(rng.randrange(lines), rng.random()) for _ in range(total)]
    now = 0.0
    made = no_agent = 0
    start = 0.0
    gc.collect()
    for i, (line, u) in enumerate(draws):
        if i == warmup:
            made = no_agent = 0
            start = time.perf_counter()
        now += 0.01
        options = steps[line]
        task = TaskSpec(
            id=i + 1, queue=f"line{line}", channel=CHANNEL, steps=options[int(u * len(options))]
        )
        offered = False
        pending = router.add_task(task, now)
        while pending:
            events = pending
            pending = []
            for ev in events:
                if isinstance(ev, ReservationCreated):
                    made += 1
                    offered = offered or ev.task_id == task.id
                    router.accept(ev.task_id, ev.agent_id, now)
                    in_progress.append(ev.task_id)
            while len(in_progress) > busy_target:
                pending.extend(router.complete_task(in_progress.popleft(), now))
        if not offered:
            no_agent += 1
    seconds = time.perf_counter() - start
    count = made + no_agent
    return BenchResult(
        agents=agents,
        skills=skills,
        decisions=count,
        seconds=seconds,
        decisions_per_s=count / seconds,
        us_per_decision=seconds / count * 1e6,
        no_agent_share=no_agent / count,
    )


def main(argv: list[str] | None = None) -> int:
    """``hub bench router``: print decisions per second (and the 1k -> 10k cost ratio)."""
    parser = argparse.ArgumentParser(
        prog="hub bench router",
        description="Router decisions per second on a seeded synthetic floor at steady state "
        "(arrive, offer, accept, complete). A decision is one routing attempt for one task.",
    )
    parser.add_argument("--agents", type=int, default=10_000, help="agents (default 10000)")
    parser.add_argument("--skills", type=int, default=200, help="distinct skills (default 200)")
    parser.add_argument(
        "--decisions", type=int, default=200_000, help="timed decisions (default 200000)"
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
    main_run = run(args.agents, args.skills, decisions=args.decisions, seed=args.seed)
    data: dict[str, object] = {
        "agents": args.agents,
        "skills": args.skills,
        "decisions": main_run.decisions,
        "decisions_per_s": round(main_run.decisions_per_s),
        "us_per_decision": round(main_run.us_per_decision, 3),
        "no_agent_share": round(main_run.no_agent_share, 4),
    }
    if args.compare_agents:
        base = run(args.compare_agents, args.skills, decisions=args.decisions, seed=args.seed)
        data["compare"] = {
            "agents": args.compare_agents,
            "decisions_per_s": round(base.decisions_per_s),
            "us_per_decision": round(base.us_per_decision, 3),
            "no_agent_share": round(base.no_agent_share, 4),
        }
        data["cost_ratio"] = round(main_run.us_per_decision / base.us_per_decision, 3)
    if not args.no_save:
        from benchmarks.common import write_result

        write_result("router", data)
    if args.json:
        print(json.dumps(data))
    else:
        print(f"router: {args.agents} agents, {args.skills} skills")
        print(f"  decisions/s      {data['decisions_per_s']:>10}")
        print(f"  us per decision  {data['us_per_decision']:>10}")
        if args.compare_agents:
            cmp_ = data["compare"]
            assert isinstance(cmp_, dict)
            print(f"  at {args.compare_agents} agents   {cmp_['decisions_per_s']:>10} decisions/s")
            print(f"  cost ratio       {data['cost_ratio']:>10}  (per decision, vs smaller floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
