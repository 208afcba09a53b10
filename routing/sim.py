"""``hub simulate``: drive the real router on simulated time (simpy) and compare with Erlang C.

Method: one queue, identical single-skill agents (voice capacity 1), FIFO, longest-idle or
random selection. Contacts arrive as a Poisson process; each offer is accepted after the
offer latency (ring time); handle times are exponential; no wrap-up and no abandonment, so
the system is M/M/c. Every arrival, acceptance and completion is a call to the same
``routing.core.Router`` the hub uses; the simulator only keeps the clock. The first 5 % of
contacts (warm-up) are dropped; replications use independent seeds and run in parallel.

Measures per replication: P(wait) is the share of contacts not offered at once; ASA the mean
time from arrival to acceptance (ring time included); SL20 the share accepted within 20 s;
occupancy the share of agent time held by offers, calls and wrap-up inside the measured
window. The Erlang C column treats ring time as part of the handle time (AHT + latency),
adds it to the ASA and takes it off the SL threshold.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial

import simpy

from routing import erlang
from routing.core import Router
from routing.events import Event, ReservationCreated, TaskAssigned
from routing.models import AgentSpec, QueueMembership, QueueSpec, RouterConfig, Selection, TaskSpec
from routing.stats import service_level

QUEUE = "sim"
CHANNEL = "voice"


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """One simulated queue."""

    agents: int = 13
    arrivals_per_hour: float = 200.0
    aht_s: float = 180.0
    contacts: int = 100_000
    offer_latency_s: float = 0.0
    selection: Selection = "longest_idle"
    warmup_share: float = 0.05
    sl_threshold_s: float = 20.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Replication:
    """Measures of one replication (warm-up dropped)."""

    seed: int
    measured: int
    p_wait: float
    asa_s: float
    sl20: float
    occupancy: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    """Erlang C for the same queue (ring time counted as handle time)."""

    p_wait: float
    asa_s: float
    sl20: float
    occupancy: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SimResult:
    """Replication means and standard deviations beside Erlang C."""

    config: SimConfig
    replications: tuple[Replication, ...]
    p_wait: float
    asa_s: float
    sl20: float
    occupancy: float
    sd: dict[str, float]
    erlang_c: Prediction
    seconds: float


def predict(cfg: SimConfig) -> Prediction:
    """Erlang C predictions; the offer latency holds an agent like talk time does."""
    held = cfg.aht_s + cfg.offer_latency_s
    a = erlang.traffic(cfg.arrivals_per_hour, held)
    threshold = cfg.sl_threshold_s - cfg.offer_latency_s
    sl = erlang.service_level(cfg.agents, a, held, threshold) if threshold >= 0 else 0.0
    return Prediction(
        p_wait=erlang.p_wait(cfg.agents, a),
        asa_s=erlang.asa(cfg.agents, a, held) + cfg.offer_latency_s,
        sl20=sl,
        occupancy=erlang.occupancy(cfg.agents, a),
    )


def replicate(cfg: SimConfig, seed: int) -> Replication:
    """Run one replication of ``cfg`` with ``seed``."""
    rng = random.Random(seed)
    pick = random.Random(seed ^ 0x5EED)
    env = simpy.Environment()
    router = Router(
        RouterConfig(offer_timeout_s=1e12, wrap_up_s=0.0, task_ttl_s=None, record_stats=False),
        queues=[QueueSpec(name=QUEUE, selection=cfg.selection)],
        rng=pick.random,
    )
    member = {QUEUE: QueueMembership()}
    for agent_id in range(cfg.agents):
        router.add_agent(
            AgentSpec(
                id=agent_id,
                capacity={CHANNEL: 1},
                queues=member,
                state="available",
                idle_since=0.0,
            ),
            0.0,
        )
    n = cfg.contacts
    arrival = [math.nan] * n
    offered = [math.nan] * n
    answered = [math.nan] * n
    done = [math.nan] * n
    rate = cfg.arrivals_per_hour / 3600.0
    mean_handle = cfg.aht_s
    latency = cfg.offer_latency_s

    def complete(task_id: int) -> None:
        done[task_id] = env.now
        handle(router.complete_task(task_id, env.now, wrap_up_s=0.0))

    def accept(task_id: int, agent_id: int) -> None:
        for ev in router.accept(task_id, agent_id, env.now):
            if isinstance(ev, TaskAssigned):
                answered[task_id] = arrival[task_id] + ev.wait_s
        talk = env.timeout(rng.expovariate(1.0 / mean_handle))
        talk.callbacks.append(lambda _: complete(task_id))

    def rung(task_id: int, agent_id: int, _: object) -> None:
        accept(task_id, agent_id)

    def handle(events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, ReservationCreated):
                offered[ev.task_id] = env.now
                if latency > 0:
                    ring = env.timeout(latency)
                    ring.callbacks.append(partial(rung, ev.task_id, ev.agent_id))
                else:
                    accept(ev.task_id, ev.agent_id)

    def arrivals() -> simpy.events.ProcessGenerator:
        for task_id in range(n):
            yield env.timeout(rng.expovariate(rate))
            arrival[task_id] = env.now
            handle(router.add_task(TaskSpec(id=task_id, queue=QUEUE, channel=CHANNEL), env.now))

    env.process(arrivals())
    env.run()
    first = int(n * cfg.warmup_share)
    waits = [answered[i] - arrival[i] for i in range(first, n)]
    queued = sum(1 for i in range(first, n) if offered[i] > arrival[i])
    # Occupancy inside the measured window: agent time held from offer to completion.
    start, end = arrival[first], arrival[n - 1]
    held = sum(
        max(0.0, min(done[i], end) - max(offered[i], start))
        for i in range(n)
        if done[i] > start and offered[i] < end
    )
    measured = n - first
    return Replication(
        seed=seed,
        measured=measured,
        p_wait=queued / measured,
        asa_s=statistics.fmean(waits),
        sl20=service_level(waits, [], cfg.sl_threshold_s) or 0.0,
        occupancy=held / (cfg.agents * (end - start)),
    )


def _replicate_args(args: tuple[SimConfig, int]) -> Replication:
    return replicate(*args)


def replication_seeds(seed: int, replications: int) -> list[int]:
    """Independent, reproducible seeds for each replication."""
    master = random.Random(seed)
    return [master.getrandbits(63) for _ in range(replications)]


def simulate(cfg: SimConfig, replications: int, *, seed: int = 1, workers: int = 2) -> SimResult:
    """Run ``replications`` seeded replications (in parallel processes when asked)."""
    started = time.perf_counter()
    jobs = [(cfg, s) for s in replication_seeds(seed, replications)]
    if workers > 1 and replications > 1:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(min(workers, replications)) as pool:
            reps = pool.map(_replicate_args, jobs, chunksize=1)
    else:
        reps = [_replicate_args(job) for job in jobs]

    def mean(name: str) -> float:
        return statistics.fmean(getattr(r, name) for r in reps)

    def sd(name: str) -> float:
        return statistics.stdev(getattr(r, name) for r in reps) if len(reps) > 1 else 0.0

    names = ("p_wait", "asa_s", "sl20", "occupancy")
    return SimResult(
        config=cfg,
        replications=tuple(reps),
        p_wait=mean("p_wait"),
        asa_s=mean("asa_s"),
        sl20=mean("sl20"),
        occupancy=mean("occupancy"),
        sd={name: sd(name) for name in names},
        erlang_c=predict(cfg),
        seconds=time.perf_counter() - started,
    )


def to_json(result: SimResult, seed: int) -> dict[str, object]:
    """The ``--json`` object: replication means beside Erlang C."""
    cfg = result.config
    return {
        "agents": cfg.agents,
        "arrivals_per_hour": cfg.arrivals_per_hour,
        "aht_s": cfg.aht_s,
        "contacts": cfg.contacts,
        "replications": len(result.replications),
        "seed": seed,
        "offer_latency_s": cfg.offer_latency_s,
        "selection": cfg.selection.replace("_", "-"),
        "warmup_share": cfg.warmup_share,
        "p_wait": round(result.p_wait, 5),
        "asa_s": round(result.asa_s, 3),
        "sl20": round(result.sl20, 5),
        "occupancy": round(result.occupancy, 5),
        "sd": {k: round(v, 5) for k, v in result.sd.items()},
        "erlang_c": {k: round(v, 5) for k, v in asdict(result.erlang_c).items()},
        "seconds": round(result.seconds, 2),
    }


def _table(result: SimResult) -> str:
    cfg, ec = result.config, result.erlang_c
    rows = [
        ("P(wait)", result.p_wait, result.sd["p_wait"], ec.p_wait, "{:.4f}"),
        ("ASA (s)", result.asa_s, result.sd["asa_s"], ec.asa_s, "{:.2f}"),
        (f"SL{cfg.sl_threshold_s:g}", result.sl20, result.sd["sl20"], ec.sl20, "{:.4f}"),
        ("occupancy", result.occupancy, result.sd["occupancy"], ec.occupancy, "{:.4f}"),
    ]
    lines = [
        f"{cfg.agents} agents, {cfg.arrivals_per_hour:g}/h, AHT {cfg.aht_s:g} s, "
        f"offer latency {cfg.offer_latency_s:g} s, {cfg.selection.replace('_', '-')}; "
        f"{len(result.replications)} x {cfg.contacts} contacts ({cfg.warmup_share:.0%} warm-up "
        f"dropped) in {result.seconds:.1f} s",
        f"{'metric':<10} {'simulated':>10} {'sd':>9} {'Erlang C':>10}",
    ]
    for name, value, spread, pred, fmt in rows:
        lines.append(
            f"{name:<10} {fmt.format(value):>10} {fmt.format(spread):>9} {fmt.format(pred):>10}"
        )
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    """``hub simulate``: print replication means beside Erlang C."""
    parser = argparse.ArgumentParser(
        prog="hub simulate",
        description="Drive the router on simulated time (simpy): Poisson arrivals, exponential "
        "handle times, one skill, identical agents, FIFO. The first 5% of contacts are "
        "dropped as warm-up; the means of seeded replications are printed beside Erlang C.",
        epilog="Example: hub simulate --agents 13 --arrivals-per-hour 200 --aht 180 "
        "--contacts 100000 --replications 20 --json",
    )
    parser.add_argument("--agents", type=_positive_int, default=13, help="agents (default 13)")
    parser.add_argument(
        "--arrivals-per-hour", type=float, default=200.0, help="arrival rate (default 200)"
    )
    parser.add_argument(
        "--aht", type=float, default=180.0, metavar="SECONDS", help="mean handle time (180)"
    )
    parser.add_argument(
        "--contacts",
        type=_positive_int,
        default=100_000,
        help="contacts per replication (default 100000)",
    )
    parser.add_argument(
        "--replications", type=_positive_int, default=1, help="seeded replications (default 1)"
    )
    parser.add_argument("--seed", type=int, default=1, help="master seed (default 1)")
    parser.add_argument(
        "--offer-latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="time from offer to accept, the agent's ring time (default 0)",
    )
    parser.add_argument(
        "--selection",
        choices=["longest-idle", "random"],
        default="longest-idle",
        help="agent selection policy (default longest-idle)",
    )
    parser.add_argument(
        "--workers", type=_positive_int, default=2, help="parallel processes (default 2)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    selection: Selection = "random" if args.selection == "random" else "longest_idle"
    cfg = SimConfig(
        agents=args.agents,
        arrivals_per_hour=args.arrivals_per_hour,
        aht_s=args.aht,
        contacts=args.contacts,
        offer_latency_s=args.offer_latency,
        selection=selection,
    )
    if erlang.traffic(cfg.arrivals_per_hour, cfg.aht_s + cfg.offer_latency_s) >= cfg.agents:
        parser.error("offered load reaches the number of agents: the queue would grow forever")
    result = simulate(cfg, args.replications, seed=args.seed, workers=args.workers)
    print(json.dumps(to_json(result, args.seed)) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
