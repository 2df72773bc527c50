"""The ticket events API: ticket lifecycle state, its events, idempotency keys, API tokens.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticket_state",
        sa.Column("ticket_id", sa.String(128), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("category", sa.String(128), index=True),
        sa.Column("priority", sa.String(64)),
        sa.Column("priority_source", sa.String(16)),
        sa.Column("tier", sa.String(16)),
        sa.Column("needs_review", sa.Boolean),
        sa.Column("model_version", sa.String(32)),
        sa.Column("opened_at", sa.DateTime, nullable=False),
        sa.Column("sla_due_at", sa.DateTime),
        sa.Column("resolution", sa.Text),
        sa.Column("closed_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(128), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(32)),
        sa.Column("to_status", sa.String(32)),
        sa.Column("actor", sa.String(128)),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("details", sa.Text),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_used_at", sa.DateTime),
        sa.Column("revoked_at", sa.DateTime),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_table("idempotency_keys")
    op.drop_table("ticket_events")
    op.drop_table("ticket_state")
