"""Ordered steps relax over task age: exact expiry, better agents first, skip_if, fallback."""

from __future__ import annotations

from routing.events import TaskCanceled, TaskStepExpired
from routing.models import QueueSpec, Step
from tests.routing.conftest import agent, of_type, offers, router, task, types

RELAXING = (
    Step(requirement="billing >= 4", timeout_s=30),
    Step(requirement="billing >= 2", timeout_s=30),
)


def test_relaxation_fires_exactly_at_step_expiry() -> None:
    r = router(QueueSpec(name="support", steps=RELAXING))
    r.add_agent(agent(1, skills={"billing": 2}), 0)
    assert offers(r.add_task(task(10), 100)) == []
    assert r.next_deadline() == 130
    assert r.tick(129.999) == []
    events = r.tick(130)
    assert types(events) == ["task.step_expired", "reservation.created"]
    step = events[0]
    assert isinstance(step, TaskStepExpired)
    assert step.step == 1
    assert step.at == 130
    assert events[1].at == 130


def test_a_late_tick_still_offers_at_the_expiry_time() -> None:
    r = router(QueueSpec(name="support", steps=RELAXING))
    r.add_agent(agent(1, skills={"billing": 2}), 0)
    r.add_task(task(10), 100)
    events = r.tick(145)
    assert [e.at for e in events] == [130, 130]
    assert r.task(10).reservations[0].expires_at == 160


def test_expiry_is_exact_with_an_inexact_creation_time() -> None:
    created = 0.1 + 0.2  # 0.30000000000000004: origin + 30 - origin != 30
    r = router(QueueSpec(name="support", steps=RELAXING))
    r.add_agent(agent(1, skills={"billing": 2}), 0)
    r.add_task(task(10, created_at=created), created)
    due = r.next_deadline()
    assert due == created + 30
    assert offers(r.tick(due)) == [(10, 1)]


def test_a_better_agent_freed_before_expiry_wins() -> None:
    r = router(QueueSpec(name="support", steps=RELAXING))
    r.add_agent(agent(1, skills={"billing": 2}), 0)
    r.add_agent(agent(2, skills={"billing": 5}, state="away"), 0)
    r.add_task(task(10), 0)
    events = r.set_agent_state(2, "available", 20)
    assert offers(events) == [(10, 2)]
    # The clock of steps keeps running while the offer is out, but nothing is re-offered.
    assert offers(r.tick(30)) == []
    assert r.task(10).status == "reserved"


def test_steps_are_measured_from_creation_not_from_arrival_in_the_router() -> None:
    r = router(QueueSpec(name="support", steps=RELAXING))
    r.add_agent(agent(1, skills={"billing": 2}), 0)
    # Created 40 s ago (e.g. restored after a restart): step 1 is already over.
    events = r.add_task(task(10, created_at=60), 100)
    assert offers(events) == [(10, 1)]
    assert r.task(10).step == 1


def test_entered_clock_counts_steps_from_queue_entry() -> None:
    q = QueueSpec(name="support", steps=RELAXING, step_clock="entered")
    r = router(q)
    r.add_agent(agent(1, skills={"billing": 2}), 0)
    r.add_task(task(10, created_at=60), 100)
    r.transfer(10, 100)
    assert r.task(10).step == 0
    assert offers(r.tick(130)) == [(10, 1)]


def test_after_the_last_step_any_agent_of_the_queue_may_take_the_task() -> None:
    r = router(QueueSpec(name="support", steps=RELAXING))
    r.add_agent(agent(1, skills={}), 0)
    r.add_task(task(10), 0)
    assert offers(r.tick(59)) == []
    events = r.tick(60)
    assert offers(events) == [(10, 1)]
    assert [e.step for e in of_type(events, TaskStepExpired)] == [2]


def test_cancel_fallback_ends_the_task_when_steps_run_out() -> None:
    r = router(QueueSpec(name="support", steps=RELAXING, fallback="cancel"))
    r.add_agent(agent(1, skills={"billing": 1}), 0)
    r.add_task(task(10), 0)
    events = r.tick(61)
    assert types(events) == ["task.step_expired", "task.canceled"]
    cancel = events[-1]
    assert isinstance(cancel, TaskCanceled)
    assert cancel.reason == "workflow_timeout"
    assert cancel.at == 60
    assert cancel.wait_s == 60
    assert r.tasks() == []


