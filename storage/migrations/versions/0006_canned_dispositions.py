"""canned responses and dispositions, managed by supervisors and admins (the texts and codes
that were hard-coded in the console are seeded as all-team, all-queue defaults)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 10:00:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = storage.models.UTCDateTime(timezone=True)

# What the console offered before these were data (same texts, the new placeholders).
CANNED = (
    ("greet", "Greeting", "Hi {customer.first_name}, this is {agent.name}. How can I help?"),
    ("checking", "Checking", "Thanks {customer.first_name}, I'm checking this for you now."),
    (
        "refund",
        "Refund started",
        "Thanks {customer.first_name}, I've started your refund; "
        "you'll see it within 5 business days.",
    ),
    ("bye", "Closing", "Is there anything else I can help with, {customer.first_name}?"),
)
DISPOSITIONS = (
    ("resolved", "Resolved"),
    ("follow_up", "Follow-up needed"),
    ("escalated", "Escalated"),
    ("no_response", "No response from customer"),
    ("spam", "Spam"),
    ("duplicate", "Duplicate"),
)


def upgrade() -> None:
    canned = op.create_table(
        "canned_responses",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("team_id", BIG_ID, nullable=True),
        sa.Column("language", sa.String(length=10), nullable=False, server_default=""),
        sa.Column("shortcut", sa.String(length=50), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name="fk_canned_responses_team_id_teams"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_canned_responses"),
    )
    op.create_index("ix_canned_responses_team_id", "canned_responses", ["team_id"])
    dispositions = op.create_table(
        "dispositions",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("queue", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_dispositions"),
        sa.UniqueConstraint("queue", "code", name="uq_dispositions_queue_code"),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        canned,
        [
            {
                "team_id": None,
                "language": "",
                "shortcut": shortcut,
                "title": title,
                "text": text,
                "created_by": "",
                "updated_at": now,
            }
            for shortcut, title, text in CANNED
        ],
    )
    op.bulk_insert(
        dispositions,
        [
            {"queue": "", "code": code, "label": label, "active": True, "sort_order": n}
            for n, (code, label) in enumerate(DISPOSITIONS)
        ],
    )


def downgrade() -> None:
    op.drop_table("dispositions")
    op.drop_index("ix_canned_responses_team_id", table_name="canned_responses")
    op.drop_table("canned_responses")
