"""Known, preferred and last agent: offered first, with its own timeout and fallback."""

from __future__ import annotations

from routing.events import TaskAssigned
from routing.models import QueueSpec, Step
from tests.routing.conftest import agent, offers, router, task, types


def test_last_agent_is_preferred_then_anyone_after_its_timeout() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, idle_since=0), 0)  # longest idle
    r.add_agent(agent(7, idle_since=5, state="away"), 0)  # the customer's last agent
    assert offers(r.add_task(task(10, preferred=(7,), preferred_timeout_s=20), 10)) == []
    assert r.next_deadline() == 30
    events = r.tick(30)
    assert types(events) == ["task.step_expired", "reservation.created"]
    assert offers(events) == [(10, 1)]


def test_the_preferred_agent_gets_the_task_when_free_within_the_timeout() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, idle_since=0), 0)
    r.add_agent(agent(7, idle_since=5, state="away"), 0)
    r.add_task(task(10, preferred=(7,), preferred_timeout_s=20), 10)
    assert offers(r.set_agent_state(7, "available", 15)) == [(10, 7)]


def test_an_available_preferred_agent_is_offered_at_once() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, idle_since=0), 0)
    r.add_agent(agent(7, idle_since=5), 0)
    assert offers(r.add_task(task(10, preferred=(8, 7)), 10)) == [(10, 7)]


def test_without_a_timeout_only_the_preferred_agent_may_take_it() -> None:
    r = router(QueueSpec(name="support"), task_ttl_s=None)
    r.add_agent(agent(1), 0)
    r.add_agent(agent(7, state="away"), 0)
    r.add_task(task(10, preferred=(7,), preferred_timeout_s=None), 0)
    assert r.next_deadline() is None
    assert offers(r.tick(10_000)) == []
    assert offers(r.set_agent_state(7, "available", 10_001)) == [(10, 7)]


def test_preferred_step_comes_before_the_queue_steps() -> None:
    steps = (Step(requirement="billing >= 4", timeout_s=30), Step(requirement="billing >= 1"))
    r = router(QueueSpec(name="support", steps=steps))
    r.add_agent(agent(1, skills={"billing": 2}), 0)
    r.add_agent(agent(2, skills={"billing": 5}, state="away"), 0)
    r.add_task(task(10, preferred=(9,), preferred_timeout_s=10), 0)
    assert r.task(10).step == 0
    r.tick(10)
    assert r.task(10).step == 1
    assert offers(r.tick(40)) == [(10, 1)]


def test_transfer_drops_preferences_and_keeps_the_age() -> None:
    r = router(QueueSpec(name="support"), QueueSpec(name="billing"))
    r.add_agent(agent(7, queues=("support", "billing"), idle_since=0), 0)
    r.add_agent(agent(8, queues=("billing",), idle_since=1, state="away"), 0)
    r.add_task(task(10, preferred=(7,)), 100)
    r.accept(10, 7, 101)
    events = r.transfer(10, 160, queue="billing", priority=3)
    assert types(events) == ["task.transferred"]
    view = r.task(10)
    assert (view.queue, view.created_at, view.entered_at, view.priority) == (
        "billing",
        100,
        160,
        3,
    )
    assert view.excluded_agents == {7}  # the agent who passed it on is not offered it back
    assigned = r.set_agent_state(8, "available", 170)
    assert offers(assigned) == [(10, 8)]
    done = r.accept(10, 8, 171)[-1]
    assert isinstance(done, TaskAssigned)
    assert done.wait_s == 71
