"""KPIs from a known event sequence, checked to the second (pure fold and aggregation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub import reports as r
from tests.reports.sequences import (
    ABANDONS,
    AGENT_1,
    AGENT_2,
    BOTS,
    HOURS,
    T0,
    WAITS,
    Log,
    arrival,
    business_day,
    known_day,
)


def spec(**kw: Any) -> r.ReportSpec:
    values: dict[str, Any] = {
        "start": T0 - timedelta(hours=1),
        "end": T0 + timedelta(hours=2),
        "thresholds": (20.0,),
    }
    values.update(kw)
    return r.ReportSpec(**values)


def test_asa_abandonment_and_service_level_follow_the_reference_example() -> None:
    total = r.report_events(known_day(), spec(), bots=BOTS).total

    assert total.contacts == 10
    assert total.answered == 8
    assert total.abandoned == 2
    assert total.asa_s == 15.125
    assert total.max_wait_s == 45
    assert total.abandonment_rate == 0.2
    assert total.avg_abandon_wait_s == sum(ABANDONS) / 2
    (sl20,) = total.service_levels
    assert sl20.threshold_s == 20
    assert sl20.counting_abandons == 0.7
    assert sl20.answered_only == 0.75


def test_service_level_counts_a_wait_equal_to_the_threshold_as_within() -> None:
    levels = r.report_events(known_day(), spec(thresholds=(19.0, 21.0, 45.0)), bots=BOTS)
    by_t = {s.threshold_s: s for s in levels.total.service_levels}
    # <= 19: 0,0,4,12,19 answered (+ abandon at 8) ; <= 21: +20,21 ; <= 45: everything
    assert by_t[19.0].answered_only == 0.625
    assert by_t[19.0].counting_abandons == 0.6
    assert by_t[21.0].answered_only == 0.875
    assert by_t[21.0].counting_abandons == 0.8
    assert by_t[45.0].answered_only == 1.0
    assert by_t[45.0].counting_abandons == 1.0


def test_first_response_ignores_auto_replies_bots_and_notes() -> None:
    total = r.report_events(known_day(), spec(), bots=BOTS).total
    # Each contact: auto reply at +0.5 s, note at +1 s, bot at +3 s, the agent at +5 s.
    assert total.first_responses == 8
    assert total.first_response_avg_s == 15.125 + 5


def test_bot_replies_count_when_the_author_is_not_known_as_a_bot() -> None:
    total = r.report_events(known_day(), spec()).total
    assert total.first_response_avg_s == 15.125 + 3


def test_handle_time_after_contact_work_and_resolution() -> None:
    total = r.report_events(known_day(), spec(), bots=BOTS).total
    # Even contacts: wrap-up 120 s after the answer, closed 30 s later; odd: closed after 90 s.
    assert total.handled == 8
    assert total.aht_s == 105.0
    assert total.acw_avg_s == 30.0
    assert total.resolved == 8
    assert total.resolution_avg_s == (sum(WAITS) + 4 * 150 + 4 * 90) / 8  # 135.125
    assert total.closed == 9


def test_transfers_csat_and_complaints() -> None:
    total = r.report_events(known_day(), spec(), bots=BOTS).total
    assert total.transfers == 1
    assert total.transferred_contacts == 1
    assert total.csat_responses == 3
    assert total.csat_avg == round(11 / 3, 6)
    assert total.csat_response_rate == round(3 / 9, 6)
    # A "Complaint" disposition and a complaint label; a removed label does not count.
    assert total.complaints == 2


def test_an_abandon_then_a_late_assignment_is_not_an_answer() -> None:
    log = Log()
    log.add("conversation.created", 0, 1)
    log.add("conversation.abandoned", 12, 1, wait_s=12.0)
    log.add("conversation.assigned", 20, 1, agent=AGENT_1, wait_s=20.0)
    total = r.report_events(log.sorted(), spec()).total
    assert (total.answered, total.abandoned, total.abandonment_rate) == (0, 1, 1.0)


def test_a_reopened_conversation_is_a_new_contact_with_its_own_wait() -> None:
    log = Log()
    log.add("conversation.created", 0, 1)
    log.add("conversation.assigned", 10, 1, agent=AGENT_1, wait_s=10.0)
    log.add("conversation.closed", 100, 1, agent=AGENT_1, disposition="done")
    log.add("conversation.reopened", 1000, 1)
    log.add("conversation.assigned", 1030, 1, agent=AGENT_2, wait_s=30.0)
    log.add("message.sent", 1040, 1, agent=AGENT_2, message_id=5)
    log.add("conversation.closed", 1100, 1, agent=AGENT_2, disposition="done")
    total = r.report_events(log.sorted(), spec()).total
    assert total.contacts == 2
    assert total.asa_s == 20.0
    assert total.first_response_avg_s == 40.0  # only the second contact got a reply
    assert total.resolution_avg_s == (100 + 100) / 2


def test_queue_transfer_requeue_is_not_a_second_answer() -> None:
    log = Log()
    log.add("conversation.created", 0, 1)
    log.add("conversation.assigned", 5, 1, agent=AGENT_1, wait_s=5.0)
    log.add("conversation.transferred", 60, 1, agent=AGENT_1, to_queue="billing")
    log.add("conversation.queued", 60, 1, queue="billing", reason="transfer")
    # waiting_since survives transfers, so this wait_s includes the first handling.
    log.add("conversation.assigned", 90, 1, agent=AGENT_2, queue="billing", wait_s=90.0)
    log.add("conversation.closed", 150, 1, agent=AGENT_2, queue="billing")
    total = r.report_events(log.sorted(), spec()).total
    assert (total.answered, total.asa_s, total.transfers) == (1, 5.0, 1)
    assert total.aht_s == 145.0


def test_filters_select_queue_channel_and_answering_agent() -> None:
    events = known_day()
    assert r.report_events(events, spec(agent_id=AGENT_2), bots=BOTS).total.asa_s == 19.25
    assert r.report_events(events, spec(queues=frozenset({"billing"}))).total.contacts == 0
    assert r.report_events(events, spec(channel="sms")).total.contacts == 10
    assert r.report_events(events, spec(channel="email")).total.contacts == 0


def test_range_takes_contacts_by_arrival_time() -> None:
    late = spec(start=T0 + timedelta(seconds=arrival(5)))
    total = r.report_events(known_day(), late, bots=BOTS).total
    assert total.contacts == 5  # contacts 5..9 arrived at or after the start
    assert total.answered == 3  # waits 20, 21, 45
    assert total.asa_s == round((20 + 21 + 45) / 3, 3)


def _rows(events: list[r.EventRecord], s: r.ReportSpec, ctx: r.ReportContext) -> r.PartialRows:
    return r.contact_partials(r.fold(events, bots=BOTS).contacts, s, ctx)


def test_group_by_queue_team_channel_and_agent() -> None:
    log = Log()
    for conv, (queue, channel, wait) in enumerate(
        [("support", "sms", 10), ("support", "email", 30), ("billing", "sms", 50)], 1
    ):
        log.add("conversation.created", conv * 100, conv, queue=queue, channel=channel)
        log.add(
            "conversation.assigned",
            conv * 100 + wait,
            conv,
            agent=conv,
            queue=queue,
            channel=channel,
            wait_s=float(wait),
        )
    events = log.sorted()
    ctx = r.ReportContext(teams={"support": "care", "billing": "finance"})
    by = {}
    for group in ("queue", "team", "channel", "agent"):
        s = spec(group_by=group)
        by[group] = {row.key: row.asa_s for row in r.summary(_rows(events, s, ctx), s, ctx).rows}
    assert by["queue"] == {"billing": 50.0, "support": 20.0}
    assert by["team"] == {"finance": 50.0, "care": 20.0}
    assert by["channel"] == {"email": 30.0, "sms": 30.0}
    assert by["agent"] == {"1": 10.0, "2": 30.0, "3": 50.0}
    s = spec()
    channels = r.summary(_rows(events, s, ctx), s, ctx).by_channel
    assert [(c.channel, c.contacts) for c in channels] == [("email", 1), ("sms", 2)]


def test_hourly_timeseries_is_zero_filled_and_bucketed_by_arrival() -> None:
    s = spec(bucket="hour")
    ctx = r.ReportContext()
    series = r.timeseries(_rows(known_day(), s, ctx), s, ctx)
    starts = [p.start.astimezone(UTC).hour for p in series.points]
    assert starts == [8, 9, 10]
    before, first, second = series.points
    assert before.contacts == 0
    assert before.asa_s is None
    # 09:00-10:00: contacts 0..5 (waits 0,0,4,12,19,20); 10:00-11:00: 21, 45 and the abandons.
    assert (first.contacts, first.answered, first.asa_s) == (6, 6, round(55 / 6, 3))
    assert first.service_levels[0].counting_abandons == 1.0
    assert (second.contacts, second.answered, second.abandoned) == (4, 2, 2)
    assert second.service_levels[0].counting_abandons == 0.25  # only the 8 s abandon
    assert second.service_levels[0].answered_only == 0.0


def test_fifteen_minute_buckets_in_a_half_hour_timezone() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+05:30
    s = spec(bucket="15m", tz=kolkata, start=T0, end=T0 + timedelta(minutes=45))
    ctx = r.ReportContext()
    series = r.timeseries(_rows(known_day(), s, ctx), s, ctx)
    assert [p.start.strftime("%H:%M") for p in series.points] == ["14:30", "14:45", "15:00"]
    assert [p.contacts for p in series.points] == [2, 1, 2]


def test_day_buckets_follow_local_midnight_across_daylight_saving() -> None:
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2026, 3, 28, tzinfo=paris)
    s = spec(bucket="day", tz=paris, start=start, end=start + timedelta(days=3))
    points = r.timeseries([], s, r.ReportContext()).points
    assert [p.start.isoformat() for p in points] == [
        "2026-03-28T00:00:00+01:00",
        "2026-03-29T00:00:00+01:00",
        "2026-03-30T00:00:00+02:00",
    ]
    assert points[1].end.timestamp() - points[1].start.timestamp() == 23 * 3600  # short day


def test_wait_distribution_bins_are_upper_inclusive() -> None:
    s = spec(edges=(5.0, 10.0, 20.0, 30.0, 60.0))
    ctx = r.ReportContext()
    dist = r.wait_distribution(_rows(known_day(), s, ctx), s, ctx)
    assert [(b.low_s, b.high_s) for b in dist.bins] == [
        (0.0, 5.0),
        (5.0, 10.0),
        (10.0, 20.0),
        (20.0, 30.0),
        (30.0, 60.0),
        (60.0, None),
    ]
    assert [b.answered for b in dist.bins] == [3, 0, 3, 1, 1, 0]
    assert [b.abandoned for b in dist.bins] == [0, 1, 0, 1, 0, 0]
    assert (dist.answered, dist.abandoned) == (8, 2)


def test_business_hours_report_out_of_hours_arrivals_separately() -> None:
    hours = r.parse_business_hours(HOURS)
    assert hours is not None
    ctx = r.ReportContext(hours={"sales": hours})
    s = spec(start=T0 - timedelta(days=1), end=T0 + timedelta(days=7), group_by="queue")
    report = r.summary(_rows(business_day(), s, ctx), s, ctx)
    assert (report.total.contacts, report.total.asa_s) == (2, 10.0)
    assert (report.out_of_hours.contacts, report.out_of_hours.asa_s) == (2, 305.0)
    assert report.rows[0].out_of_hours_contacts == 2
    assert [(c.channel, c.contacts, c.out_of_hours_contacts) for c in report.by_channel] == [
        ("sms", 2, 2)
    ]


def test_business_hours_schedule_shapes() -> None:
    hours = r.parse_business_hours(
        {
            "business_hours": {
                "timezone": "Asia/Shanghai",
                "mon": [["09:00", "12:00"], ["13:00", "18:00"]],
                "fri": ["22:00", "02:00"],
                "holidays": ["2026-03-03"],
            }
        }
    )
    assert hours is not None
    sh = ZoneInfo("Asia/Shanghai")

    def at(day: int, hour: int, minute: int) -> float:
        return datetime(2026, 3, day, hour, minute, tzinfo=sh).timestamp()

    assert hours.is_open(at(2, 9, 0))
    assert not hours.is_open(at(2, 12, 30))
    assert hours.is_open(at(6, 23, 0))  # Friday night
    assert hours.is_open(at(7, 1, 59))  # ... into Saturday
    assert not hours.is_open(at(7, 2, 0))
    assert not hours.is_open(at(9, 8, 59))
    assert r.parse_business_hours({}) is None
    with pytest.raises(ValueError, match="HH:MM"):
        r.parse_business_hours({"business_hours": {"mon": ["8", "18:00"]}})
    with pytest.raises(ValueError, match="timezone"):
        r.parse_business_hours({"timezone": "Mars/Base", "business_hours": {"mon": []}})


def test_agents_handling_time_and_occupancy() -> None:
    events = known_day()
    s = spec()
    ctx = r.ReportContext()
    facts = r.fold(events, bots=BOTS)
    now = (T0 + timedelta(hours=5)).timestamp()
    work = r.agent_work(facts.handles, facts.intervals, s, now=now)
    by_agent = r.contact_partials(facts.contacts, spec(group_by="agent"), ctx)
    report = r.agents_report(by_agent, work, spec(group_by="agent"))
    one, two = report.items
    assert (one.agent_id, one.answered, one.asa_s) == (AGENT_1, 4, 11.0)
    assert (two.agent_id, two.answered, two.asa_s) == (AGENT_2, 4, 19.25)
    # Agent 1: four 120 s holds + the transferred-in stretch of 60 s; agent 2: 3 x 90 + 30.
    assert (one.handled, one.aht_s, one.acw_avg_s, one.transfers_out) == (5, 108.0, 30.0, 0)
    assert (two.handled, two.aht_s, two.acw_avg_s, two.transfers_out) == (4, 75.0, None, 1)
    # Agent 1 staffed 08:50-10:23:20 (5600 s), busy 4 x 150 + 60 s.
    assert (one.staffed_s, one.busy_s, one.occupancy) == (5600.0, 660.0, round(660 / 5600, 6))
    # Agent 2 went offline at 09:33:20 but kept handling: that time counts as staffed.
    assert (two.staffed_s, two.busy_s) == (2780.0, 300.0)
    assert two.occupancy == round(300 / 2780, 6)
    assert two.state_s == {"available": 2600.0, "offline": 7200 - 2000}
    # CSAT and complaints go to the agent who answered the contact first.
    assert (one.csat_responses, one.csat_avg, one.complaints) == (1, 5.0, 1)
    assert (two.csat_responses, two.csat_avg, two.complaints) == (2, 3.0, 1)


def test_staffing_matches_the_erlang_c_reference_table() -> None:
    plan = r.staffing([200.0, 1000.0], aht_s=180.0, target_sl=0.8, threshold_s=20.0)
    first, second = plan.rows
    assert first.agents == 14  # 13 agents give SL20 0.7956 < 0.8
    assert first.traffic_erlangs == 10.0
    by_c = {row.agents: row for row in plan.around}
    assert round(by_c[13].p_wait, 4) == 0.2853
    assert by_c[13].asa_s is not None
    assert round(by_c[13].asa_s, 2) == 17.12
    assert round(by_c[13].service_level, 4) == 0.7956
    assert round(by_c[12].service_level, 4) == 0.6402
    assert round(by_c[14].p_wait, 4) == 0.1741
    assert second.traffic_erlangs == 50.0
    assert r.staffing([0.0], aht_s=180, target_sl=0.8, threshold_s=20).rows[0].agents == 0
    with pytest.raises(ValueError, match="target_sl"):
        r.staffing([10.0], aht_s=180, target_sl=1.0, threshold_s=20)


def test_fold_is_incremental() -> None:
    """Folding in two halves, carrying the open state, gives the same facts as one pass."""
    events = known_day()
    whole = r.fold(events, bots=BOTS)
    first = r.Folder(bots=BOTS)
    first.apply_all(events[:40])
    second = r.Folder(bots=BOTS, current=first.current, handles=first.handles, agents=first.agents)
    second.apply_all(events[40:])
    merged = {c.arrival_seq: c for c in first.contacts.values()}
    merged.update({c.arrival_seq: c for c in second.contacts.values()})
    assert sorted(merged.values(), key=lambda c: c.arrival_seq) == whole.contacts


def test_slot_plan_for_sql_agrees_with_the_schedule_across_dst_and_holidays() -> None:
    hours = r.parse_business_hours(
        {
            "timezone": "America/New_York",
            "business_hours": {
                "mon": ["08:00", "18:00"],
                "sat": [["09:00", "12:00"], ["13:15", "16:45"]],
                "sun": ["22:00", "02:00"],
                "holidays": ["2026-03-09"],
            },
        }
    )
    assert hours is not None
    start = datetime(2026, 3, 1, tzinfo=UTC).timestamp()  # DST starts 2026-03-08 in New York
    end = datetime(2026, 3, 22, tzinfo=UTC).timestamp()
    plan = hours.slot_plan(start, end)
    assert len(plan.offsets) == 2
    slots = range(int(start // r.SLOT_S), int(end // r.SLOT_S))
    assert all(plan.is_open(s) == hours.is_open(s * r.SLOT_S) for s in slots)
    assert sum(hours.is_open(s * r.SLOT_S) for s in slots) > 0
