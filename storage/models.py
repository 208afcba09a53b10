"""SQLAlchemy 2 models of the domain; portable between SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a stable constraint naming convention (for Alembic)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        int: BigId,
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class Team(Base):
    """A department; agents belong to one, queues are served by one."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Skill(Base):
    """A routable skill or language ("billing", "lang:zh")."""

    __tablename__ = "skills"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Agent(Base):
    """A person who logs in: agent, supervisor or admin."""

    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="agent")
    password_hash: Mapped[str] = mapped_column(String(200), default="")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), default="offline")
    state_reason: Mapped[str] = mapped_column(String(100), default="")
    state_since: Mapped[datetime] = mapped_column(default=utcnow)
    # Per-channel capacity, e.g. {"voice": 1, "sms": 3, "email": 5}.
    capacity: Mapped[dict[str, Any]] = mapped_column(default=dict)
    language: Mapped[str] = mapped_column(String(10), default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Created by ``hub demo`` with the documented password: the hub refuses to serve while
    # one is active outside demo mode (no hash check of every password at start).
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Where the hub rings the agent for a call they accept: E.164 number or ``sip:`` address.
    phone: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentSkill(Base):
    """An agent's proficiency (0-5, fractional) in one skill."""

    __tablename__ = "agent_skills"
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), primary_key=True)
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id"), primary_key=True)
    proficiency: Mapped[float] = mapped_column(Float, default=1.0)


