"""access control: integration API tokens, team grants of conversations, audit origin,
session activity, erased customers

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("last_used_at", WHEN, nullable=True),
        sa.Column("revoked_at", WHEN, nullable=True),
        sa.UniqueConstraint("name", name="uq_api_tokens_name"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_table(
        "conversation_grants",
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"]),
        sa.PrimaryKeyConstraint("conversation_id", "team_id"),
    )
    op.create_index("ix_conversation_grants_team_id", "conversation_grants", ["team_id"])
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("ip", sa.String(length=64), nullable=False, server_default=""))
    op.create_index("ix_audit_created_at", "audit", ["created_at"])
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("last_seen_at", WHEN, nullable=True))
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("erased_at", WHEN, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("erased_at")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("last_seen_at")
    op.drop_index("ix_audit_created_at", table_name="audit")
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("ip")
    op.drop_index("ix_conversation_grants_team_id", table_name="conversation_grants")
    op.drop_table("conversation_grants")
    op.drop_table("api_tokens")
