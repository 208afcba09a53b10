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


def test_messaging_channels_share_one_limit_of_three() -> None:
    # An agent with the defaults who goes available while SMS, WhatsApp, Telegram and API
    # threads wait gets three offers in all, not three on each channel.
    r = router(QueueSpec(name="support"))
    channels = ("sms", "whatsapp", "telegram", "api")
    for i, channel in enumerate(channels * 2):
        r.add_task(task(10 + i, channel=channel), 1 + i)
    events = r.add_agent(agent(1, capacity={}), 20)
    assert offers(events) == [(10, 1), (11, 1), (12, 1)]
    assert r.agent(1).load == {"sms": 1, "whatsapp": 1, "telegram": 1}
    # Only a call may still come (voice interrupts messaging).
    assert r.agent(1).routable_channels == frozenset({"voice"})
    assert r.live_stats("support", 21).free_slots == {"voice": 1}
    # Finishing one thread frees one slot of the pool, for the oldest waiting task.
    r.accept(10, 1, 22)
    assert offers(r.complete_task(10, 23)) == [(13, 1)]


def test_a_pool_limit_can_be_set_per_agent_and_survives_a_snapshot() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, capacity={"sms": 5, "whatsapp": 5, "message": 4}), 0)
    for i in range(6):
        r.add_task(task(10 + i, channel=("sms", "whatsapp")[i % 2]), 1 + i)
    assert r.agent(1).load == {"sms": 2, "whatsapp": 2}
    live = r.live_stats("support", 10)
    assert live.routable_agents == {}
    assert live.tasks_by_status == {"reserved": 4, "pending": 2}
    spec = r.snapshot().agents[0]
    assert dict(spec.capacity) == {"sms": 5, "whatsapp": 5, "message": 4}
    # A map naming only the pool keeps every channel at its default (three each) under it.
    wide = router(QueueSpec(name="support"))
    wide.add_agent(agent(1, capacity={"message": 5}), 0)
    for i in range(7):
        wide.add_task(task(10 + i, channel=("sms", "telegram")[i % 2]), 1 + i)
    assert wide.agent(1).load == {"sms": 3, "telegram": 2}
    assert offers(wide.add_task(task(30, channel="voice"), 10)) == [(30, 1)]


def test_a_channel_figure_above_the_pool_default_raises_the_pool() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, capacity={"sms": 6, "whatsapp": 2}), 0)
    for i in range(8):
        r.add_task(task(10 + i, channel="sms"), 1 + i)
    assert r.agent(1).load == {"sms": 6}
    # The pool is full (6 of 6), so WhatsApp waits though its own limit has room.
    assert offers(r.add_task(task(30, channel="whatsapp"), 20)) == []
    spare = router(QueueSpec(name="support"))
    spare.add_agent(agent(1, capacity={"sms": 2, "whatsapp": 2}), 0)
    assert spare.live_stats("support", 1).free_slots == {"sms": 2, "whatsapp": 2}
    spare.add_task(task(10, channel="sms"), 1)
    spare.add_task(task(11, channel="sms"), 2)
    # Two SMS leave one slot of the pool's default three: WhatsApp gets it, then no more.
    assert spare.live_stats("support", 3).free_slots == {"whatsapp": 1}
    assert offers(spare.add_task(task(12, channel="whatsapp"), 4)) == [(12, 1)]
    assert offers(spare.add_task(task(13, channel="whatsapp"), 5)) == []


def test_a_pool_limit_of_zero_blocks_every_channel_in_it() -> None:
    r = router(QueueSpec(name="support"))
    r.add_agent(agent(1, capacity={"sms": 3, "email": 2, "message": 0}), 0)
    assert offers(r.add_task(task(10, channel="sms"), 1)) == []
    assert offers(r.add_task(task(11, channel="email"), 2)) == [(11, 1)]


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
