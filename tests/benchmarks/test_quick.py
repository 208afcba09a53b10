"""Every benchmark suite still runs end to end (``hub bench all --quick``), so none rots
between full runs. Figures at this size mean little: the test checks that each suite ran,
wrote its result with the machine description and measured something on both sides of
its ratio, never how fast."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.cli import SUITES

pytestmark = pytest.mark.slow
HUB = Path(sys.executable).with_name("hub")


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def run_quick(out: Path) -> None:
    env = {**os.environ, "HUB_BENCH_RESULTS": str(out)}
    done = subprocess.run(
        [str(HUB), "bench", "--quick", "all"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def load(results: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((results / f"{name}.json").read_text())
    assert data["benchmark"] == name
    machine = data["machine"]
    assert machine["cpus"] >= 1
    assert machine["python"]
    assert "aiohttp" in machine["libraries"]
    assert len(machine["load_average"]) == 3
    return data


def check_every_suite_wrote_a_result(results: Path) -> None:
    written = {p.stem for p in results.glob("*.json")}
    assert set(SUITES) <= {w.split("_")[0] for w in written}, written


def check_router(results: Path) -> None:
    data = load(results, "router")
    text = json.dumps(data)
    assert "decisions_per_s" in text
    assert _positive(data.get("decisions_per_s") or data["runs"][0]["decisions_per_s"])


def check_ingest(results: Path) -> None:
    data = load(results, "ingest")
    assert _positive(data["hub_per_s"])
    assert _positive(data["baseline_per_s"])
    assert data["ratio"] == pytest.approx(data["hub_per_s"] / data["baseline_per_s"], rel=0.01)
    on_postgres = load(results, "ingest_postgresql")
    assert on_postgres["database"].startswith("postgresql")
    assert _positive(on_postgres["hub_per_s"])
    assert _positive(on_postgres["baseline_per_s"])


def check_postgres_suites(results: Path) -> None:
    history = load(results, "history")
    assert _positive(history["first_page_ms_small"]["median"])
    assert _positive(history["first_page_ms_large"]["median"])
    reports = load(results, "reports")
    assert reports["report_ms"]
    assert all(_positive(v["median"]) for v in reports["report_ms"].values())


def check_latency_chat_scale(results: Path) -> None:
    latency = json.dumps(load(results, "latency_1_supervisors"))
    assert "p99" in latency
    chat = load(results, "chat")
    assert "baseline" in json.dumps(chat)
    scale = load(results, "scale")
    assert [r["processes"] for r in scale["rounds"]] == [1, 2]
    assert all(_positive(r["contacts_per_s"]) for r in scale["rounds"])
    mail = load(results, "mail")
    assert mail["hub"]["failures"] == 0
    assert _positive(mail["hub"]["per_s"])
    fanout = load(results, "fanout")
    assert [r["sockets"] for r in fanout["results"]] == [50, 200]
    for row in fanout["results"]:
        assert _positive(row["hub_last_ms"]["median"])
        assert _positive(row["baseline_last_ms"]["median"])


def test_every_suite_runs_quick_and_measures_both_sides(
    tmp_path: Path, redis_url: str, pg_url: str
) -> None:
    run_quick(tmp_path)
    check_every_suite_wrote_a_result(tmp_path)
    check_router(tmp_path)
    check_ingest(tmp_path)
    check_postgres_suites(tmp_path)
    check_latency_chat_scale(tmp_path)
    # --plot draws every chart from those results.
    from benchmarks.plot import draw

    drawn = draw(tmp_path)
    # (no "mail" chart: the quick run skips the peer it compares with)
    assert {p.stem for p in drawn} == {"ingest", "router", "history", "fanout", "scale", "latency"}
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in drawn)
