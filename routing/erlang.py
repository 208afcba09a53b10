"""Erlang C (M/M/c, FCFS, no abandonment): the ground truth the simulator is checked against.

``traffic`` is the offered load A = λ·AHT in Erlangs; the queue is stable only when A < c.
P(wait) uses the stable recursion B₀ = 1, B_k = A·B_{k−1}/(k + A·B_{k−1}) (Erlang B), then
C = c·B/(c − A(1 − B)), which never forms A^c or c!.
"""

from __future__ import annotations

import math


def traffic(arrivals_per_hour: float, aht_s: float) -> float:
    """Offered load in Erlangs."""
    return arrivals_per_hour / 3600.0 * aht_s


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of an M/M/c/c system."""
    b = 1.0
    for k in range(1, agents + 1):
        b = traffic * b / (k + traffic * b)
    return b


def p_wait(agents: int, traffic: float) -> float:
    """Probability that a contact waits (Erlang C); 1 when the queue is unstable."""
    if agents <= 0 or traffic >= agents:
        return 1.0
    if traffic <= 0:
        return 0.0
    b = erlang_b(agents, traffic)
    return agents * b / (agents - traffic * (1.0 - b))


def asa(agents: int, traffic: float, aht_s: float) -> float:
    """Average speed of answer in seconds (infinite when unstable)."""
    if traffic >= agents:
        return math.inf
    return p_wait(agents, traffic) * aht_s / (agents - traffic)


def service_level(agents: int, traffic: float, aht_s: float, threshold_s: float) -> float:
    """Share of contacts answered within ``threshold_s``."""
    if traffic >= agents:
        return 0.0
    return 1.0 - p_wait(agents, traffic) * math.exp(-(agents - traffic) * threshold_s / aht_s)


def occupancy(agents: int, traffic: float) -> float:
    """Share of agent time spent handling contacts (capped at 1)."""
    return min(1.0, traffic / agents) if agents > 0 else 1.0


def required_agents(
    traffic: float, aht_s: float, target_sl: float, threshold_s: float, *, max_agents: int = 100_000
) -> int:
    """The fewest agents whose service level at ``threshold_s`` reaches ``target_sl``."""
    if not 0.0 <= target_sl < 1.0:
        raise ValueError("target service level must be in [0, 1)")
    agents = max(1, math.floor(traffic) + 1)
    while service_level(agents, traffic, aht_s, threshold_s) < target_sl:
        agents += 1
        if agents > max_agents:
            raise ValueError("no staffing up to max_agents reaches the target")
    return agents
