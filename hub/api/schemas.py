"""Request and response models of the REST API; they also generate the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    """Base: unknown fields are rejected, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid")


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
    url: str | None = Field(description="download link on this hub (null when not stored)")


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
