"""Agent selection: longest idle by default, best proficiency, least busy, random, round-robin."""

from __future__ import annotations

from routing.core import Router
from routing.models import QueueSpec, RouterConfig, Step
from routing.policy import SplitMix, select
from tests.routing.conftest import agent, offers, router, task


def test_longest_idle_picks_the_agent_idle_longest() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, idle_since=50), 100)
    r.add_agent(agent(2, idle_since=10), 100)
    r.add_agent(agent(3, idle_since=30), 100)
    assert offers(r.add_task(task(10), 100)) == [(10, 2)]
    assert offers(r.add_task(task(11), 100)) == [(11, 3)]
    assert offers(r.add_task(task(12), 100)) == [(12, 1)]


def test_finishing_work_sends_an_agent_to_the_back_of_the_idle_line() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, idle_since=0), 0)
    r.add_agent(agent(2, idle_since=5), 0)
    r.add_task(task(10), 10)
    r.accept(10, 1, 11)
    r.complete_task(10, 20)
    assert offers(r.add_task(task(11), 21)) == [(11, 2)]
    assert offers(r.add_task(task(12), 22)) == [(12, 1)]


def test_becoming_available_restarts_the_idle_clock() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, idle_since=0), 0)
    r.add_agent(agent(2, idle_since=5), 0)
    r.set_agent_state(1, "away", 6, reason="break")
    r.set_agent_state(1, "available", 7)
    assert offers(r.add_task(task(10), 8)) == [(10, 2)]


def test_an_agent_put_back_after_a_rejection_keeps_its_place_in_line() -> None:
    r = router(QueueSpec(name="support"))
    for agent_id, since in ((1, 0), (2, 1), (3, 2)):
        r.add_agent(agent(agent_id, idle_since=since), 0)
    r.add_task(task(10), 10)  # offered to 1, the longest idle
    events = r.reject(10, 1, 11)
    assert offers(events) == [(10, 2)]
    # Agent 1 is back, still idle since 0: ahead of agent 3.
    assert offers(r.add_task(task(11), 12)) == [(11, 1)]


def test_reset_idle_on_offer_moves_the_offered_agent_back() -> None:
    r = router(QueueSpec(name="support"), reset_idle_on_offer=True)
    for agent_id, since in ((1, 0), (2, 1), (3, 2)):
        r.add_agent(agent(agent_id, idle_since=since), 0)
    r.add_task(task(10), 10)
    r.reject(10, 1, 11)
    assert offers(r.add_task(task(11), 12)) == [(11, 3)]


def test_best_proficiency_takes_the_most_skilled_then_the_longest_idle() -> None:
    steps = (Step(requirement="billing >= 1 AND languages.fr >= 1"),)
    r = router(QueueSpec(name="support", steps=steps, selection="best_proficiency"))
    r.add_agent(agent(1, skills={"billing": 2}, languages={"fr": 5}, idle_since=0), 0)
    r.add_agent(agent(2, skills={"billing": 5}, languages={"fr": 1}, idle_since=9), 0)
    r.add_agent(agent(3, skills={"billing": 5}, languages={"fr": 1}, idle_since=3), 0)
    assert offers(r.add_task(task(10), 10)) == [(10, 3)]
    assert offers(r.add_task(task(11), 10)) == [(11, 2)]


def test_best_proficiency_within_a_window_of_the_longest_idle() -> None:
    steps = (Step(requirement="billing >= 1"),)
    q = QueueSpec(name="support", steps=steps, selection="best_proficiency", best_of=2)
    r = router(q)
    r.add_agent(agent(1, skills={"billing": 2}, idle_since=0), 0)
    r.add_agent(agent(2, skills={"billing": 3}, idle_since=1), 0)
    r.add_agent(agent(3, skills={"billing": 5}, idle_since=2), 0)
    assert offers(r.add_task(task(10), 10)) == [(10, 2)]


def test_least_busy_prefers_the_agent_with_the_fewest_tasks() -> None:
    r = router(QueueSpec(name="support", selection="least_busy"))
    r.add_agent(agent(1, capacity={"chat": 3}, idle_since=0), 0)
    r.add_agent(agent(2, capacity={"chat": 3}, idle_since=1), 0)
    assert offers(r.add_task(task(10, channel="chat"), 2)) == [(10, 1)]
    assert offers(r.add_task(task(11, channel="chat"), 3)) == [(11, 2)]
    r.accept(10, 1, 4)
    r.complete_task(10, 5)
    # Agent 1 now has nothing, agent 2 one offer.
    assert offers(r.add_task(task(12, channel="chat"), 6)) == [(12, 1)]


def test_round_robin_offers_to_whoever_was_offered_least_recently() -> None:
    r = router(QueueSpec(name="support", selection="round_robin"))
    r.add_agent(agent(1, capacity={"chat": 5}, idle_since=0), 0)
    r.add_agent(agent(2, capacity={"chat": 5}, idle_since=1), 0)
    picks = [offers(r.add_task(task(10 + i, channel="chat"), 2 + i))[0][1] for i in range(4)]
    assert picks == [1, 2, 1, 2]


def test_random_selection_uses_the_injected_generator() -> None:
    def run(seed: int) -> list[int]:
        r = Router(
            RouterConfig(wrap_up_s=0),
            queues=[QueueSpec(name="s", selection="random")],
            rng=SplitMix(seed),
        )
        for agent_id in range(20):
            r.add_agent(agent(agent_id, queues=("s",), capacity={"chat": 10}), 0)
        return [offers(r.add_task(task(i, queue="s", channel="chat"), 1))[0][1] for i in range(8)]

    assert run(1) == run(1)
    assert run(1) != run(2)
    assert len(set(run(3))) > 3
    always_first = Router(queues=[QueueSpec(name="s", selection="random")], rng=lambda: 0.0)
    always_first.add_agent(agent(5, queues=("s",), idle_since=9), 0)
    always_first.add_agent(agent(6, queues=("s",), idle_since=1), 0)
    assert offers(always_first.add_task(task(1, queue="s"), 1)) in ([(1, 5)], [(1, 6)])


def test_split_mix_draws_uniform_floats() -> None:
    gen = SplitMix(7)
    draws = [gen() for _ in range(2000)]
    assert all(0.0 <= d < 1.0 for d in draws)
    assert 0.45 < sum(draws) / len(draws) < 0.55


def test_select_takes_up_to_k_in_policy_order() -> None:
    class Cand:
        def __init__(self, idle: float, total: int, seq: int, skill: float) -> None:
            self.idle_since, self.idle_seq, self.total = idle, seq, total
            self.last_offer_seq, self.skills = seq, {"x": skill}

    a, b, c = Cand(3, 2, 1, 1), Cand(1, 0, 2, 5), Cand(2, 1, 3, 3)
    rng = SplitMix(1)
    assert select("longest_idle", [a, b, c], 2, ordered=False, rng=rng) == [b, c]
    assert select("least_busy", [a, b, c], 1, ordered=False, rng=rng) == [b]
    assert select("round_robin", [a, b, c], 1, ordered=True, rng=rng) == [a]
    assert select("best_proficiency", [a, b, c], 3, ordered=False, skills=("x",), rng=rng) == [
        b,
        c,
        a,
    ]
    assert len(select("random", [a, b, c], 5, ordered=False, rng=rng)) == 3
