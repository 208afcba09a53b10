"""The hub's small error tree; boundaries translate these into HTTP/SMTP answers."""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class ConfigError(HubError):
    """A setting is missing or wrong; raised at start with the setting's name."""


class InvalidInput(HubError):
    """Input from outside was rejected; nothing was stored."""


class NotFound(HubError):
    """The record asked for does not exist."""


class Forbidden(HubError):
    """The caller may not do this (role, scope, or a rule such as "supervisors cannot
    demote admins")."""


class Conflict(HubError):
    """The request conflicts with the current state (e.g. already assigned)."""


class Throttled(HubError):
    """Too many attempts; the caller may try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChannelError(HubError):
    """A provider call failed.

    ``retryable`` tells the outbox whether to try again later (network error, 5xx, rate limit)
    or to dead-letter at once (bad address, opted-out recipient, policy refusal).
    ``outcome_unknown`` says the provider may have taken the message anyway (a timeout, a
    connection lost after sending, a 502): the next attempt, by any worker, first asks the
    provider (``contract.channel.SendReconciler``).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: str | None = None,
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown
