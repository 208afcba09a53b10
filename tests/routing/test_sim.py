"""The simulator drives the real router on simulated time and reproduces Erlang C."""

from __future__ import annotations

import json
import math

import pytest

from routing import sim
from routing.sim import SimConfig, predict, simulate

# Spread of one replication at c = 13, measured: contacts -> (P(wait), ASA, SL20) sd.
SD_TABLE = {10_000: (0.028, 3.8, 0.027), 100_000: (0.0087, 1.4, 0.0085)}


def tolerance(contacts: int, replications: int) -> tuple[float, float, float]:
    """±3 sd/√R, the sd interpolated log-log between the measured table rows."""
    (n0, s0), (n1, s1) = sorted(SD_TABLE.items())
    w = (math.log(contacts) - math.log(n0)) / (math.log(n1) - math.log(n0))
    sds = [
        math.exp(math.log(a) + w * (math.log(b) - math.log(a))) for a, b in zip(s0, s1, strict=True)
    ]
    p, asa, sl = (3 * sd / math.sqrt(replications) for sd in sds)
    return p, asa, sl


def test_tolerance_matches_the_reference_at_the_full_configuration() -> None:
    p, asa, sl = tolerance(100_000, 20)
    assert p == pytest.approx(0.0058, abs=1e-4)
    assert sl == pytest.approx(0.0057, abs=1e-4)
    assert asa == pytest.approx(0.94, abs=0.01)


@pytest.mark.parametrize("selection", ["longest_idle", "random"])
def test_a_small_simulation_reproduces_erlang_c(selection: str) -> None:
    cfg = SimConfig(contacts=20_000, selection=selection)  # type: ignore[arg-type]
    result = simulate(cfg, 4, seed=7, workers=2)
    p, asa, sl = tolerance(20_000, 4)
    assert result.p_wait == pytest.approx(0.2853, abs=p)
    assert result.asa_s == pytest.approx(17.12, abs=asa)
    assert result.sl20 == pytest.approx(0.7956, abs=sl)
    assert result.occupancy == pytest.approx(10 / 13, abs=0.01)
    assert len(result.replications) == 4
    assert all(r.measured == 19_000 for r in result.replications)


def test_offer_latency_raises_the_wait_like_a_longer_handle_time() -> None:
    cfg = SimConfig(contacts=20_000, offer_latency_s=5.0)
    result = simulate(cfg, 4, seed=3, workers=2)
    p, asa, sl = tolerance(20_000, 4)
    assert result.erlang_c.p_wait == pytest.approx(0.330, abs=0.001)
    assert result.p_wait == pytest.approx(0.33, abs=p)
    assert result.asa_s == pytest.approx(result.erlang_c.asa_s, abs=asa * 1.5)
    assert result.sl20 == pytest.approx(result.erlang_c.sl20, abs=sl)


def test_replications_are_reproducible_and_independent() -> None:
    cfg = SimConfig(contacts=2_000)
    one = sim.replicate(cfg, 11)
    assert sim.replicate(cfg, 11) == one
    assert sim.replicate(cfg, 12) != one
    seeds = sim.replication_seeds(1, 3)
    assert seeds == sim.replication_seeds(1, 3)
    assert len(set(seeds)) == 3


def test_prediction_covers_ring_time() -> None:
    base = predict(SimConfig())
    assert round(base.p_wait, 4) == 0.2853
    assert round(base.sl20, 4) == 0.7956
    slow = predict(SimConfig(offer_latency_s=25.0))
    assert slow.sl20 == 0.0
    assert slow.asa_s > base.asa_s + 25


def test_cli_prints_one_json_object_with_erlang_c_beside(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = sim.main(
        ["--contacts", "3000", "--replications", "2", "--workers", "1", "--seed", "5", "--json"]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert {"p_wait", "asa_s", "sl20", "occupancy", "erlang_c"} <= data.keys()
    assert set(data["erlang_c"]) >= {"p_wait", "asa_s", "sl20"}
    assert data["replications"] == 2
    assert data["selection"] == "longest-idle"


def test_cli_prints_a_table_without_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim.main(["--contacts", "2000", "--selection", "random", "--offer-latency", "2"]) == 0
    out = capsys.readouterr().out
    assert "Erlang C" in out
    assert "P(wait)" in out
    assert "random" in out


def test_cli_refuses_an_overloaded_queue(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        sim.main(["--agents", "10", "--contacts", "100"])
    assert "grow forever" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sim.main(["--replications", "0"])


@pytest.mark.slow
def test_full_conformance_twenty_replications_of_100k_contacts() -> None:
    result = simulate(SimConfig(contacts=100_000), 20, seed=1, workers=2)
    assert result.p_wait == pytest.approx(0.2853, abs=0.006)
    assert result.sl20 == pytest.approx(0.7956, abs=0.006)
    assert result.asa_s == pytest.approx(17.12, abs=1.0)