class Queue(Base):
    """Where routed work waits; routing settings live here, apart from channel credentials."""

    __tablename__ = "queues"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    # Ordered requirement steps: [{"expression": "billing >= 3", "timeout_s": 30}, ...].
    steps: Mapped[list[Any]] = mapped_column(default=list)
    selection: Mapped[str] = mapped_column(String(30), default="longest_idle")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    sl_threshold_s: Mapped[int] = mapped_column(Integer, default=20)
    # Extra settings (business hours, per-channel overrides, VIP rules) as data.
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Customer(Base):
    """A person; endpoints say how to reach them."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    segment: Mapped[str] = mapped_column(String(30), default="standard")
    language: Mapped[str] = mapped_column(String(10), default="")
    tags: Mapped[list[Any]] = mapped_column(default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Set on the absorbed customer of a merge; it stays for unmerge and for old links.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    # Identity conflicts waiting for a person ([{"kind", "address", "reason"}]).
    flags: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Set when the customer's personal data was erased; the row stays as a tombstone.
    erased_at: Mapped[datetime | None] = mapped_column()


class Endpoint(Base):
    """(kind, normalized address) -> customer; unique across the hub."""

    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("kind", "address"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(320))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # Channels this address opted out of ("sms", "whatsapp", "email").
    opted_out: Mapped[list[Any]] = mapped_column(default=list)
    undeliverable: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conversation(Base):
    """A thread with one customer on one channel endpoint."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_thread", "channel", "thread_key"),
        Index("ix_conversations_customer_activity", "customer_id", "last_activity_at"),
        Index("ix_conversations_state", "state"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    # Our address the customer wrote to; replies go out from it.
    our_address: Mapped[str] = mapped_column(String(320), default="")
    thread_key: Mapped[str | None] = mapped_column(String(200))
    reply_token: Mapped[str] = mapped_column(String(40), unique=True)
    subject: Mapped[str] = mapped_column(String(500), default="")
    state: Mapped[str] = mapped_column(String(20), default="open")
    queue: Mapped[str] = mapped_column(String(100), default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    labels: Mapped[list[Any]] = mapped_column(default=list)
    participants: Mapped[list[Any]] = mapped_column(default=list)
    disposition: Mapped[str] = mapped_column(String(100), default="")
    # What routing asks of an agent beyond the queue's steps: {"skills": [...], "intent": ...}
    # (set by automation rules and the first-line bot).
    routing: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    # Routing age survives transfers: the time the current piece of work started waiting.
    waiting_since: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column()
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()


class Message(Base):
    """Inbound, outbound, internal note or system entry of a conversation."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_id"),
        Index("ix_messages_customer_id_desc", "customer_id", "id"),
        Index("ix_messages_conversation_id", "conversation_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10))  # in / out / note / system
    kind: Mapped[str] = mapped_column(String(20), default="message")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    text: Mapped[str] = mapped_column(Text, default="")
    provider_id: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="")
    error_code: Mapped[str] = mapped_column(String(50), default="")
    error_message: Mapped[str] = mapped_column(String(500), default="")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    raw: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    occurred_at: Mapped[datetime | None] = mapped_column()
    edited_at: Mapped[datetime | None] = mapped_column()


class MessageAttachment(Base):
    """An attachment's metadata, (size-limited) bytes and fetch state.

    ``pending`` rows are fetched again by ``hub.ingest.media`` through the channel's adapter from
    ``source`` (a provider reference, never sent to a browser) at ``next_attempt_at``.
    """

    __tablename__ = "attachments"
    __table_args__ = (
        # The media worker's "what is due" query; only pending rows are in the index.
        Index(
            "ix_attachments_due",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    filename: Mapped[str] = mapped_column(String(300), default="")
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    data: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    state: Mapped[str] = mapped_column(String(20), default="fetched", server_default="fetched")
    source: Mapped[str | None] = mapped_column(String(2000))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str] = mapped_column(String(300), default="", server_default="")


class StreamHead(Base):
    """One row holding the last event seq; updating it serializes appends (gap-free order)."""

    __tablename__ = "stream_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Lease(Base):
    """A named lease held by one process at a time (the router's is ``router``).

    ``token`` grows by one on every acquisition: work done under a lease checks, in its own
    transaction, that the token is still current (fencing), so a holder that lost the lease
    without knowing can no longer write.
    """

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    holder: Mapped[str] = mapped_column(String(60), default="")
    token: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    """The append-only interaction stream; ``seq`` is global, monotonic and gap-free."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_conversation", "conversation_id", "seq"),
        Index("ix_events_type_created", "type", "created_at"),
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(50))
    conversation_id: Mapped[int | None] = mapped_column(BigInteger)
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    agent_id: Mapped[int | None] = mapped_column(BigInteger)
    queue: Mapped[str] = mapped_column(String(100), default="")
    channel: Mapped[str] = mapped_column(String(20), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxItem(Base):
    """A pending provider send with its attempts; ``dead`` after the last failure."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    channel: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending/sending/done/dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Set when an attempt begun then was never recorded (its process died mid-send): the
    # next attempt first asks the provider whether it has the message (SendReconciler).
    uncertain_since: Mapped[datetime | None] = mapped_column(default=None)


class Offer(Base):
    """A reservation: a task offered to one agent until accepted, rejected or expired."""

    __tablename__ = "offers"
    __table_args__ = (Index("ix_offers_state", "state"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column()


class AuditEntry(Base):
    """Who did what to which record (merge, transfer, role change, export)."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    target_type: Mapped[str] = mapped_column(String(30))
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Where the request came from (client address), '' for the hub itself.
    ip: Mapped[str] = mapped_column(String(64), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class UserSession(Base):
    """A browser login: an opaque token (stored hashed) in an HttpOnly cookie."""

    __tablename__ = "sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    # For the idle timeout; written at most once a minute per session.
    last_seen_at: Mapped[datetime | None] = mapped_column()


class ApiToken(Base):
    """A named, scoped integration token (stored hashed; shown once at creation)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # e.g. ["inbound"], ["read", "reports"], ["admin"]
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class ConversationGrant(Base):
    """A team that may see a conversation besides its queue's team (after a transfer)."""

    __tablename__ = "conversation_grants"
    conversation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversations.id"), primary_key=True
    )
    team_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("teams.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CommandRecord(Base):
    """One entry of the command log: what a caller's keyed command answered (``hub.commands``).

    Console commands (``client_msg_id``) and REST replies (``client_msg_id`` in the body) share
    it, so a repeated command answers as the first one did instead of acting twice."""

    __tablename__ = "command_log"
    actor: Mapped[str] = mapped_column(String(100), primary_key=True)  # e.g. "agent:7"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    # What the key was used for; "" for entries older than this column (any command matches).
    command: Mapped[str] = mapped_column(String(50), default="")
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Call(Base):
    """One phone call: an inbound caller's leg (IVR, queue, bridge) or a callback we placed.

    Providers report a call's facts in any order and more than once; ``hub.voice`` folds each
    fact in idempotently and decides the outcome once (``facts`` keeps what was applied)."""

    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10))  # inbound / callback
    # ivr / queued / connecting / talking / ended
    state: Mapped[str] = mapped_column(String(20), default="ivr")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    from_number: Mapped[str] = mapped_column(String(200), default="")
    to_number: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(10), default="")
    queue: Mapped[str] = mapped_column(String(100), default="")
    ivr: Mapped[list[Any]] = mapped_column(default=list)  # the caller's menu choices, in order
    exit: Mapped[str] = mapped_column(String(20), default="")  # voicemail / callback
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    agent_leg: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    wait_s: Mapped[int | None] = mapped_column(Integer)
    talk_s: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[int | None] = mapped_column(Integer)
    # answered / abandoned / voicemail / callback_requested / ivr_hangup / no_answer
    outcome: Mapped[str] = mapped_column(String(20), default="", index=True)
    summary_id: Mapped[int | None] = mapped_column(BigId)  # the history entry describing it
    recording: Mapped[dict[str, Any]] = mapped_column(default=dict)
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ReportContact(Base):
    """Rollup for reports: one contact folded from the event log (``hub.reports``); rebuildable."""

    __tablename__ = "report_contacts"
    __table_args__ = (
        Index("ix_report_contacts_arrived_at", "arrived_at"),
        Index("ix_report_contacts_conversation", "conversation_id", "arrival_seq"),
    )
    arrival_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    conversation_id: Mapped[int] = mapped_column(BigInteger)
    queue: Mapped[str] = mapped_column(String(100), default="")
    channel: Mapped[str] = mapped_column(String(20), default="")
    # Times are UTC epoch seconds: the same arithmetic on SQLite and PostgreSQL.
    arrived_at: Mapped[float] = mapped_column(Float)
    arrived_slot: Mapped[int] = mapped_column(BigInteger)  # arrived_at // 900
    agent_id: Mapped[int | None] = mapped_column(BigInteger)
    last_agent_id: Mapped[int | None] = mapped_column(BigInteger)
    answered_at: Mapped[float | None] = mapped_column(Float)
    wait_s: Mapped[float | None] = mapped_column(Float)
    abandoned_at: Mapped[float | None] = mapped_column(Float)
    abandon_wait_s: Mapped[float | None] = mapped_column(Float)
    frt_s: Mapped[float | None] = mapped_column(Float)
    wrap_up_at: Mapped[float | None] = mapped_column(Float)
    handle_s: Mapped[float | None] = mapped_column(Float)
    acw_s: Mapped[float | None] = mapped_column(Float)
    closed_at: Mapped[float | None] = mapped_column(Float)
    resolution_s: Mapped[float | None] = mapped_column(Float)
    disposition: Mapped[str] = mapped_column(String(100), default="")
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    csat_score: Mapped[float | None] = mapped_column(Float)
    labelled_complaint: Mapped[bool] = mapped_column(Boolean, default=False)
    complaint: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportHandle(Base):
    """Rollup for reports: an agent holding a contact, from assignment to release."""

    __tablename__ = "report_handles"
    __table_args__ = (
        Index("ix_report_handles_conversation", "conversation_id", "released_at"),
        Index("ix_report_handles_agent", "agent_id", "released_at"),
        Index("ix_report_handles_ended_at", "ended_at"),
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    conversation_id: Mapped[int] = mapped_column(BigInteger)
    agent_id: Mapped[int] = mapped_column(BigInteger)
    queue: Mapped[str] = mapped_column(String(100), default="")
    channel: Mapped[str] = mapped_column(String(20), default="")
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    released_at: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(20), default="")


