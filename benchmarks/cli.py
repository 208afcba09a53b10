"""``hub bench SUITE``: benchmarks reported as ratios against baselines measured in the same run."""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path

SUITES = {
    "router": ("benchmarks.router", "router decisions per second at 1k and 10k agents"),
    "ingest": ("benchmarks.ingest", "signed SMS webhooks vs a bare one-row handler (SQLite, PG)"),
    "latency": ("benchmarks.latency", "inbound -> agent websocket frame latency, 500 agents"),
    "chat": ("benchmarks.chat", "web chat: N concurrent visitor sockets, message round trip"),
    "history": ("benchmarks.history", "first history page at 10k vs 1M messages (PostgreSQL)"),
    "reports": ("benchmarks.reports", "KPI reports over 1M events (PostgreSQL)"),
    "scale": ("benchmarks.scale", "contacts/s with 1, 2, 3 processes on PostgreSQL + Redis"),
    "fanout": ("benchmarks.fanout", "one event to 100/1,000/3,000 sockets vs websockets.broadcast"),
    "mail": ("benchmarks.mail", "email over SMTP, stored and threaded, vs django-helpdesk"),
}

# Each suite at a size that proves it still runs end to end (all of them in about 40 s on two
# cores): a test runs them so none breaks unnoticed. The figures mean little at this size.
QUICK: dict[str, list[str]] = {
    "router": ["--agents", "1000", "--skills", "50", "--decisions", "5000", "--warmup", "1000",
               "--compare-agents", "100"],
    "ingest": ["--requests", "300", "--concurrency", "8", "--customers", "50", "--rounds", "1"],
    "latency": ["--agents", "20", "--supervisors", "1", "--rate", "100", "--messages", "30"],
    "chat": ["--visitors", "50", "--messages", "50", "--rate", "50"],
    "history": ["--small", "1000", "--large", "5000", "--customers", "50", "--runs", "5"],
    "reports": ["--events", "5000", "--runs", "2"],
    "scale": ["--processes", "1,2", "--messages", "200"],
    "fanout": ["--sizes", "50,200", "--rounds", "3"],
    "mail": ["--mails", "100", "--no-peer"],
}  # fmt: skip
QUICK_RESULTS = Path(__file__).with_name("results") / "quick"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hub bench",
        description="Run a benchmark suite; results go to benchmarks/results/<suite>.json.",
        epilog="suites:\n"
        + "\n".join(f"  {name:<9} {help_}" for name, (_, help_) in SUITES.items())
        + "\n\nbenchmarks/README.md has each suite's method, target and latest figure.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, to check a suite still works (results in benchmarks/results/quick/, "
        "or HUB_BENCH_RESULTS)",
    )
    parser.add_argument(
        "--plot",
        action="store_true",
        help="draw PNG charts of the results (after the suite, if one is named) into "
        "<results>/plots/ (needs matplotlib: the plot extra)",
    )
    parser.add_argument("suite", nargs="?", choices=[*SUITES, "all"], help="which benchmark to run")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="options of the suite (--help)")
    raw = list(argv) if argv is not None else None
    quick = False
    if raw is not None and "--quick" in raw:  # accepted after the suite's name too
        raw.remove("--quick")
        quick = True
    args = parser.parse_args(raw)
    quick = quick or args.quick
    if "--quick" in args.rest:
        args.rest.remove("--quick")
        quick = True
    if quick:
        os.environ.setdefault("HUB_BENCH_RESULTS", str(QUICK_RESULTS))
    if args.suite is None and not args.plot:
        parser.error("name a suite (or all), or --plot")
    names = list(SUITES) if args.suite == "all" else [args.suite] if args.suite else []
    code = 0
    for name in names:
        module = importlib.import_module(SUITES[name][0])
        extra = args.rest if args.suite != "all" else []
        code = module.main([*(QUICK[name] if quick else []), *extra]) or code
    if args.plot:
        from benchmarks.plot import draw

        for path in draw():
            print(f"drew {path}")
    return code
