"""The schema of the first release (commit 0e3d6dc): seven tables, no quarantine.released_batch.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_INDEXES = (
    ("tickets", "created_at"),
    ("tickets", "customer_id"),
    ("tickets", "batch_id"),
    ("feedback", "ticket_id"),
    ("surveys", "ticket_id"),
    ("quarantine", "batch_id"),
)


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("ticket_id", sa.String(128), primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=True),
        sa.Column("channel", sa.String(64)),
        sa.Column("customer_id", sa.String(128)),
        sa.Column("customer_tier", sa.String(64)),
        sa.Column("customer_ltv", sa.Float),
        sa.Column("language", sa.String(16)),
        sa.Column("subject", sa.Text),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("category", sa.String(128)),
        sa.Column("priority", sa.String(64)),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("ingested_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("feedback_id", sa.String(64), primary_key=True),
        sa.Column("ticket_id", sa.String(128), nullable=False),
        sa.Column("corrected_category", sa.String(128)),
        sa.Column("corrected_priority", sa.String(64)),
        sa.Column("agent_id", sa.String(128)),
        sa.Column("corrected_at", sa.DateTime, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("ingested_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "surveys",
        sa.Column("survey_id", sa.String(64), primary_key=True),
        sa.Column("ticket_id", sa.String(128), nullable=False),
        sa.Column("csat", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("answered_at", sa.DateTime, nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("ingested_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("rows_read", sa.Integer, nullable=False),
        sa.Column("rows_stored", sa.Integer, nullable=False),
        sa.Column("rows_quarantined", sa.Integer, nullable=False),
        sa.Column("rows_skipped", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("report", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("row_number", sa.Integer),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("released_at", sa.DateTime),
    )
    op.create_table(
        "predictions",
        sa.Column("ticket_id", sa.String(128), primary_key=True),
        sa.Column("model_version", sa.String(32), primary_key=True),
        sa.Column("category", sa.String(128)),
        sa.Column("category_proba", sa.Float),
        sa.Column("top3", sa.Text),
        sa.Column("priority", sa.String(64)),
        sa.Column("priority_proba", sa.Float),
        sa.Column("sentiment", sa.Float),
        sa.Column("route", sa.String(128)),
        sa.Column("needs_review", sa.Boolean),
        sa.Column("scored_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("decided_at", sa.DateTime, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("challenger_version", sa.String(32)),
        sa.Column("champion_version", sa.String(32)),
        sa.Column("promoted", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("details", sa.Text),
    )
    for table, column in _INDEXES:
        op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table in (
        "decisions",
        "predictions",
        "quarantine",
        "batches",
        "surveys",
        "feedback",
        "tickets",
    ):
        op.drop_table(table)
