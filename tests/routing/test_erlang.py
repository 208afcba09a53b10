"""Erlang C against a published table of P(wait), to four decimals."""

from __future__ import annotations

import math

import pytest

from routing import erlang


@pytest.mark.parametrize(
    ("agents", "p_wait", "asa_s", "sl20"),
    [(12, 0.4494, 40.44, 0.6402), (13, 0.2853, 17.12, 0.7956), (14, 0.1741, 7.84, 0.8884)],
)
def test_reference_table_at_200_per_hour_and_180_seconds(
    agents: int, p_wait: float, asa_s: float, sl20: float
) -> None:
    a = erlang.traffic(200, 180)
    assert a == pytest.approx(10.0)
    assert round(erlang.p_wait(agents, a), 4) == p_wait
    assert round(erlang.asa(agents, a, 180), 2) == asa_s
    assert round(erlang.service_level(agents, a, 180, 20), 4) == sl20


def test_reference_value_at_1000_per_hour_300_seconds_90_agents() -> None:
    a = erlang.traffic(1000, 300)
    assert round(erlang.p_wait(90, a), 4) == 0.3673
    assert round(erlang.asa(90, a, 300), 2) == 16.53
    assert round(erlang.service_level(90, a, 300, 20), 4) == 0.7645


def test_recursion_stays_stable_for_large_floors() -> None:
    value = erlang.p_wait(2000, 1950.0)
    assert 0.0 < value < 1.0
    assert math.isfinite(value)


def test_occupancy_and_unstable_queues() -> None:
    assert erlang.occupancy(13, 10) == pytest.approx(10 / 13)
    assert erlang.occupancy(0, 1) == 1.0
    assert erlang.p_wait(10, 10) == 1.0
    assert erlang.p_wait(5, 0) == 0.0
    assert erlang.asa(10, 12, 180) == math.inf
    assert erlang.service_level(10, 12, 180, 20) == 0.0
    assert erlang.erlang_b(1, 1.0) == pytest.approx(0.5)


def test_required_agents_reaches_the_target() -> None:
    a = erlang.traffic(200, 180)
    assert erlang.required_agents(a, 180, 0.8, 20) == 14
    assert erlang.required_agents(a, 180, 0.75, 20) == 13
    with pytest.raises(ValueError, match="target"):
        erlang.required_agents(a, 180, 1.0, 20)
    with pytest.raises(ValueError, match="max_agents"):
        erlang.required_agents(a, 180, 0.99, 20, max_agents=12)
