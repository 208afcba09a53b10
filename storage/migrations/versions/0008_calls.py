"""phone calls: ``calls`` (one row per caller leg or callback, facts folded in idempotently)
and ``agents.phone`` (where an accepted call rings the agent)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 21:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

WHEN = storage.models.UTCDateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("phone", sa.String(200), nullable=False, server_default=""))
    op.create_table(
        "calls",
        sa.Column("id", ID, nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("customer_id", ID, sa.ForeignKey("customers.id"), nullable=True),
        sa.Column("conversation_id", ID, sa.ForeignKey("conversations.id"), nullable=True),
        sa.Column("from_number", sa.String(200), nullable=False),
        sa.Column("to_number", sa.String(200), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("ivr", sa.JSON(), nullable=False),
        sa.Column("exit", sa.String(20), nullable=False),
        sa.Column("agent_id", ID, sa.ForeignKey("agents.id"), nullable=True),
        sa.Column("agent_leg", sa.String(64), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("enqueued_at", WHEN, nullable=True),
        sa.Column("answered_at", WHEN, nullable=True),
        sa.Column("ended_at", WHEN, nullable=True),
        sa.Column("wait_s", sa.Integer(), nullable=True),
        sa.Column("talk_s", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("summary_id", ID, nullable=True),
        sa.Column("recording", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calls"),
        sa.UniqueConstraint("call_sid", name="uq_calls_call_sid"),
    )
    op.create_index("ix_calls_customer_id", "calls", ["customer_id"])
    op.create_index("ix_calls_conversation_id", "calls", ["conversation_id"])
    op.create_index("ix_calls_agent_id", "calls", ["agent_id"])
    op.create_index("ix_calls_outcome", "calls", ["outcome"])


def downgrade() -> None:
    op.drop_table("calls")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("phone")
