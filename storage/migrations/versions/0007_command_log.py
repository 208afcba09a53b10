"""one command log: console commands and REST replies keyed per actor in ``command_log``
(``command_results`` rows are copied over, then the old table is dropped)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:30:00.000000
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

WHEN = storage.models.UTCDateTime(timezone=True)
CHUNK = 1000
# hub.commands.MESSAGE, spelled here so the migration stays what it was when written.
MESSAGE = "message"

old = sa.table(
    "command_results",
    sa.column("agent_id", sa.BigInteger()),
    sa.column("client_msg_id", sa.String()),
    sa.column("result", sa.JSON()),
    sa.column("created_at", WHEN),
)
new = sa.table(
    "command_log",
    sa.column("actor", sa.String()),
    sa.column("key", sa.String()),
    sa.column("command", sa.String()),
    sa.column("result", sa.JSON()),
    sa.column("created_at", WHEN),
)


def _command_of(result: Any) -> str:
    """A stored reply or note answered ``{"message_id": ...}`` and nothing else; other old
    rows do not say which console command they answered ("" matches any)."""
    return MESSAGE if isinstance(result, dict) and set(result) == {"message_id"} else ""


def _copy(
    select: sa.Select[Any],
    insert: sa.TableClause,
    convert: Callable[[sa.Row[Any]], dict[str, Any]],
) -> None:
    bind = op.get_bind()
    rows = bind.execute(select).all()
    for start in range(0, len(rows), CHUNK):
        op.bulk_insert(insert, [convert(row) for row in rows[start : start + CHUNK]])


def upgrade() -> None:
    op.create_table(
        "command_log",
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("command", sa.String(length=50), nullable=False, server_default=""),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("actor", "key", name=op.f("pk_command_log")),
    )
    _copy(
        sa.select(old.c.agent_id, old.c.client_msg_id, old.c.result, old.c.created_at),
        new,
        lambda row: {
            "actor": f"agent:{row.agent_id}",
            "key": row.client_msg_id,
            "command": _command_of(row.result),
            "result": row.result,
            "created_at": row.created_at,
        },
    )
    op.drop_table("command_results")


def downgrade() -> None:
    op.create_table(
        "command_results",
        sa.Column("agent_id", sa.BigInteger(), nullable=False),
        sa.Column("client_msg_id", sa.String(length=100), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "client_msg_id", name=op.f("pk_command_results")),
    )
    # Only people's entries existed before; the old table has no place for any other actor.
    _copy(
        sa.select(new.c.actor, new.c.key, new.c.result, new.c.created_at).where(
            new.c.actor.like("agent:%")
        ),
        old,
        lambda row: {
            "agent_id": int(row.actor.removeprefix("agent:")),
            "client_msg_id": row.key,
            "result": row.result,
            "created_at": row.created_at,
        },
    )
    op.drop_table("command_log")
