"""Shared benchmark plumbing: machine description, percentiles, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

RESULTS = Path(__file__).with_name("results")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "load_average": load,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": _versions(),
    }


LIBRARIES = ("aiohttp", "sqlalchemy", "asyncpg", "aiosqlite", "websockets", "redis", "orjson")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def results_dir() -> Path:
    """``benchmarks/results``, or ``HUB_BENCH_RESULTS`` (quick runs write apart, so they never
    replace the full figures that are committed)."""
    return Path(os.environ.get("HUB_BENCH_RESULTS") or RESULTS)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": statistics.median(values) if values else float("nan"),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Store a result as ``<results_dir>/<name>.json`` with the machine description."""
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    payload = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **data,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


async def pg_admin(sql: str, url: str) -> None:
    """Run one administrative statement (CREATE/DROP DATABASE) on a PostgreSQL server."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


PauseCounts = dict[str, dict[str, float]]


async def pause_counts(http: aiohttp.ClientSession, base: str) -> PauseCounts:
    """The hub's cumulative loop-lag and GC-pause histograms, read from ``/metrics``:
    per series, the count, total seconds and how many exceeded 10, 25 and 50 ms."""
    async with http.get(f"{base}/metrics") as resp:
        text = await resp.text()
    out: PauseCounts = {}
    for family in text_string_to_metric_families(text):
        if family.name not in ("hub_event_loop_lag_seconds", "hub_gc_pause_seconds"):
            continue
        for sample in family.samples:
            gen = sample.labels.get("generation")
            key = "loop_lag" if gen is None else f"gc_gen{gen}"
            series = out.setdefault(key, {})
            if sample.name.endswith("_count"):
                series["n"] = sample.value
            elif sample.name.endswith("_sum"):
                series["total_s"] = sample.value
            elif sample.name.endswith("_bucket") and sample.labels["le"] in LIMITS:
                series[f"le_{LIMITS[sample.labels['le']]}"] = sample.value
    return out


LIMITS = {"0.01": "10ms", "0.025": "25ms", "0.05": "50ms"}


def pause_delta(before: PauseCounts, after: PauseCounts) -> dict[str, dict[str, float]]:
    """What happened between two ``pause_counts`` readings, as counts over each limit."""
    report: dict[str, dict[str, float]] = {}
    for key, series in after.items():
        old = before.get(key, {})
        n = series.get("n", 0) - old.get("n", 0)
        row: dict[str, float] = {
            "n": n,
            "total_ms": round((series.get("total_s", 0) - old.get("total_s", 0)) * 1000, 1),
        }
        for label in LIMITS.values():
            within = series.get(f"le_{label}", 0) - old.get(f"le_{label}", 0)
            row[f"over_{label}"] = n - within
        report[key] = row
    return report
