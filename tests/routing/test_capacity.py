"""Per-channel capacity, interruption between channels, and wrap-up holding the slot."""

from __future__ import annotations

from routing.events import TaskCompleted, TaskWrapping
from routing.models import ChannelRule, QueueSpec
from tests.routing.conftest import agent, offers, router, task, types

MULTI = {"voice": 1, "chat": 3, "email": 5}


def test_chat_capacity_is_three_and_the_fourth_chat_waits() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, capacity=MULTI), 0)
    for i in range(3):
        assert offers(r.add_task(task(10 + i, channel="chat"), 1 + i)) == [(10 + i, 1)]
    assert offers(r.add_task(task(13, channel="chat"), 5)) == []
    assert r.agent(1).load == {"chat": 3}
    r.accept(10, 1, 6)
    assert offers(r.complete_task(10, 7)) == [(13, 1)]


def test_voice_may_interrupt_chat_but_chat_may_not_interrupt_voice() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, capacity=MULTI), 0)
    r.add_task(task(10, channel="chat"), 1)
    r.accept(10, 1, 2)
    assert offers(r.add_task(task(11, channel="voice"), 3)) == [(11, 1)]
    # With a call in progress, neither another chat nor an email is offered.
    assert offers(r.add_task(task(12, channel="chat"), 4)) == []
    assert offers(r.add_task(task(13, channel="email"), 5)) == []
    r.accept(11, 1, 6)
    events = r.complete_task(11, 7)
    assert offers(events) == [(12, 1)]


def test_email_waits_while_chats_are_open_unless_the_rules_allow_it() -> None:
    strict = {"chat": ChannelRule(capacity=3), "email": ChannelRule(capacity=5)}
    r = router(QueueSpec(name="support"), channels=strict)
    r.add_agent(agent(1, capacity={}), 0)
    r.add_task(task(10, channel="chat"), 1)
    assert offers(r.add_task(task(11, channel="email"), 2)) == []
    assert offers(r.add_task(task(12, channel="chat"), 3)) == [(12, 1)]
    default = router(QueueSpec(name="support"))
    default.add_agent(agent(1, capacity=MULTI), 0)
    default.add_task(task(10, channel="email"), 1)
    assert offers(default.add_task(task(11, channel="chat"), 2)) == [(11, 1)]


def test_capacity_zero_blocks_a_channel() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, capacity={"voice": 0, "chat": 2}), 0)
    assert offers(r.add_task(task(10, channel="voice"), 1)) == []
    assert offers(r.add_task(task(11, channel="whatsapp"), 1)) == []
    assert offers(r.add_task(task(12, channel="chat"), 1)) == [(12, 1)]


def test_agents_without_capacity_settings_get_the_channel_defaults() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, capacity={}), 0)
    for i in range(5):
        r.add_task(task(10 + i, channel="email"), 1)
    assert r.agent(1).load == {"email": 5}
    assert offers(r.add_task(task(20, channel="telegram"), 2)) == [(20, 1)]
    assert offers(r.add_task(task(21, channel="fax"), 2)) == []  # unknown: not served


def test_wrap_up_holds_the_slot_then_frees_it() -> None:
    r = router(QueueSpec(name="support"), wrap_up_s=30)
    r.add_agent(agent(1), 0)
    r.add_task(task(10), 1)
    r.accept(10, 1, 2)
    r.add_task(task(11), 3)
    events = r.complete_task(10, 60)
    wrapping = events[0]
    assert isinstance(wrapping, TaskWrapping)
    assert wrapping.until == 90
    assert r.task(10).status == "wrapping"
    assert r.agent(1).load == {"voice": 1}
    assert r.next_deadline() == 90
    assert offers(r.tick(89)) == []
    events = r.tick(90)
    assert types(events) == ["task.completed", "reservation.created"]
    done = events[0]
    assert isinstance(done, TaskCompleted)
    assert done.at == 90


def test_ending_wrap_up_early_frees_the_slot_at_once() -> None:
    r = router(QueueSpec(name="support", wrap_up_s=120))
    r.add_agent(agent(1), 0)
    r.add_task(task(10), 1)
    r.accept(10, 1, 2)
    r.complete_task(10, 10)
    r.add_task(task(11), 11)
    assert offers(r.end_wrap_up(10, 20)) == [(11, 1)]
    r.accept(11, 1, 21)
    assert r.tick(130) == []  # the wrap-up deadline of task 10 is stale


def test_per_call_wrap_up_overrides_the_queue() -> None:
    r = router(QueueSpec(name="support", wrap_up_s=120))
    r.add_agent(agent(1), 0)
    r.add_task(task(10), 1)
    r.accept(10, 1, 2)
    assert types(r.complete_task(10, 10, wrap_up_s=0)) == ["task.completed"]
