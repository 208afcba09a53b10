"""Request and response models of the REST API; they also generate the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Row ids are BIGINT; a larger number names no row and would overflow the database driver.
MAX_ID = 2**63 - 1
# Integer columns (priorities, thresholds) are 32-bit on PostgreSQL.
MAX_INT32 = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Int32 = Annotated[int, Field(ge=-MAX_INT32, le=MAX_INT32)]
# Names stored in VARCHAR(100) columns (teams, queues, skills, reasons).
Name = Annotated[str, Field(max_length=100)]


class Model(BaseModel):
    """Base: unknown fields are rejected, so typos fail loudly; 1e999 (inf) is no number."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ErrorOut(Model):
    error: str = Field(description="machine-readable code, e.g. invalid_input")
    detail: str = Field(description="what was wrong, for a person")


class InboundIn(Model):
    """A contact through the generic API channel."""

    from_: str = Field(alias="from", min_length=1, max_length=320, description="phone, email or id")
    name: str | None = Field(default=None, max_length=200)
    text: str = Field(min_length=1, max_length=64_000)
    external_id: str = Field(min_length=1, max_length=200, description="your id; dedupe key")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InboundOut(Model):
    customer_id: int
    conversation_id: int
    message_id: int


class EndpointOut(Model):
    kind: str
    address: str
    verified: bool = False
    opted_out: list[str] = []
    undeliverable: str = ""


class CustomerOut(Model):
    id: int
    display_name: str
    segment: str
    language: str
    tags: list[str]
    attributes: dict[str, Any]
    flags: list[dict[str, Any]]
    merged_into_id: int | None
    endpoints: list[EndpointOut]
    created_at: datetime


class CustomerList(Model):
    items: list[CustomerOut]


class AttachmentOut(Model):
    id: int
    filename: str
    content_type: str
    size: int
    state: Literal["pending", "fetched", "failed"] = Field(
        description="pending: announced, being fetched (with retries); fetched: stored here; "
        "failed: given up (POST .../retry asks again)"
    )
    error: str = Field(description="why it is pending or failed (empty when fetched)")
    url: str | None = Field(description="download link on this hub (only when fetched)")


class MessageOut(Model):
    id: int
    conversation_id: int
    customer_id: int
    channel: str
    direction: Literal["in", "out", "note", "system"]
    kind: str
    text: str
    provider_id: str | None
    status: str
    error_code: str
    error_message: str
    author_id: int | None
    created_at: datetime
    edited_at: datetime | None
    attachments: list[AttachmentOut]
    metadata: dict[str, Any]


class MessagePage(Model):
    items: list[MessageOut]
    next: str | None = Field(description="cursor for the next (older) page; null at the end")


class ConversationOut(Model):
    id: int
    customer_id: int
    channel: str
    endpoint: EndpointOut
    our_address: str
    subject: str
    state: str
    queue: str
    priority: int
    assignee_id: int | None
    labels: list[str]
    participants: list[str]
    disposition: str
    created_at: datetime
    last_activity_at: datetime
    last_inbound_at: datetime | None
    closed_at: datetime | None


class ConversationList(Model):
    items: list[ConversationOut]


class ReplyIn(Model):
    """An agent's reply (or internal note) on a conversation."""

    text: str = Field(min_length=1, max_length=64_000)
    note: bool = False
    visibility: Literal["all", "team"] = Field(
        default="all",
        description="a note's readers: everyone who sees the conversation, or your team",
    )
    channel: str | None = Field(default=None, description="reply on another channel")
    endpoint: str | None = Field(default=None, description="'kind:address' of the customer")
    options: dict[str, Any] = Field(default_factory=dict)
    client_msg_id: str | None = Field(default=None, max_length=100)


class OutboxItemOut(Model):
    id: int
    message_id: int
    channel: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str


class OutboxList(Model):
    items: list[OutboxItemOut]


class EventOut(Model):
    seq: int
    type: str
    at: datetime
    conversation_id: int | None
    customer_id: int | None
    agent_id: int | None
    queue: str
    channel: str
    payload: dict[str, Any]


class EventPage(Model):
    items: list[EventOut]
    head: int


class CustomerPatch(Model):
    """Profile fields to change; absent fields stay as they are."""

    display_name: str | None = Field(default=None, max_length=200)
    segment: Literal["standard", "vip", "blocked"] | None = None
    language: str | None = Field(default=None, max_length=10)
    tags: list[str] | None = None
    attributes: dict[str, Any] | None = None


class MergeIn(Model):
    other_id: Id = Field(description="the customer absorbed into this one")
    force: bool = Field(default=False, description="merge despite conflicting identifiers")


class MergeOut(Model):
    audit_id: int = Field(description="pass to /api/v1/merges/{audit_id}/undo to unmerge")


class SkillLevel(Model):
    name: str = Field(min_length=1, max_length=100)
    proficiency: float = Field(ge=0, le=5)


Capacity = dict[
    Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], Annotated[int, Field(ge=0, le=100)]
]
CAPACITY_DOC = (
    "tasks at once per channel (voice, sms, whatsapp, telegram, webchat, wechat, app, api,"
    ' email) and per pool ("message": every messaging channel together). Absent or empty:'
    " one call, three message threads in all, five emails. Channels named are the only ones"
    ' served; a map naming only pools, e.g. {"message": 5}, keeps the channel defaults'
)


class AgentIn(Model):
    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: str = Field(min_length=8, max_length=200)
    display_name: str = Field(default="", max_length=200)
    role: Literal["agent", "supervisor", "admin"] = "agent"
    team: Name | None = None
    skills: list[SkillLevel] = []
    capacity: Capacity | None = Field(default=None, description=CAPACITY_DOC)


class AgentPatch(Model):
    display_name: str | None = Field(default=None, max_length=200)
    team: Name | None = None
    skills: list[SkillLevel] | None = None
    capacity: Capacity | None = Field(default=None, description=CAPACITY_DOC)
    phone: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^(|\+[1-9]\d{6,14}|sips?:[^\s@]+@[^\s]+)$",
        description="where an accepted call rings the agent: E.164 number or sip: address "
        "('' clears it)",
    )
    active: bool | None = None
    role: Literal["agent", "supervisor", "admin"] | None = Field(
        default=None, description="only admins make or unmake admins; the user logs in again"
    )
    state: Literal["available", "away", "offline"] | None = None
    state_reason: Name = ""


class AgentOut(Model):
    id: int
    username: str
    display_name: str
    role: str
    team: str | None
    state: str
    state_reason: str
    state_since: datetime
    skills: list[SkillLevel]
    capacity: dict[str, int]
    phone: str
    active: bool


class AgentList(Model):
    items: list[AgentOut]


class QueueStep(Model):
    expression: str = Field(default="", max_length=500, description="e.g. 'billing >= 3'")
    timeout_s: float | None = Field(default=None, gt=0, description="step expiry from task age")


class QueueIn(Model):
    team: Name | None = None
    steps: list[QueueStep] = Field(default_factory=lambda: [QueueStep()])
    selection: Literal[
        "longest_idle", "best_proficiency", "least_busy", "round_robin", "random"
    ] = "longest_idle"
    priority: Int32 = 0
    sl_threshold_s: int = Field(default=20, gt=0, le=MAX_INT32)
    options: dict[str, Any] = Field(default_factory=dict)


class QueueOut(QueueIn):
    name: str


class QueueList(Model):
    items: list[QueueOut]
