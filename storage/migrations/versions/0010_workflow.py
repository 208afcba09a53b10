"""workflow: automation ``rules``, SLA ``sla_policies`` and ``sla_timers``, ``complaints``,
``follow_ups``, shared ``customer_notes``, CSAT ``surveys``, the consumers' ``workflow_cursors``
and ``conversations.routing`` (skills and intent asked of an agent)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 09:36:54.432432
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("event", sa.String(length=50), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_rules_name")),
    )
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("queue", sa.String(length=100), nullable=False),
        sa.Column("segment", sa.String(length=30), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("first_response_s", sa.Integer(), nullable=True),
        sa.Column("next_response_s", sa.Integer(), nullable=True),
        sa.Column("resolution_s", sa.Integer(), nullable=True),
        sa.Column("warn_ratio", sa.Float(), nullable=False),
        sa.Column("calendar", sa.JSON(), nullable=False),
        sa.Column("escalation", sa.JSON(), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
        sa.UniqueConstraint("name", name=op.f("uq_sla_policies_name")),
    )
    op.create_table(
        "workflow_cursors",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_workflow_cursors")),
    )
    op.create_table(
        "customer_notes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("author_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("team_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["agents.id"], name=op.f("fk_customer_notes_author_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_notes_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_customer_notes_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_notes")),
    )
    with op.batch_alter_table("customer_notes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_notes_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "complaints",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("team_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("queue", sa.String(length=100), nullable=False),
        sa.Column("summary", sa.String(length=1000), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("opened_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("opened_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.Column(
            "resolved_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("resolved_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("notified_message_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_complaints_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_complaints_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["opened_by"], ["agents.id"], name=op.f("fk_complaints_opened_by_agents")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["agents.id"], name=op.f("fk_complaints_resolved_by_agents")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_complaints_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
        sa.UniqueConstraint("conversation_id", name=op.f("uq_complaints_conversation_id")),
    )
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_complaints_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "follow_ups",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("team_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("due_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column(
            "created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_follow_ups_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["agents.id"], name=op.f("fk_follow_ups_created_by_agents")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_follow_ups_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["agents.id"], name=op.f("fk_follow_ups_owner_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_follow_ups_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_ups")),
    )
    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_follow_ups_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index("ix_follow_ups_open", ["state", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_follow_ups_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "sla_timers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("complaint_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "policy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.Column("queue", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("started_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("warn_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_sla_timers_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["sla_policies.id"], name=op.f("fk_sla_timers_policy_id_sla_policies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_timers")),
    )
    with op.batch_alter_table("sla_timers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sla_timers_conversation", ["conversation_id", "metric"], unique=False
        )
        batch_op.create_index("ix_sla_timers_due", ["state", "next_at"], unique=False)

    op.create_table(
        "surveys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("sent_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_surveys_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_surveys_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
        sa.UniqueConstraint("conversation_id", name=op.f("uq_surveys_conversation_id")),
        sa.UniqueConstraint("token", name=op.f("uq_surveys_token")),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("routing", sa.JSON(), server_default="{}", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("routing")

    op.drop_table("surveys")
    with op.batch_alter_table("sla_timers", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_timers_due")
        batch_op.drop_index("ix_sla_timers_conversation")

    op.drop_table("sla_timers")
    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_follow_ups_owner_id"))
        batch_op.drop_index("ix_follow_ups_open")
        batch_op.drop_index(batch_op.f("ix_follow_ups_customer_id"))

    op.drop_table("follow_ups")
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_complaints_customer_id"))

    op.drop_table("complaints")
    with op.batch_alter_table("customer_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_notes_customer_id"))

    op.drop_table("customer_notes")
    op.drop_table("workflow_cursors")
    op.drop_table("sla_policies")
    op.drop_table("rules")
