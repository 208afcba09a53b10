"""KPIs from the event log: a pure fold into contact facts, then mergeable aggregates.

The event log is the only input. ``fold`` (``facts``) turns events into facts: one
``ContactFact`` per contact (a conversation from its arrival, ``conversation.created`` or
``conversation.reopened``, to its end), one ``HandleFact`` per stretch an agent held it,
and ``AgentInterval``s (state, staffed, busy) per agent. Facts are aggregated into
``Partial``s (``partials``) keyed by (15-minute slot, queue, channel, agent, in business
hours, see ``hours``); partials merge, so the same finishing code (``finish``, into the
models of ``outputs``) turns them into reports whether they were summed here (tests) or by
the database (``hub.reports.sql``, over the rollups ``hub.reports.rollup`` keeps of the same fold).

Definitions (Amazon Connect's and Genesys Cloud's, where they agree):

- A contact is *answered* by its first ``conversation.assigned``; its wait is the event's
  ``wait_s`` (from waiting_since). Later assignments (transfers) are not answers.
- It is *abandoned* by ``conversation.abandoned`` (``wait_s``), or by ``conversation.closed``
  before any assignment (wait = arrival to close).
- Service level at T counting abandons = (answered within T + abandoned within T) /
  (answered + abandoned); answered only = answered within T / answered. Within T is
  ``wait <= T``. Abandonment rate = abandoned / (answered + abandoned). ASA = mean wait of
  answered contacts.
- First response: arrival to the first reply written by a person (``message.sent`` with an
  agent author who is not a bot, i.e. no agent of role "bot" and no ``bot`` payload flag,
  and kind not auto_reply/bulk); notes never count.
- Handle time (AHT): first assignment to the first wrap-up, or to the close without one;
  after-contact work (ACW): wrap-up to close. Resolution: arrival to close, answered only.
- CSAT: the contact's last ``message.received`` of kind csat with a numeric ``score``;
  response rate = responses / closed contacts. Complaint: label or disposition "complaint".
- Contact figures are attributed to the contact's arrival time (its slot, its queue's
  business hours); agent handling and occupancy to the time the work happened.
"""

from __future__ import annotations

from hub.reports.facts import (
    ARRIVALS,
    BOT_KINDS,
    COMPLAINT,
    FOLDED,
    SLOT_S,
    AgentInterval,
    AgentStatus,
    ContactFact,
    EventRecord,
    Facts,
    Folder,
    HandleFact,
    fold,
)
from hub.reports.finish import (
    AgentWork,
    agent_work,
    agents_report,
    bucket_end,
    bucket_start,
    buckets,
    group_of,
    kpi_fields,
    report_events,
    staffing,
    summary,
    timeseries,
    wait_distribution,
)
from hub.reports.hours import (
    DAYS,
    EPOCH_SLOT_OF_WEEK,
    WEEK_SLOTS,
    BusinessHours,
    SlotPlan,
    parse_business_hours,
    zone,
)
from hub.reports.outputs import (
    AgentRow,
    AgentsReport,
    ChannelCount,
    KpiRow,
    Kpis,
    Out,
    ServiceLevel,
    Staffing,
    StaffingRow,
    Summary,
    Timeseries,
    TimeseriesPoint,
    WaitBin,
    WaitDistribution,
)
from hub.reports.partials import (
    BUCKET_S,
    Bucket,
    GroupBy,
    Partial,
    PartialKey,
    PartialRows,
    ReportContext,
    ReportSpec,
    contact_partials,
    selects,
)

__all__ = [
    "ARRIVALS",
    "BOT_KINDS",
    "BUCKET_S",
    "COMPLAINT",
    "DAYS",
    "EPOCH_SLOT_OF_WEEK",
    "FOLDED",
    "SLOT_S",
    "WEEK_SLOTS",
    "AgentInterval",
    "AgentRow",
    "AgentStatus",
    "AgentWork",
    "AgentsReport",
    "Bucket",
    "BusinessHours",
    "ChannelCount",
    "ContactFact",
    "EventRecord",
    "Facts",
    "Folder",
    "GroupBy",
    "HandleFact",
    "KpiRow",
    "Kpis",
    "Out",
    "Partial",
    "PartialKey",
    "PartialRows",
    "ReportContext",
    "ReportSpec",
    "ServiceLevel",
    "SlotPlan",
    "Staffing",
    "StaffingRow",
    "Summary",
    "Timeseries",
    "TimeseriesPoint",
    "WaitBin",
    "WaitDistribution",
    "agent_work",
    "agents_report",
    "bucket_end",
    "bucket_start",
    "buckets",
    "contact_partials",
    "fold",
    "group_of",
    "kpi_fields",
    "parse_business_hours",
    "report_events",
    "selects",
    "staffing",
    "summary",
    "timeseries",
    "wait_distribution",
    "zone",
]
