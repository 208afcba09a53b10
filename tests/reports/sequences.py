"""Known event sequences for the report tests, built the way the hub writes events."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub import reports as r

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
WAITS = [0, 0, 4, 12, 19, 20, 21, 45]  # answered contacts 0..7
ABANDONS = [8, 30]  # contact 8 abandons (router), contact 9 is closed unanswered
AGENT_1, AGENT_2, BOT = 1, 2, 99
BOTS = frozenset({BOT})


class Log:
    """Builds events the way the hub writes them, with explicit times."""

    def __init__(self) -> None:
        self.events: list[r.EventRecord] = []
        self._seq = itertools.count(1)

    def add(
        self,
        type_: str,
        at: float,
        conv: int | None = None,
        *,
        agent: int | None = None,
        queue: str = "support",
        channel: str = "sms",
        **payload: Any,
    ) -> None:
        self.events.append(
            r.EventRecord(
                seq=next(self._seq),
                type=type_,
                at=T0 + timedelta(seconds=at),
                conversation_id=conv,
                agent_id=agent,
                queue=queue,
                channel=channel,
                payload=payload,
            )
        )

    def sorted(self) -> list[r.EventRecord]:
        """Events in time order, re-numbered (seq order is commit order)."""
        ordered = sorted(self.events, key=lambda e: (e.at, e.seq))
        return [
            r.EventRecord(
                seq=i,
                type=e.type,
                at=e.at,
                conversation_id=e.conversation_id,
                agent_id=e.agent_id,
                queue=e.queue,
                channel=e.channel,
                payload=e.payload,
            )
            for i, e in enumerate(ordered, 1)
        ]


def arrival(i: int) -> float:
    return i * 600.0


def known_day() -> list[r.EventRecord]:
    """Ten contacts ten minutes apart; see the module's expectations below."""
    log = Log()
    log.add("agent.state_changed", -600, agent=AGENT_1, state="available", previous="offline")
    log.add("agent.state_changed", -600, agent=AGENT_2, state="available", previous="offline")
    log.add("agent.state_changed", 2000, agent=AGENT_2, state="offline", previous="available")
    log.add("agent.state_changed", 5000, agent=AGENT_1, state="offline", previous="available")
    for i, wait in enumerate(WAITS):
        conv, a = i + 1, arrival(i)
        agent = AGENT_1 if i % 2 == 0 else AGENT_2
        answered = a + wait
        log.add("conversation.created", a, conv, priority=0, language="en", segment="standard")
        log.add("message.received", a, conv, message_id=conv * 10, kind="message", text="hi")
        log.add("message.sent", a + 0.5, conv, message_id=conv * 10 + 1, kind="auto_reply")
        log.add("offer.created", answered - 0.2, conv, agent=agent, offer_id=conv)
        log.add("offer.accepted", answered, conv, agent=agent, offer_id=conv)
        log.add("conversation.assigned", answered, conv, agent=agent, wait_s=float(wait))
        log.add("note.added", answered + 1, conv, agent=agent, message_id=conv * 10 + 2)
        log.add("message.sent", answered + 3, conv, agent=BOT, message_id=conv * 10 + 3)
        log.add("message.sent", answered + 5, conv, agent=agent, message_id=conv * 10 + 4)
        if i == 1:  # agent 2 hands contact 2 to agent 1 after 30 s
            log.add("conversation.transferred", answered + 30, conv, agent=agent, to_agent=1)
            log.add("conversation.assigned", answered + 30, conv, agent=AGENT_1, transfer=True)
        if i % 2 == 0:
            log.add("conversation.wrap_up", answered + 120, conv, agent=agent)
            log.add("conversation.closed", answered + 150, conv, agent=agent, disposition="done")
        else:
            disposition = "Complaint" if i == 3 else "resolved"
            log.add("conversation.closed", answered + 90, conv, disposition=disposition)
    # Labels: contact 3 (i=2) labelled a complaint; contact 5 (i=4) labelled, then unlabelled.
    log.add("conversation.updated", arrival(2) + 60, 3, agent=AGENT_1, labels=["complaint"])
    log.add("conversation.updated", arrival(4) + 60, 5, agent=AGENT_1, labels=["complaint"])
    log.add("conversation.updated", arrival(4) + 70, 5, agent=AGENT_1, labels=[])
    # CSAT after close on three contacts; a non-numeric answer does not count.
    for conv, score in ((1, 5), (2, 4), (4, 2), (6, "n/a")):
        log.add("message.received", arrival(conv - 1) + 400, conv, kind="csat", score=score)
    # Contact 9 abandons after 8 s (router), contact 10 is closed unanswered after 30 s.
    log.add("conversation.created", arrival(8), 9, priority=0)
    first, second = ABANDONS
    log.add("conversation.abandoned", arrival(8) + first, 9, reason="left", wait_s=float(first))
    log.add("conversation.created", arrival(9), 10, priority=0)
    log.add("conversation.closed", arrival(9) + second, 10, agent=AGENT_1, disposition="spam")
    return log.sorted()


def business_day() -> list[r.EventRecord]:
    """Paris 08:00-18:00 weekdays: arrivals at 07:50, 08:00, 17:59 (Mon) and 10:00 (Sat)."""
    paris = ZoneInfo("Europe/Paris")
    log = Log()
    times = [
        datetime(2026, 3, 2, 7, 50, tzinfo=paris),
        datetime(2026, 3, 2, 8, 0, tzinfo=paris),
        datetime(2026, 3, 2, 17, 59, tzinfo=paris),
        datetime(2026, 3, 7, 10, 0, tzinfo=paris),
    ]
    for conv, when in enumerate(times, 1):
        at = (when - T0).total_seconds()
        log.add("conversation.created", at, conv, queue="sales")
        # The early bird waits until opening: 10 minutes.
        wait = 600.0 if conv == 1 else 10.0
        log.add("conversation.assigned", at + wait, conv, agent=AGENT_1, queue="sales", wait_s=wait)
    return log.sorted()


HOURS = {
    "timezone": "Europe/Paris",
    "business_hours": {d: ["08:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
}
