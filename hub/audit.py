"""The audit log's one writer: who did what to which record, when, from where.

The log is append-only: this module only adds entries, and nothing in the hub updates or
deletes them (``tests/hub/test_audit.py`` scans the code for such statements). An entry is
written in the caller's transaction, so it exists exactly when the change it describes does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.uow import UnitOfWork
from storage.models import AuditEntry

# Column widths of the ``audit`` table (migration 0005): longer values are cut, not refused,
# because an audit entry must never make the audited change fail.
_ACTOR, _ACTION, _TARGET_TYPE, _IP = 100, 50, 30, 64


def record(
    target: UnitOfWork | AsyncSession,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: int | None = None,
    details: Mapping[str, Any] | None = None,
    ip: str = "",
) -> AuditEntry:
    """Append an entry in ``target``'s transaction; never put a secret in ``details``.

    ``actor`` is a username, ``token:<name>``, ``admin-token`` or ``cli``; ``ip`` the client
    address ('' when the hub acts by itself).
    """
    session = target.session if isinstance(target, UnitOfWork) else target
    entry = AuditEntry(
        actor=actor[:_ACTOR],
        action=action[:_ACTION],
        target_type=target_type[:_TARGET_TYPE],
        target_id=target_id,
        details=dict(details or {}),
        ip=ip[:_IP],
    )
    session.add(entry)
    return entry
