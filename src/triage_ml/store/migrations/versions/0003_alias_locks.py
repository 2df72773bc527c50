"""alias_locks: one row per registered model, locked by guarded alias moves (commit 0d072ae).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alias_locks",
        sa.Column("model_name", sa.String(128), primary_key=True),
        sa.Column("locked_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alias_locks")
