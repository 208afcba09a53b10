"""attachments: fetch state, provider source, attempts and the next attempt (media retry)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        # Rows stored before this revision hold their bytes (or were dropped as too large).
        batch.add_column(
            sa.Column("state", sa.String(length=20), nullable=False, server_default="fetched")
        )
        batch.add_column(sa.Column("source", sa.String(length=2000), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("error", sa.String(length=300), nullable=False, server_default="")
        )
        batch.create_index(
            "ix_attachments_due",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        )
    # Before, a file over the size limit was kept without its bytes and looked stored.
    op.execute(
        "UPDATE attachments SET state = 'failed', error = 'larger than the attachment limit'"
        " WHERE data IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.drop_index("ix_attachments_due")
        batch.drop_column("error")
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
        batch.drop_column("source")
        batch.drop_column("state")
