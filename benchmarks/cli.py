"""``hub bench SUITE``: benchmarks reported as ratios against baselines measured in the same run."""

from __future__ import annotations

import argparse
import importlib

SUITES = {
    "router": ("benchmarks.router", "router decisions per second at 1k and 10k agents"),
    "ingest": ("benchmarks.ingest", "signed SMS webhook ingest vs a bare one-row insert handler"),
    "latency": ("benchmarks.latency", "inbound -> agent websocket frame latency, 500 agents"),
    "chat": ("benchmarks.chat", "web chat: N concurrent visitor sockets, message round trip"),
    "history": ("benchmarks.history", "first history page at 10k vs 1M messages (PostgreSQL)"),
    "reports": ("benchmarks.reports", "KPI reports over 1M events (PostgreSQL)"),
    "scale": ("benchmarks.scale", "contacts/s with 1, 2, 3 processes on PostgreSQL + Redis"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hub bench",
        description="Run a benchmark suite; results go to benchmarks/results/<suite>.json.",
    )
    parser.add_argument("suite", choices=[*SUITES, "all"], help="which benchmark to run")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="options of the suite (--help)")
    args = parser.parse_args(argv)
    names = list(SUITES) if args.suite == "all" else [args.suite]
    code = 0
    for name in names:
        module = importlib.import_module(SUITES[name][0])
        code = module.main(args.rest if args.suite != "all" else []) or code
    return code