class ReportAgentInterval(Base):
    """Rollup for reports: a stretch of an agent's time (a state, staffed or busy)."""

    __tablename__ = "report_agent_intervals"
    __table_args__ = (
        Index("ix_report_agent_intervals_open", "agent_id", "ended_at"),
        Index("ix_report_agent_intervals_started_at", "started_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(20), default="")
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportState(Base):
    """How far the report rollups have folded the event log (one row)."""

    __tablename__ = "report_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class CannedResponse(Base):
    """A reply text agents insert by shortcut; placeholders are filled per conversation."""

    __tablename__ = "canned_responses"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # None: every team's agents see it.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    # '' : any language; otherwise the customer language it is written in ("en", "zh").
    language: Mapped[str] = mapped_column(String(10), default="", server_default="")
    shortcut: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(200), default="", server_default="")
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Disposition(Base):
    """A wrap-up code agents pick when closing; per queue ('' : every queue)."""

    __tablename__ = "dispositions"
    __table_args__ = (UniqueConstraint("queue", "code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    queue: Mapped[str] = mapped_column(String(100), default="", server_default="")
    code: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(200), default="", server_default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


# ---------------------------------------------------------------- workflow (hub.workflow)
class Rule(Base):
    """An automation rule: on ``event``, when ``conditions`` hold, run ``actions`` (in order of
    ``position``); the shapes are checked by ``hub.workflow.rules``."""

    __tablename__ = "rules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    event: Mapped[str] = mapped_column(String(50))
    conditions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actions: Mapped[list[Any]] = mapped_column(default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WorkflowCursor(Base):
    """How far a workflow consumer has read the event log; moved in the transaction that
    does the work the events asked for (compare-and-set: two processes never both do it)."""

    __tablename__ = "workflow_cursors"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class SlaPolicy(Base):
    """Response and resolution targets for the conversations of a queue and segment (empty:
    any), or for complaints (``kind``), counted in the business hours of ``calendar``."""

    __tablename__ = "sla_policies"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="conversation")  # or complaint
    queue: Mapped[str] = mapped_column(String(100), default="")
    segment: Mapped[str] = mapped_column(String(30), default="")
    severity: Mapped[str] = mapped_column(String(20), default="")  # complaints only
    first_response_s: Mapped[int | None] = mapped_column(Integer)
    next_response_s: Mapped[int | None] = mapped_column(Integer)
    resolution_s: Mapped[int | None] = mapped_column(Integer)
    warn_ratio: Mapped[float] = mapped_column(Float, default=0.8)
    calendar: Mapped[dict[str, Any]] = mapped_column(default=dict)
    escalation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SlaTimer(Base):
    """One running target of one conversation (or complaint): warn and breach instants."""

    __tablename__ = "sla_timers"
    __table_args__ = (
        Index("ix_sla_timers_due", "state", "next_at"),
        Index("ix_sla_timers_conversation", "conversation_id", "metric"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    complaint_id: Mapped[int | None] = mapped_column(BigInteger)
    policy_id: Mapped[int] = mapped_column(ForeignKey("sla_policies.id"))
    metric: Mapped[str] = mapped_column(String(20))  # first_response/next_response/resolution
    queue: Mapped[str] = mapped_column(String(100), default="")
    state: Mapped[str] = mapped_column(String(10), default="running")  # warned/breached/met/...
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    warn_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    next_at: Mapped[datetime | None] = mapped_column()  # the next instant to act; None: done
    ended_at: Mapped[datetime | None] = mapped_column()


class Complaint(Base):
    """A conversation marked as a complaint: where it went, how it was escalated, resolved."""

    __tablename__ = "complaints"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    category: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(20))  # low / medium / high / critical
    state: Mapped[str] = mapped_column(String(20), default="open")  # open/escalated/resolved
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    queue: Mapped[str] = mapped_column(String(100), default="")
    summary: Mapped[str] = mapped_column(String(1000), default="")
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolution: Mapped[str] = mapped_column(Text, default="")
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    resolved_at: Mapped[datetime | None] = mapped_column()
    notified_message_id: Mapped[int | None] = mapped_column(BigInteger)


class FollowUp(Base):
    """A follow-up task on a customer (and maybe one conversation): an owner and a due date."""

    __tablename__ = "follow_ups"
    __table_args__ = (Index("ix_follow_ups_open", "state", "due_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    title: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(20), default="manual")  # csat / complaint / rule
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    due_at: Mapped[datetime | None] = mapped_column()
    state: Mapped[str] = mapped_column(String(10), default="open")  # open / done
    created_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column()


class CustomerNote(Base):
    """An internal note on a customer record; ``team_id`` set: only that team (and
    supervisors and admins) read it."""

    __tablename__ = "customer_notes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Survey(Base):
    """The satisfaction survey of a closed conversation, on its channel."""

    __tablename__ = "surveys"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(20))
    agent_id: Mapped[int | None] = mapped_column(BigInteger)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(10), default="sent")  # sent / answered / expired
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column()
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(String(1000), default="")
