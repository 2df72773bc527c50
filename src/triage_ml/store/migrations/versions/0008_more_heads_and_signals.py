"""More heads and signals: subcategory, type and team labels; the answers of issue 27.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Frozen here as of this revision (tables.py moves on; a migration must not).
ANSWER_COLUMNS: tuple[tuple[str, sa.types.TypeEngine], ...] = (
    ("subcategory", sa.String(128)),
    ("subcategory_proba", sa.Float()),
    ("type", sa.String(64)),
    ("type_proba", sa.Float()),
    ("team", sa.String(128)),
    ("team_proba", sa.Float()),
    ("language", sa.String(16)),
    ("sentiment_reason", sa.String(128)),
    ("escalation", sa.Text()),
    ("priority_score", sa.Float()),
    ("priority_parts", sa.Text()),
    ("priority_review", sa.Boolean()),
    ("possible_duplicates", sa.Text()),
)
LABEL_COLUMNS: tuple[tuple[str, sa.types.TypeEngine], ...] = (
    ("subcategory", sa.String(128)),
    ("type", sa.String(64)),
    ("team", sa.String(128)),
)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        for name, kind in LABEL_COLUMNS:
            batch.add_column(sa.Column(name, kind))
    for table in ("predictions", "shadow_predictions"):
        with op.batch_alter_table(table) as batch:
            for name, kind in ANSWER_COLUMNS:
                batch.add_column(sa.Column(name, kind))


def downgrade() -> None:
    for table in ("predictions", "shadow_predictions"):
        with op.batch_alter_table(table) as batch:
            for name, _ in reversed(ANSWER_COLUMNS):
                batch.drop_column(name)
    with op.batch_alter_table("tickets") as batch:
        for name, _ in reversed(LABEL_COLUMNS):
            batch.drop_column(name)
