"""The positional event constructors of the hot path build exactly the dataclass events."""

from __future__ import annotations

from routing import events as ev


def test_fast_constructors_equal_the_dataclass_constructors() -> None:
    pairs: list[tuple[ev.Event, ev.Event]] = [
        (
            ev.task_created(1.5, 7, "sales", "voice", 3),
            ev.TaskCreated(at=1.5, task_id=7, queue="sales", channel="voice", priority=3),
        ),
        (
            ev.reservation_created(2.0, 11, 7, 4, 17.0),
            ev.ReservationCreated(
                at=2.0, reservation_id=11, task_id=7, agent_id=4, expires_at=17.0
            ),
        ),
        (
            ev.reservation_accepted(3.0, 11, 7, 4),
            ev.ReservationAccepted(at=3.0, reservation_id=11, task_id=7, agent_id=4),
        ),
        (
            ev.task_assigned(3.0, 7, 4, 11, "sales", 2.5, 1.5),
            ev.TaskAssigned(
                at=3.0,
                task_id=7,
                agent_id=4,
                reservation_id=11,
                queue="sales",
                wait_s=2.5,
                queue_wait_s=1.5,
            ),
        ),
        (ev.task_completed(9.0, 7, 4), ev.TaskCompleted(at=9.0, task_id=7, agent_id=4)),
    ]
    for fast, slow in pairs:
        assert type(fast) is type(slow)
        assert fast == slow
        assert ev.event_to_dict(fast) == ev.event_to_dict(slow)
        assert hash(fast) == hash(slow)
