"""Statistics: SL arithmetic with abandons, ASA, windowed and real-time queue statistics."""

from __future__ import annotations

import pytest

from routing.models import QueueSpec
from routing.stats import (
    StatsLog,
    abandonment_rate,
    asa,
    service_level,
    summarize,
)
from tests.routing.conftest import agent, router, task

ANSWERED = [0, 0, 4, 12, 19, 20, 21, 45]
ABANDONED = [8, 30]


def test_service_level_arithmetic_with_abandons() -> None:
    assert asa(ANSWERED) == pytest.approx(15.125)
    assert abandonment_rate(len(ANSWERED), len(ABANDONED)) == pytest.approx(0.20)
    # Within 20 s: 6 answered (20 itself counts) and the abandon at 8 s, out of 10.
    assert service_level(ANSWERED, ABANDONED, 20) == pytest.approx(0.70)
    assert service_level(ANSWERED, ABANDONED, 20, count_abandons=False) == pytest.approx(0.75)


def test_empty_inputs_give_no_figure_rather_than_zero() -> None:
    assert asa([]) is None
    assert abandonment_rate(0, 0) is None
    assert service_level([], [], 20) is None
    assert service_level([], [5], 20, count_abandons=False) is None
    assert summarize([]).avg is None


def test_the_router_reproduces_the_known_numbers_on_a_fake_clock() -> None:
    r = router(QueueSpec(name="support"), task_ttl_s=None)
    r.add_agent(agent(1, state="away"), 0)
    task_id = 0
    for wait in ANSWERED:
        task_id += 1
        start = 100.0 * task_id
        r.add_task(task(task_id), start)
        r.set_agent_state(1, "available", start + wait)
        r.accept(task_id, 1, start + wait)
        r.complete_task(task_id, start + wait + 1)
        r.set_agent_state(1, "away", start + wait + 2)
    for wait in ABANDONED:
        task_id += 1
        start = 100.0 * task_id
        r.add_task(task(task_id), start)
        r.cancel_task(task_id, start + wait, reason="abandoned")
    now = 100.0 * task_id + 100
    stats = r.window_stats(now, window_s=now, thresholds=(20, 10))
    assert stats.asa_s == pytest.approx(15.125)
    assert stats.abandonment_rate == pytest.approx(0.20)
    assert stats.service_level[20] == pytest.approx(0.70)
    assert stats.service_level_answered[20] == pytest.approx(0.75)
    assert stats.service_level[10] == pytest.approx(0.40)
    assert (stats.tasks_entered, stats.tasks_completed, stats.tasks_abandoned) == (10, 8, 2)
    assert stats.reservations["accepted"] == 8
    assert stats.reservations["created"] == 8
    assert stats.wait_until_accepted.max == 45
    assert stats.wait_until_accepted.min == 0
    assert stats.wait_until_abandoned.avg == pytest.approx(19)
    # A short window sees none of them.
    recent = r.window_stats(now, window_s=50)
    assert recent.tasks_entered == 0
    assert recent.asa_s is None


def test_windowed_stats_per_queue_and_retention() -> None:
    log = StatsLog(retention_s=100)
    log.record(0, "a", "answered", 10, 5)
    log.record(50, "b", "answered", 30, 30)
    log.record(120, "a", "abandoned", 7)
    assert log.window(120, 1000).tasks_abandoned == 1
    assert log.window(120, 1000).wait_until_accepted.count == 1  # 0 fell out of retention
    assert log.window(120, 1000, queue="a").wait_until_accepted.count == 0
    assert log.window(120, 1000, queue="b").wait_in_queue_until_accepted.avg == 30


def test_live_stats_show_tasks_agents_and_free_slots() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, capacity={"chat": 3}), 0)
    r.add_agent(agent(2, capacity={"voice": 1}, state="away"), 0)
    r.add_agent(agent(3, capacity={"voice": 1}, state="offline"), 0)
    r.add_task(task(10, channel="chat", created_at=0), 10)
    r.accept(10, 1, 11)
    r.add_task(task(11, channel="voice", priority=2), 20)
    r.add_task(task(12, channel="voice"), 25)
    live = r.live_stats("support", 30)
    assert live.total_tasks == 3
    assert live.tasks_by_status == {"assigned": 1, "pending": 2}
    assert live.tasks_by_priority == {2: 1, 0: 1}
    assert live.longest_wait_s == 10
    assert live.longest_wait_in_queue_s == 10
    assert live.agents_by_state == {"available": 1, "away": 1, "offline": 1}
    assert (live.eligible_agents, live.available_agents) == (3, 1)
    assert live.routable_agents == {"chat": 1}
    assert live.free_slots == {"chat": 2}
    empty = r.live_stats("nowhere", 30)
    assert empty.total_tasks == 0
    assert empty.eligible_agents == 0


def test_views_expose_agent_and_task_state() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1), 0)
    r.add_task(task(10), 5)
    view = r.agent(1)
    assert view.reserved_task_ids == (10,)
    assert view.load == {"voice": 1}
    assert view.routable_channels == frozenset()
    assert r.agents()[0].id == 1
    res = r.task(10).reservations[0]
    assert (res.agent_id, res.created_at, res.expires_at) == (1, 5, 35)


def test_the_log_forgets_what_is_older_than_its_retention() -> None:
    log = StatsLog(retention_s=10)
    for i in range(128):
        log.record(float(i), "a", "completed")
    assert len(log) < 128
    assert log.window(127, 1000).tasks_completed == 10
