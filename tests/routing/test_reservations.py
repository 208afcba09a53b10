"""Offers: timeout, reject, rescind, parallel offers, maximum offers, refused calls."""

from __future__ import annotations

import pytest

from routing.events import (
    AgentStateChanged,
    ReservationRescinded,
    ReservationTimeout,
    TaskAssigned,
    TaskCanceled,
)
from routing.models import InvalidTransition, QueueSpec, UnknownAgent, UnknownTask
from tests.routing.conftest import agent, of_type, offers, router, task, types


def test_offer_timeout_re_routes_to_the_next_agent_and_counts_a_timeout() -> None:
    r = router(QueueSpec(name="support", offer_timeout_s=15))
    r.add_agent(agent(1, idle_since=0), 0)
    r.add_agent(agent(2, idle_since=1), 0)
    assert offers(r.add_task(task(10), 10)) == [(10, 1)]
    assert r.next_deadline() == 25
    events = r.tick(25)
    assert types(events) == [
        "reservation.timeout",
        "agent.state_changed",
        "reservation.created",
    ]
    timeout, state = events[0], events[1]
    assert isinstance(timeout, ReservationTimeout)
    assert timeout.agent_id == 1
    assert isinstance(state, AgentStateChanged)
    assert (state.state, state.reason, state.previous) == ("away", "not responding", "available")
    assert offers(events) == [(10, 2)]
    stats = r.window_stats(30)
    assert stats.reservations["timeout"] == 1
    assert stats.reservations["created"] == 2


def test_the_not_responding_state_is_configurable() -> None:
    r = router(
        QueueSpec(name="support"),
        not_responding_state="not_responding",
        activities={"available": True, "away": False, "offline": False, "not_responding": False},
    )
    r.add_agent(agent(1), 0)
    r.add_task(task(10), 0)
    events = r.tick(30)
    assert r.agent(1).state == "not_responding"
    assert types(events) == ["reservation.timeout", "agent.state_changed"]


def test_a_rejecting_agent_is_never_offered_the_task_again() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, idle_since=0), 0)
    r.add_task(task(10), 1)
    events = r.reject(10, 1, 2)
    assert types(events) == ["reservation.rejected"]
    assert r.task(10).excluded_agents == {1}
    # Agent 1 stays available and routable, yet gets other work only.
    assert offers(r.tick(100)) == []
    assert offers(r.add_task(task(11), 101)) == [(11, 1)]
    assert offers(r.add_agent(agent(2), 102)) == [(10, 2)]


def test_an_abandoned_task_rescinds_its_live_offer() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1), 0)
    r.add_task(task(10), 1)
    r.add_task(task(11), 2)
    events = r.cancel_task(10, 5, reason="abandoned")
    assert types(events) == ["reservation.rescinded", "task.canceled", "reservation.created"]
    rescind, cancel = events[0], events[1]
    assert isinstance(rescind, ReservationRescinded)
    assert rescind.reason == "abandoned"
    assert isinstance(cancel, TaskCanceled)
    assert cancel.wait_s == 4
    assert offers(events) == [(11, 1)]
    assert r.window_stats(10).tasks_abandoned == 1


def test_cancelling_an_assigned_task_is_refused() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1), 0)
    r.add_task(task(10), 1)
    r.accept(10, 1, 2)
    with pytest.raises(InvalidTransition):
        r.cancel_task(10, 3)


def test_going_unavailable_rescinds_pending_offers() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, idle_since=0), 0)
    r.add_agent(agent(2, idle_since=1, state="away"), 0)
    r.add_task(task(10), 1)
    events = r.set_agent_state(1, "offline", 2, reason="logged out")
    assert types(events) == ["agent.state_changed", "reservation.rescinded"]
    assert r.task(10).status == "pending"
    assert offers(r.set_agent_state(2, "available", 3)) == [(10, 2)]


def test_parallel_offers_first_accept_wins_and_the_rest_are_rescinded() -> None:
    r = router(QueueSpec(name="support", parallel_offers=2))
    for agent_id in (1, 2, 3):
        r.add_agent(agent(agent_id, idle_since=agent_id), 0)
    assert offers(r.add_task(task(10), 5)) == [(10, 1), (10, 2)]
    events = r.accept(10, 2, 6)
    assert types(events) == ["reservation.accepted", "reservation.rescinded", "task.assigned"]
    rescinded = events[1]
    assert isinstance(rescinded, ReservationRescinded)
    assert (rescinded.agent_id, rescinded.reason) == (1, "accepted_elsewhere")
    assert r.agent(1).load == {}


def test_a_freed_agent_joins_a_task_still_short_of_parallel_offers() -> None:
    r = router(QueueSpec(name="support", parallel_offers=2))
    r.add_agent(agent(1), 0)
    r.add_agent(agent(2, state="away"), 0)
    assert offers(r.add_task(task(10), 1)) == [(10, 1)]
    assert offers(r.set_agent_state(2, "available", 2)) == [(10, 2)]
    r.reject(10, 1, 3)
    assert r.task(10).status == "reserved"


def test_the_task_is_cancelled_after_its_maximum_offers() -> None:
    r = router(QueueSpec(name="support", max_offers=2))
    for agent_id in (1, 2, 3):
        r.add_agent(agent(agent_id, idle_since=agent_id), 0)
    r.add_task(task(10), 5)
    assert offers(r.reject(10, 1, 6)) == [(10, 2)]
    events = r.reject(10, 2, 7)
    cancel = of_type(events, TaskCanceled)[0]
    assert isinstance(cancel, TaskCanceled)
    assert cancel.reason == "max_offers"


def test_refused_calls_name_the_problem_and_change_nothing() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1), 0)
    r.add_task(task(10), 1)
    with pytest.raises(InvalidTransition):
        r.accept(10, 2, 2)
    with pytest.raises(InvalidTransition):
        r.reject(10, 2, 2)
    with pytest.raises(UnknownTask):
        r.accept(99, 1, 2)
    with pytest.raises(UnknownAgent):
        r.set_agent_state(9, "away", 2)
    with pytest.raises(InvalidTransition):
        r.add_task(task(10), 2)
    with pytest.raises(InvalidTransition):
        r.add_agent(agent(1), 2)
    with pytest.raises(InvalidTransition):
        r.complete_task(10, 2)
    with pytest.raises(InvalidTransition):
        r.end_wrap_up(10, 2)
    assert r.task(10).status == "reserved"


def test_events_that_fell_due_before_a_refused_call_travel_on_the_error() -> None:
    r = router(QueueSpec(name="support", offer_timeout_s=10))
    r.add_agent(agent(1), 0)
    r.add_task(task(10), 0)
    with pytest.raises(InvalidTransition) as refused:
        r.accept(10, 1, 11)  # the offer expired at 10
    assert [e.type for e in refused.value.events] == [  # type: ignore[attr-defined]
        "reservation.timeout",
        "agent.state_changed",
    ]
    assert r.tick(12) == []


def test_accept_assigns_and_reports_the_waits() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, state="away"), 0)
    r.add_task(task(10, created_at=90), 100)
    r.set_agent_state(1, "available", 104)
    events = r.accept(10, 1, 105)
    assigned = events[-1]
    assert isinstance(assigned, TaskAssigned)
    assert (assigned.wait_s, assigned.queue_wait_s, assigned.queue) == (15, 15, "support")
    assert r.task(10).status == "assigned"
    assert r.task(10).agent_id == 1
