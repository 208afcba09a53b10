"""Less common paths: mixed hints, parallel offers while filed, transfers, restore details."""

from __future__ import annotations

import pytest

from routing.core import Router
from routing.models import (
    OfferSpec,
    QueueMembership,
    QueueSpec,
    RouterConfig,
    RouterSnapshot,
    RoutingError,
    Step,
    TaskSpec,
    UnknownAgent,
    memberships,
)
from routing.records import AgentRec, Bucket
from routing.steps import CACHE_MAX
from tests.routing.conftest import agent, offers, router, task, types


def test_memberships_builds_the_same_membership_for_each_queue() -> None:
    assert memberships("a", "b", priority=2, delay_s=5) == {
        "a": QueueMembership(priority=2, delay_s=5),
        "b": QueueMembership(priority=2, delay_s=5),
    }


def test_a_mixed_conjunction_drives_from_its_smallest_part() -> None:
    r = router(QueueSpec(name="support"))
    for i in range(10):
        r.add_agent(agent(i, skills={"billing": 3}, idle_since=i), 0)
    steps = (Step(requirement="agent.id IN [4, 6] AND billing >= 1"),)
    assert offers(r.add_task(task(1, steps=steps), 1)) == [(1, 4)]
    steps = (Step(requirement="agent.id IN [4] AND skills HAS 'sales'"),)
    assert offers(r.add_task(task(2, steps=steps), 1)) == []


def test_a_task_list_that_is_not_a_list_matches_nobody() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1), 0)
    steps = (Step(requirement="agent.id IN task.owner"),)
    assert offers(r.add_task(task(1, steps=steps, attributes={"owner": 1}), 1)) == []
    steps = (Step(requirement="agent.id IN task.owners"),)
    assert offers(r.add_task(task(2, steps=steps, attributes={"owners": [1]}), 1)) == [(2, 1)]


def test_non_default_selection_skips_excluded_and_unqualified_agents() -> None:
    steps = (Step(requirement="billing >= 2"),)
    r = router(QueueSpec(name="support", steps=steps, selection="least_busy"))
    r.add_agent(agent(1, skills={"billing": 5}, idle_since=0), 0)
    r.add_agent(agent(2, skills={"billing": 1}, idle_since=1), 0)
    r.add_agent(agent(3, skills={"billing": 4}, idle_since=2), 0)
    r.add_task(task(10), 5)
    assert offers(r.reject(10, 1, 6)) == [(10, 3)]


def test_a_freed_agent_compares_the_heads_of_all_its_queues() -> None:
    r = router(QueueSpec(name="a"), QueueSpec(name="b"))
    r.add_agent(agent(1, queues=("a", "b"), state="away"), 0)
    r.add_task(task(10, queue="a"), 1)
    r.add_task(task(11, queue="a"), 2)
    r.add_task(task(12, queue="b"), 3)
    assert offers(r.set_agent_state(1, "available", 4)) == [(10, 1)]


def test_accepting_one_of_parallel_offers_while_still_waiting_for_more() -> None:
    r = router(QueueSpec(name="support", parallel_offers=2))
    r.add_agent(agent(1), 0)
    assert offers(r.add_task(task(10), 1)) == [(10, 1)]
    assert types(r.accept(10, 1, 2)) == ["reservation.accepted", "task.assigned"]
    r.add_agent(agent(2), 3)
    assert r.agent(2).reserved_task_ids == ()


def test_skip_if_counts_agents_already_holding_an_offer_as_available() -> None:
    steps = (
        Step(requirement="billing >= 1", timeout_s=10),
        Step(requirement="billing >= 1", skip_if="available >= 1"),
        Step(requirement="billing >= 1", queue="elsewhere"),
    )
    r = router(QueueSpec(name="support", steps=steps, parallel_offers=2))
    r.add_agent(agent(1, skills={"billing": 2}, capacity={"chat": 3}), 0)
    assert offers(r.add_task(task(10, channel="chat"), 0)) == [(10, 1)]
    events = r.tick(10)
    skipped = [e for e in events if e.type == "task.step_expired"]
    assert [getattr(e, "skipped", None) for e in skipped] == [False, True]
    assert r.task(10).queue == "elsewhere"


def test_transfer_of_a_waiting_task_with_new_steps_and_attributes() -> None:
    r = router(QueueSpec(name="support"), QueueSpec(name="vip"))
    r.add_agent(agent(1, queues=("vip",), skills={"fr": 4}, state="away"), 0)
    r.add_task(task(10), 0)
    steps = (Step(requirement="languages HAS task.lang OR fr >= 3"),)
    events = r.transfer(10, 5, queue="vip", steps=steps, attributes={"lang": "fr"})
    assert types(events) == ["task.transferred"]
    assert r.task(10).requirement == "(languages HAS task.lang OR fr >= 3)"
    assert offers(r.set_agent_state(1, "available", 6)) == [(10, 1)]
    snap = r.snapshot()
    assert snap.tasks[0].steps == steps
    assert snap.tasks[0].attributes == {"lang": "fr"}


