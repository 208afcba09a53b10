"""The reports' output models (the API's response bodies)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    """Base of report models."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceLevel(Out):
    threshold_s: float = Field(description="a contact meets it when its wait is <= threshold_s")
    counting_abandons: float | None = Field(
        description="(answered + abandoned within T) / (answered + abandoned)"
    )
    answered_only: float | None = Field(description="answered within T / answered")


class Kpis(Out):
    contacts: int = Field(description="arrivals (new and re-opened conversations)")
    answered: int
    abandoned: int
    asa_s: float | None = Field(description="average speed of answer")
    max_wait_s: float | None
    abandonment_rate: float | None = Field(description="abandoned / (answered + abandoned)")
    avg_abandon_wait_s: float | None
    service_levels: list[ServiceLevel]
    first_responses: int
    first_response_avg_s: float | None
    handled: int
    aht_s: float | None = Field(description="assignment to wrap-up (or close)")
    acw_avg_s: float | None = Field(description="after-contact work: wrap-up to close")
    resolved: int
    resolution_avg_s: float | None = Field(description="arrival to close, answered contacts")
    closed: int
    transfers: int
    transferred_contacts: int
    csat_responses: int
    csat_avg: float | None
    csat_response_rate: float | None = Field(description="CSAT responses / closed contacts")
    complaints: int


class KpiRow(Kpis):
    key: str = Field(description="the group: queue, team, agent id or channel")
    out_of_hours_contacts: int


class ChannelCount(Out):
    channel: str
    contacts: int
    out_of_hours_contacts: int


class Summary(Out):
    start: datetime
    end: datetime
    tz: str
    group_by: str | None
    thresholds: list[float]
    total: Kpis = Field(description="contacts that arrived within business hours")
    out_of_hours: Kpis = Field(description="contacts that arrived outside business hours")
    by_channel: list[ChannelCount]
    rows: list[KpiRow]


class TimeseriesPoint(KpiRow):
    start: datetime
    end: datetime


class Timeseries(Out):
    start: datetime
    end: datetime
    tz: str
    bucket: str
    group_by: str | None
    thresholds: list[float]
    points: list[TimeseriesPoint]


class WaitBin(Out):
    low_s: float = Field(description="waits above this (the first bin starts at 0 inclusive)")
    high_s: float | None = Field(description="waits up to and including this; null: no bound")
    answered: int
    abandoned: int


class WaitDistribution(Out):
    start: datetime
    end: datetime
    tz: str
    answered: int
    abandoned: int
    out_of_hours_contacts: int = Field(description="left out: they wait for opening time")
    bins: list[WaitBin]


class AgentRow(Out):
    agent_id: int
    name: str
    team: str
    handled: int = Field(description="holds that ended in the range")
    aht_s: float | None
    acw_avg_s: float | None
    transfers_out: int
    answered: int = Field(description="contacts this agent answered first")
    asa_s: float | None
    first_response_avg_s: float | None
    csat_responses: int
    csat_avg: float | None
    complaints: int
    staffed_s: float = Field(description="time not offline, or holding a contact")
    busy_s: float = Field(description="time holding at least one contact (wrap-up included)")
    occupancy: float | None = Field(description="busy / staffed")
    state_s: dict[str, float] = Field(description="seconds in each state")


class AgentsReport(Out):
    start: datetime
    end: datetime
    tz: str
    items: list[AgentRow]


class StaffingRow(Out):
    arrivals_per_hour: float
    traffic_erlangs: float
    agents: int
    p_wait: float
    asa_s: float | None
    service_level: float
    occupancy: float


class Staffing(Out):
    aht_s: float
    target_sl: float
    threshold_s: float
    rows: list[StaffingRow] = Field(description="agents needed for each forecast value")
    around: list[StaffingRow] = Field(description="the first forecast with fewer/more agents")
