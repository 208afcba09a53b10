"""Automation rules: what a rule may say (checked when it is saved) and whether it matches.

A rule is ``event`` + ``conditions`` (all must hold) + ``actions`` (run in order). The
engine (``hub.workflow.engine``) evaluates the enabled rules in ``position`` order against
every event of the log; this module holds no state and touches no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, field_validator

# The events a rule can be written for, with the log's event types each one means.
TRIGGERS: Mapping[str, frozenset[str]] = {
    "message.created": frozenset({"message.received"}),
    "conversation.opened": frozenset({"conversation.created", "conversation.reopened"}),
    "conversation.assigned": frozenset({"conversation.assigned"}),
    # Labels or priority changed (by a person, or by a rule: the case loop safety is for).
    "conversation.updated": frozenset({"conversation.updated"}),
    "conversation.closed": frozenset({"conversation.closed"}),
    "sla.warning": frozenset({"sla.warning"}),
    "sla.breached": frozenset({"sla.breached"}),
    "csat.received": frozenset({"csat.received"}),
}
TRIGGER_OF: Mapping[str, str] = {t: name for name, types in TRIGGERS.items() for t in types}

# A rule's regular expression gets this long on one text; a pattern that backtracks past it
# counts as not matching (and the firing says so) instead of freezing the engine.
REGEX_TIMEOUT_S = 0.05
TEXT_LIMIT = 4000

Short = Annotated[str, Field(min_length=1, max_length=100)]
Names = Annotated[list[Short], Field(max_length=50)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conditions(_Model):
    """All given conditions must hold; none given: every event of the trigger matches."""

    channel: Names | None = None
    queue: Names | None = None
    text_contains: Names | None = Field(
        default=None, description="any of these words or phrases (case-insensitive)"
    )
    text_regex: str | None = Field(default=None, max_length=300)
    segment: Names | None = None
    tags: Names | None = Field(default=None, description="the customer has any of these tags")
    labels: Names | None = Field(default=None, description="the conversation has any of these")
    language: Names | None = None
    business_hours: Literal["open", "closed"] | None = Field(
        default=None, description="the conversation's queue is open / closed now"
    )
    priority_min: int | None = Field(default=None, ge=-1000, le=1000)
    priority_max: int | None = Field(default=None, ge=-1000, le=1000)

    @field_validator("text_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                regex.compile(value)
            except regex.error as err:
                raise ValueError(f"text_regex does not compile: {err}") from None
        return value


class SetQueue(_Model):
    type: Literal["set_queue"]
    queue: Short


class RequireSkills(_Model):
    type: Literal["require_skills"]
    skills: Annotated[list[Short], Field(min_length=1, max_length=10)]


class SetPriority(_Model):
    type: Literal["set_priority"]
    priority: int = Field(ge=-1000, le=1000)


class AddLabels(_Model):
    type: Literal["add_labels"]
    labels: Annotated[list[Annotated[str, Field(min_length=1, max_length=50)]], Field(min_length=1)]


class AssignTeam(_Model):
    type: Literal["assign_team"]
    team: Short


class AutoReply(_Model):
    type: Literal["auto_reply"]
    text: str = Field(min_length=1, max_length=2000)


class NotifySupervisors(_Model):
    type: Literal["notify_supervisors"]
    text: str = Field(min_length=1, max_length=500)


class Escalate(_Model):
    type: Literal["escalate"]
    priority_boost: int = Field(default=10, ge=0, le=1000)
    text: str = Field(default="escalated by a rule", max_length=500)


class Close(_Model):
    type: Literal["close"]
    disposition: str = Field(default="", max_length=100)


Action = Annotated[
    SetQueue
    | RequireSkills
    | SetPriority
    | AddLabels
    | AssignTeam
    | AutoReply
    | NotifySupervisors
    | Escalate
    | Close,
    Field(discriminator="type"),
]


class RuleIn(_Model):
    """A rule as the API and the admin page write it."""

    name: Short
    event: Literal[
        "message.created",
        "conversation.opened",
        "conversation.assigned",
        "conversation.updated",
        "conversation.closed",
        "sla.warning",
        "sla.breached",
        "csat.received",
    ]
    conditions: Conditions = Field(default_factory=Conditions)
    actions: Annotated[list[Action], Field(min_length=1, max_length=20)]
    position: int = Field(default=0, ge=-100000, le=100000)
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Facts:
    """What conditions look at, gathered once per event."""

    channel: str
    queue: str
    text: str
    segment: str
    tags: frozenset[str]
    labels: frozenset[str]
    language: str
    priority: int
    open_now: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    matched: bool
    note: str = ""


def _folded(values: list[str]) -> set[str]:
    return {v.casefold() for v in values}


def matches(cond: Conditions, facts: Facts) -> Verdict:
    """Whether every given condition holds for ``facts``."""
    if cond.channel is not None and facts.channel not in cond.channel:
        return Verdict(False)
    if cond.queue is not None and facts.queue not in cond.queue:
        return Verdict(False)
    if cond.segment is not None and facts.segment not in cond.segment:
        return Verdict(False)
    if cond.language is not None and facts.language not in cond.language:
        return Verdict(False)
    if cond.tags is not None and not _folded(cond.tags) & {t.casefold() for t in facts.tags}:
        return Verdict(False)
    if cond.labels is not None and not _folded(cond.labels) & {t.casefold() for t in facts.labels}:
        return Verdict(False)
    if cond.priority_min is not None and facts.priority < cond.priority_min:
        return Verdict(False)
    if cond.priority_max is not None and facts.priority > cond.priority_max:
        return Verdict(False)
    if cond.business_hours is not None and facts.open_now != (cond.business_hours == "open"):
        return Verdict(False)
    text = facts.text[:TEXT_LIMIT]
    if cond.text_contains is not None:
        folded = text.casefold()
        if not any(w.casefold() in folded for w in cond.text_contains):
            return Verdict(False)
    if cond.text_regex is not None:
        try:
            found = regex.search(cond.text_regex, text, timeout=REGEX_TIMEOUT_S)
        except TimeoutError:
            return Verdict(False, "text_regex gave up after 50 ms")
        if found is None:
            return Verdict(False)
    return Verdict(True)


def parse_actions(raw: list[Any]) -> list[Any]:
    """Stored actions as models (they were checked when saved; a bad one raises)."""
    return RuleIn.model_validate({"name": "x", "event": "message.created", "actions": raw}).actions
