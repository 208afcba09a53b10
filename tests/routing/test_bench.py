"""The router benchmark runs end to end on a small floor (its figures are not asserted)."""

from __future__ import annotations

import json

import pytest

from benchmarks import router as bench


def test_bench_prints_decisions_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--agents",
        "300",
        "--skills",
        "50",
        "--decisions",
        "3000",
        "--warmup",
        "500",
        "--json",
        "--no-save",
    ]
    assert bench.main([*args, "--compare-agents", "100"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["decisions_per_s"] > 0
    assert data["decisions"] >= 2000
    assert data["compare"]["agents"] == 100
    assert data["cost_ratio"] > 0


def test_bench_prints_a_summary_without_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--agents",
        "200",
        "--skills",
        "20",
        "--decisions",
        "2000",
        "--warmup",
        "200",
        "--no-save",
    ]
    assert bench.main([*args, "--compare-agents", "0"]) == 0
    assert "decisions/s" in capsys.readouterr().out
