"""Task lifecycle, agent changes, the event stream, and rebuilding a router from plain data."""

from __future__ import annotations

import pytest

from routing.events import (
    EVENT_TYPES,
    ReservationCreated,
    TaskCanceled,
    TaskRequeued,
    event_to_dict,
)
from routing.models import (
    InvalidTransition,
    OfferSpec,
    QueueSpec,
    RouterSnapshot,
    RoutingError,
    Step,
    TaskSpec,
)
from tests.routing.conftest import agent, offers, router, task, types


def test_ttl_cancels_a_task_nobody_took() -> None:
    r = router(QueueSpec(name="support"), task_ttl_s=3600)
    r.add_agent(agent(1, state="away"), 0)
    r.add_task(task(10), 100)
    assert r.next_deadline() == 3700
    events = r.tick(4000)
    cancel = events[0]
    assert isinstance(cancel, TaskCanceled)
    assert (cancel.reason, cancel.at, cancel.wait_s) == ("ttl", 3700, 3600)
    assert r.window_stats(4000).tasks_canceled == 1


def test_full_lifecycle_emits_every_transition() -> None:
    r = router(QueueSpec(name="support"), wrap_up_s=10)
    r.add_agent(agent(1), 0)
    seen = []
    seen += r.add_task(task(10), 1)
    seen += r.accept(10, 1, 2)
    seen += r.complete_task(10, 30)
    seen += r.tick(40)
    assert types(seen) == [
        "task.created",
        "reservation.created",
        "reservation.accepted",
        "task.assigned",
        "task.wrapping",
        "task.completed",
    ]
    assert all(e.type in EVENT_TYPES for e in seen)
    as_dict = event_to_dict(seen[1])
    assert as_dict["type"] == "reservation.created"
    assert as_dict["expires_at"] == 31
    with pytest.raises(AttributeError):
        seen[0].at = 5  # type: ignore[misc]


def test_removing_an_agent_requeues_its_calls_and_rescinds_its_offers() -> None:
    r = router(QueueSpec(name="support"), wrap_up_s=60)
    r.add_agent(agent(1, capacity={"chat": 3}, idle_since=0), 0)
    r.add_agent(agent(2, capacity={"chat": 3}, idle_since=1, state="away"), 0)
    r.add_task(task(10, channel="chat"), 1)
    r.add_task(task(11, channel="chat"), 2)
    r.add_task(task(12, channel="chat"), 3)
    r.accept(10, 1, 4)
    r.accept(11, 1, 4)
    r.complete_task(11, 5)  # wrapping
    events = r.remove_agent(1, 6)
    assert types(events) == [
        "reservation.rescinded",
        "task.requeued",
        "task.completed",
    ]
    requeued = events[1]
    assert isinstance(requeued, TaskRequeued)
    assert requeued.task_id == 10
    assert {v.id for v in r.tasks()} == {10, 12}
    assert offers(r.set_agent_state(2, "available", 7)) == [(10, 2), (12, 2)]
    with pytest.raises(RoutingError):
        r.agent(1)


def test_updating_an_agent_applies_new_skills_and_state() -> None:
    r = router(QueueSpec(name="support", steps=(Step(requirement="billing >= 3"),)))
    r.add_agent(agent(1, skills={"billing": 1}), 0)
    r.add_task(task(10), 1)
    events = r.update_agent(agent(1, skills={"billing": 4}), 2)
    assert offers(events) == [(10, 1)]
    events = r.update_agent(agent(1, skills={"billing": 4}, state="away"), 3)
    assert types(events) == ["agent.state_changed", "reservation.rescinded"]
    assert r.set_agent_state(1, "away", 4) == []


def test_unknown_states_are_refused() -> None:
    r = router(QueueSpec(name="support"))
    with pytest.raises(RoutingError, match="unknown agent state"):
        r.add_agent(agent(1, state="lunch"), 0)
    r.add_agent(agent(1), 0)
    with pytest.raises(RoutingError):
        r.set_agent_state(1, "lunch", 1)


def test_a_clock_that_goes_backwards_is_held_at_the_last_time() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1), 0)
    r.add_task(task(10), 100)
    created = r.add_task(task(11), 50)
    assert created[0].at == 100


def test_unconfigured_queues_route_to_their_members() -> None:
    r = router()
    r.add_agent(agent(1, queues=("misc",)), 0)
    assert offers(r.add_task(task(10, queue="misc"), 1)) == [(10, 1)]
    assert "misc" in r.queue_names()


def test_bad_queue_configuration_is_refused() -> None:
    r = router()
    with pytest.raises(RoutingError):
        r.set_queue(QueueSpec(name="x", parallel_offers=0), 0)


