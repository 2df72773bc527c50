"""alias_intents: a guarded alias move's intent, committed before the aliases move.

A process killed between moving an alias and committing its audit row used to
leave the registry and the audit table disagreeing with nothing to say so; the
pending intent tells the next process what to put back.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alias_intents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("before_champion", sa.String(32)),
        sa.Column("before_previous", sa.String(32)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("closed_at", sa.DateTime),
    )
    op.create_index("ix_alias_intents_model_state", "alias_intents", ["model_name", "state"])


def downgrade() -> None:
    op.drop_index("ix_alias_intents_model_state", table_name="alias_intents")
    op.drop_table("alias_intents")