def test_transfer_of_an_offered_task_rescinds_the_offer() -> None:
    r = router(QueueSpec(name="support"), QueueSpec(name="other"))
    r.add_agent(agent(1), 0)
    r.add_task(task(10), 0)
    events = r.transfer(10, 1, queue="other")
    assert types(events) == ["reservation.rescinded", "task.transferred"]


def test_a_wrapping_task_cannot_be_transferred() -> None:
    r = router(QueueSpec(name="support"), wrap_up_s=30)
    r.add_agent(agent(1), 0)
    r.add_task(task(10), 0)
    r.accept(10, 1, 1)
    r.complete_task(10, 2)
    with pytest.raises(RoutingError):
        r.transfer(10, 3)


def test_restore_gives_offers_without_an_id_a_new_one() -> None:
    r = router(QueueSpec(name="support"))
    snap = RouterSnapshot(
        agents=(agent(1),),
        tasks=(
            TaskSpec(
                id=10,
                queue="support",
                channel="voice",
                created_at=0,
                offered_to=(OfferSpec(agent_id=1, created_at=0, expires_at=100),),
            ),
        ),
        next_reservation_id=40,
    )
    assert r.restore(snap, 5) == []
    assert r.task(10).reservations[0].reservation_id == 40
    assert r.snapshot().next_reservation_id == 41


def test_offers_to_unknown_agents_are_refused() -> None:
    r = router(QueueSpec(name="support"))
    spec = TaskSpec(
        id=10,
        queue="support",
        channel="voice",
        offered_to=(OfferSpec(agent_id=9, created_at=0, expires_at=1),),
    )
    with pytest.raises(UnknownAgent):
        r.add_task(spec, 0)


def test_the_step_cache_stays_bounded() -> None:
    r = Router(RouterConfig())
    first = (Step(requirement="s0 >= 1"),)
    r.add_task(TaskSpec(id=0, queue="q", channel="voice", steps=first), 0)
    for i in range(1, CACHE_MAX + 2):
        steps = (Step(requirement=f"s{i} >= 1"),)
        r.add_task(TaskSpec(id=i, queue="q", channel="voice", steps=steps), 0)
    assert len(r._steps.by_value) <= CACHE_MAX
    again = (Step(requirement="s0 >= 1"),)
    r.add_task(TaskSpec(id=-1, queue="q", channel="voice", steps=again), 0)
    assert r.task(-1).requirement == "s0 >= 1"


def test_a_bucket_re_sorts_after_an_out_of_order_insert() -> None:
    b = Bucket()
    late, early = AgentRec(1), AgentRec(2)
    late.idle_since, early.idle_since = 10.0, 5.0
    b.add(late)
    b.add(early)
    assert b.dirty
    assert list(b.ordered()) == [early, late]
    b.discard(early)
    assert list(b.ordered()) == [late]
    assert len(b) == 1


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("languages.fr > 4", True),
        ("languages.fr <= 4", False),
        ("languages.fr < 6", True),
        ("3 <= billing", True),
        ("agent.team.name == 'x'", False),
        ("agent.id IN [task.owner, 9]", True),
    ],
)
def test_less_common_comparisons(source: str, expected: bool) -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(
        agent(1, skills={"billing": 4}, languages={"fr": 5}, attributes={"team": "blue"}), 0
    )
    steps = (Step(requirement=source),)
    made = offers(r.add_task(task(10, steps=steps, attributes={"owner": 1}), 1))
    assert bool(made) is expected


def test_structured_lists_of_unhashable_values_still_compare() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, attributes={"zones": [1, 2]}), 0)
    steps = (Step(requirement={"attribute": "zones", "in": [[1, 2], [3]]}),)
    assert offers(r.add_task(task(10, steps=steps), 1)) == [(10, 1)]


def test_a_single_channel_agent_with_other_restored_work_follows_the_rules() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, capacity={"voice": 1}), 0)
    r.add_task(TaskSpec(id=9, queue="support", channel="email", assigned_to=1), 0)
    assert offers(r.add_task(task(10, channel="voice"), 1)) == [(10, 1)]


def test_an_idle_clock_restored_in_the_future_still_sorts_correctly() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, capacity={"chat": 3}, idle_since=100), 0)
    r.add_agent(agent(2, capacity={"chat": 3}, idle_since=200), 0)
    r.add_task(task(10, channel="chat"), 1)  # agent 1, idle since 100
    r.accept(10, 1, 2)  # its idle clock restarts at 2: now the longest idle
    assert offers(r.add_task(task(11, channel="chat"), 3)) == [(11, 1)]