def test_several_expired_steps_report_each_step() -> None:
    steps = (
        Step(requirement="billing >= 5", timeout_s=10),
        Step(requirement="billing >= 4", timeout_s=10),
        Step(requirement="billing >= 1"),
    )
    r = router(QueueSpec(name="support", steps=steps))
    r.add_agent(agent(1, skills={"billing": 1}), 0)
    r.add_task(task(10), 0)
    r.set_agent_state(1, "away", 1)
    events = r.tick(50)
    assert [e.step for e in of_type(events, TaskStepExpired)] == [1, 2]
    assert offers(r.set_agent_state(1, "available", 51)) == [(10, 1)]


def test_skip_if_moves_on_at_once_when_nobody_could_take_the_step() -> None:
    steps = (
        Step(requirement="billing >= 4", timeout_s=60, skip_if="workers.available == 0"),
        Step(requirement="billing >= 1"),
    )
    r = router(QueueSpec(name="support", steps=steps))
    r.add_agent(agent(1, skills={"billing": 2}), 0)
    events = r.add_task(task(10), 5)
    assert types(events) == ["task.created", "task.step_expired", "reservation.created"]
    skipped = events[1]
    assert isinstance(skipped, TaskStepExpired)
    assert skipped.skipped
    assert skipped.step == 1


def test_skip_if_is_not_taken_when_the_condition_is_false() -> None:
    steps = (
        Step(requirement="billing >= 4", timeout_s=60, skip_if="eligible == 0"),
        Step(requirement="billing >= 1"),
    )
    r = router(QueueSpec(name="support", steps=steps))
    r.add_agent(agent(1, skills={"billing": 2}), 0)
    r.add_agent(agent(2, skills={"billing": 5}, state="away"), 0)
    assert types(r.add_task(task(10), 5)) == ["task.created"]
    assert r.task(10).step == 0


def test_skipping_the_last_step_with_cancel_fallback_cancels() -> None:
    steps = (Step(requirement="billing >= 4", skip_if="available == 0"),)
    r = router(QueueSpec(name="support", steps=steps, fallback="cancel"))
    r.add_agent(agent(1, skills={"billing": 2}), 0)
    events = r.add_task(task(10), 0)
    assert types(events) == ["task.created", "task.canceled"]


def test_a_step_may_raise_priority_and_move_the_task_to_another_queue() -> None:
    steps = (
        Step(requirement="billing >= 4", timeout_s=30),
        Step(queue="overflow", priority=5),
    )
    r = router(QueueSpec(name="support", steps=steps))
    r.add_agent(agent(1, skills={"billing": 1}, queues=("overflow",)), 0)
    r.set_agent_state(1, "away", 0)
    r.add_task(task(10), 0)
    r.add_task(task(11, queue="overflow", priority=3), 1)
    events = r.tick(30)
    step = of_type(events, TaskStepExpired)[0]
    assert isinstance(step, TaskStepExpired)
    assert step.queue == "overflow"
    assert step.priority == 5
    view = r.task(10)
    assert (view.queue, view.task_queue, view.priority, view.entered_at) == (
        "overflow",
        "support",
        5,
        30,
    )
    assert offers(r.set_agent_state(1, "available", 31)) == [(10, 1)]


def test_per_task_steps_override_the_queue_steps() -> None:
    r = router(QueueSpec(name="support", steps=RELAXING))
    r.add_agent(agent(1, skills={"billing": 2, "fr": 3}), 0)
    ivr = (Step(requirement={"all": [{"skill": "fr", "min": 3}]}),)
    assert offers(r.add_task(task(10, steps=ivr), 0)) == [(10, 1)]
    assert r.task(10).requirement == "(skills.fr >= 3)"


def test_reconfiguring_a_queue_re_evaluates_its_waiting_tasks() -> None:
    r = router(QueueSpec(name="support", steps=RELAXING))
    r.add_agent(agent(1, skills={"billing": 1}), 0)
    r.add_task(task(10), 0)
    events = r.set_queue(QueueSpec(name="support", steps=(Step(requirement="billing >= 1"),)), 5)
    assert offers(events) == [(10, 1)]
