"""report rollups: contacts, agent holds and agent time folded from the event log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "report_contacts",
        sa.Column("arrival_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("queue", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("arrived_at", sa.Float(), nullable=False),
        sa.Column("arrived_slot", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("last_agent_id", sa.BigInteger(), nullable=True),
        sa.Column("answered_at", sa.Float(), nullable=True),
        sa.Column("wait_s", sa.Float(), nullable=True),
        sa.Column("abandoned_at", sa.Float(), nullable=True),
        sa.Column("abandon_wait_s", sa.Float(), nullable=True),
        sa.Column("frt_s", sa.Float(), nullable=True),
        sa.Column("wrap_up_at", sa.Float(), nullable=True),
        sa.Column("handle_s", sa.Float(), nullable=True),
        sa.Column("acw_s", sa.Float(), nullable=True),
        sa.Column("closed_at", sa.Float(), nullable=True),
        sa.Column("resolution_s", sa.Float(), nullable=True),
        sa.Column("disposition", sa.String(length=100), nullable=False),
        sa.Column("transfers", sa.Integer(), nullable=False),
        sa.Column("csat_score", sa.Float(), nullable=True),
        sa.Column("labelled_complaint", sa.Boolean(), nullable=False),
        sa.Column("complaint", sa.Boolean(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("arrival_seq", name=op.f("pk_report_contacts")),
    )
    with op.batch_alter_table("report_contacts", schema=None) as batch_op:
        batch_op.create_index("ix_report_contacts_arrived_at", ["arrived_at"], unique=False)
        batch_op.create_index(
            "ix_report_contacts_conversation", ["conversation_id", "arrival_seq"], unique=False
        )

    op.create_table(
        "report_handles",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=False),
        sa.Column("queue", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("released_at", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_report_handles")),
    )
    with op.batch_alter_table("report_handles", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_handles_conversation", ["conversation_id", "released_at"], unique=False
        )
        batch_op.create_index("ix_report_handles_agent", ["agent_id", "released_at"], unique=False)
        batch_op.create_index("ix_report_handles_ended_at", ["ended_at"], unique=False)

    op.create_table(
        "report_agent_intervals",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_agent_intervals")),
    )
    with op.batch_alter_table("report_agent_intervals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_agent_intervals_open", ["agent_id", "ended_at"], unique=False
        )
        batch_op.create_index("ix_report_agent_intervals_started_at", ["started_at"], unique=False)

    state = op.create_table(
        "report_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_state")),
    )
    op.bulk_insert(state, [{"id": 1, "last_seq": 0}])


def downgrade() -> None:
    op.drop_table("report_state")
    with op.batch_alter_table("report_agent_intervals", schema=None) as batch_op:
        batch_op.drop_index("ix_report_agent_intervals_started_at")
        batch_op.drop_index("ix_report_agent_intervals_open")
    op.drop_table("report_agent_intervals")
    with op.batch_alter_table("report_handles", schema=None) as batch_op:
        batch_op.drop_index("ix_report_handles_ended_at")
        batch_op.drop_index("ix_report_handles_agent")
        batch_op.drop_index("ix_report_handles_conversation")
    op.drop_table("report_handles")
    with op.batch_alter_table("report_contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_report_contacts_conversation")
        batch_op.drop_index("ix_report_contacts_arrived_at")
    op.drop_table("report_contacts")