def test_snapshot_and_restore_rebuild_the_same_decisions() -> None:
    def build() -> object:
        r = router(QueueSpec(name="support"), wrap_up_s=30, task_ttl_s=None)
        for agent_id in (1, 2, 3, 4):
            r.add_agent(agent(agent_id, idle_since=agent_id), 0)
        r.add_task(task(10), 10)  # -> 1, accepted
        r.accept(10, 1, 11)
        r.add_task(task(11), 12)  # -> 2, in flight
        r.add_task(task(12), 13)  # -> 3, rejected, then 4
        r.reject(12, 3, 14)
        r.accept(12, 4, 15)
        r.complete_task(12, 16)  # wrapping until 46
        r.set_agent_state(3, "away", 17)
        r.add_task(task(13, priority=2), 18)  # waits
        return r

    before = build()
    snap = before.snapshot()  # type: ignore[attr-defined]
    after = router(QueueSpec(name="support"), wrap_up_s=30, task_ttl_s=None)
    assert after.restore(snap, 20) == []
    assert sorted((v.id, v.status, v.agent_id) for v in after.tasks()) == sorted(
        (v.id, v.status, v.agent_id)
        for v in before.tasks()  # type: ignore[attr-defined]
    )
    assert after.snapshot() == snap
    # Both carry on identically: the offer to 2 times out at 42; agent 4 frees at 46 and
    # takes the higher-priority task 13 while task 11 waits.
    outcomes = []
    for r in (before, after):
        events = r.tick(60)  # type: ignore[attr-defined]
        assert types(events) == [
            "reservation.timeout",
            "agent.state_changed",
            "task.completed",
            "reservation.created",
        ]
        assert offers(events) == [(13, 4)]
        outcomes.append([(e.type, e.at) for e in events])
    assert outcomes[0] == outcomes[1]


def test_restore_times_out_offers_that_expired_while_the_hub_was_down() -> None:
    r = router(QueueSpec(name="support"), task_ttl_s=None)
    snap = RouterSnapshot(
        agents=(agent(1, idle_since=0), agent(2, idle_since=5)),
        tasks=(
            TaskSpec(
                id=10,
                queue="support",
                channel="voice",
                created_at=100,
                offered_to=(
                    OfferSpec(agent_id=1, created_at=100, expires_at=130, reservation_id=7),
                ),
                offers_made=1,
            ),
        ),
        next_reservation_id=8,
    )
    events = r.restore(snap, 500)
    assert types(events) == ["reservation.timeout", "agent.state_changed", "reservation.created"]
    assert events[0].at == 130
    created = events[-1]
    assert isinstance(created, ReservationCreated)
    assert (created.agent_id, created.at, created.reservation_id) == (2, 500, 8)


def test_restore_refuses_a_busy_router_and_unknown_agents() -> None:
    r = router()
    r.add_agent(agent(1), 0)
    with pytest.raises(InvalidTransition):
        r.restore(RouterSnapshot(agents=(), tasks=()), 1)
    bad = RouterSnapshot(
        agents=(), tasks=(TaskSpec(id=1, queue="q", channel="voice", assigned_to=5),)
    )
    with pytest.raises(RoutingError):
        router().restore(bad, 0)


def test_an_assigned_task_can_be_put_back_on_its_agent() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1), 0)
    events = r.add_task(
        TaskSpec(id=10, queue="support", channel="voice", created_at=0, assigned_to=1), 5
    )
    assert types(events) == ["task.created"]
    assert r.agent(1).load == {"voice": 1}
    assert r.task(10).status == "assigned"
    assert offers(r.add_task(task(11), 6)) == []
    assert offers(r.complete_task(10, 7)) == [(11, 1)]
    wrapping = TaskSpec(
        id=12, queue="support", channel="voice", created_at=0, assigned_to=1, wrap_until=50
    )
    r.accept(11, 1, 8)
    r.add_task(wrapping, 9)
    assert r.agent(1).load == {"voice": 2}  # restored facts win over capacity
    assert types(r.tick(50)) == ["task.completed"]


def test_next_deadline_skips_stale_entries() -> None:
    r = router(QueueSpec(name="support", offer_timeout_s=10), task_ttl_s=None)
    r.add_agent(agent(1), 0)
    assert r.next_deadline() is None
    r.add_task(task(10), 0)
    assert r.next_deadline() == 10
    r.accept(10, 1, 1)
    assert r.next_deadline() is None


def test_a_restored_task_past_its_ttl_is_cancelled_without_an_offer_first() -> None:
    r = router(QueueSpec(name="support"), task_ttl_s=60)
    snap = RouterSnapshot(
        agents=(agent(1),),
        tasks=(TaskSpec(id=10, queue="support", channel="voice", created_at=0),),
    )
    events = r.restore(snap, 100)
    assert types(events) == ["task.canceled"]
    assert events[0].at == 60
