"""Task order: priority, then age; LIFO and score orders; Connect-style queue priority and delay."""

from __future__ import annotations

from routing.models import AgentSpec, QueueMembership, QueueSpec
from tests.routing.conftest import agent, offers, router, task


def test_priority_beats_age() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, state="away"), 0)
    r.add_task(task(10, priority=0), 1)
    r.add_task(task(11, priority=5), 2)
    assert offers(r.set_agent_state(1, "available", 3)) == [(11, 1)]


def test_age_breaks_ties_between_equal_priorities() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, state="away"), 0)
    r.add_task(task(11, priority=1), 2)
    r.add_task(task(10, priority=1, created_at=1), 3)  # older, added later
    r.add_task(task(12, priority=1), 4)
    assert offers(r.set_agent_state(1, "available", 5)) == [(10, 1)]


def test_lifo_serves_the_newest_first_within_a_priority() -> None:
    r = router(QueueSpec(name="support", task_order="lifo"))
    r.add_agent(agent(1, state="away"), 0)
    r.add_task(task(10), 1)
    r.add_task(task(11), 2)
    r.add_task(task(12, priority=-1), 3)
    assert offers(r.set_agent_state(1, "available", 5)) == [(11, 1)]


def test_score_order_counts_priority_as_minutes_of_waiting() -> None:
    r = router(QueueSpec(name="support", task_order="score"))
    r.add_agent(agent(1, state="away"), 0)
    r.add_task(task(10, priority=0), 0)  # waited 5 min at t=300
    r.add_task(task(11, priority=10), 200)  # waited 100 s + 10 min
    r.add_task(task(12, priority=3), 100)  # waited 200 s + 3 min = 380 s
    assert offers(r.set_agent_state(1, "available", 300)) == [(11, 1)]


def test_an_agent_serves_its_higher_priority_queue_before_older_work_elsewhere() -> None:
    r = router(QueueSpec(name="sales"), QueueSpec(name="support"))
    queues = {"support": QueueMembership(priority=2), "sales": QueueMembership(priority=1)}
    r.add_agent(AgentSpec(id=1, capacity={"voice": 1}, queues=queues, state="away"), 0)
    r.add_task(task(10, queue="support", priority=9), 1)
    r.add_task(task(11, queue="sales"), 50)
    assert offers(r.set_agent_state(1, "available", 60)) == [(11, 1)]


def test_equal_queue_priorities_compare_the_tasks_themselves() -> None:
    r = router(QueueSpec(name="sales"), QueueSpec(name="support"))
    r.add_agent(agent(1, queues=("sales", "support"), state="away"), 0)
    r.add_task(task(10, queue="support"), 1)
    r.add_task(task(11, queue="sales"), 2)
    assert offers(r.set_agent_state(1, "available", 3)) == [(10, 1)]


def test_queue_delay_holds_back_an_agent_until_the_task_has_waited_long_enough() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, delay_s=20), 0)
    assert offers(r.add_task(task(10), 100)) == []
    assert r.next_deadline() == 120
    assert r.tick(119) == []
    assert offers(r.tick(120)) == [(10, 1)]


def test_delay_applies_to_the_agent_side_of_the_match_too() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, delay_s=20, state="away"), 0)
    r.add_agent(agent(2, delay_s=0, state="away"), 0)
    r.add_task(task(10), 100)
    assert offers(r.set_agent_state(1, "available", 105)) == []
    assert offers(r.set_agent_state(2, "available", 106)) == [(10, 2)]


def test_a_new_delay_boundary_wakes_waiting_tasks() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(2, delay_s=30), 0)
    r.add_task(task(10), 100)  # boundary at 130
    r.add_agent(agent(1, delay_s=10), 101)  # a new boundary: 110
    assert offers(r.tick(110)) == [(10, 1)]


def test_removing_the_only_delayed_member_forgets_its_boundary() -> None:
    r = router(QueueSpec(name="support"), task_ttl_s=None)
    r.add_agent(agent(1, delay_s=30), 0)
    r.remove_agent(1, 1)
    r.add_task(task(10), 2)
    assert r.next_deadline() is None
