"""The production loop: label provenance, campaigns, tiers, shadow predictions, live thresholds.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _prediction_columns() -> list[sa.Column]:
    return [
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
        sa.Column("tier", sa.String(16)),
        sa.Column("scored_at", sa.DateTime, nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("campaign_id", sa.String(128)))
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("label_source", sa.String(32)))
        batch.add_column(sa.Column("model_version", sa.String(32)))
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("tier", sa.String(16)))
    op.create_table("shadow_predictions", *_prediction_columns())
    op.create_table(
        "tier_thresholds",
        sa.Column("model_version", sa.String(32), primary_key=True),
        sa.Column("category", sa.String(128), primary_key=True),
        sa.Column("tier", sa.String(16), primary_key=True),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("precision_low", sa.Float),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("estimated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tier_thresholds")
    op.drop_table("shadow_predictions")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("tier")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("model_version")
        batch.drop_column("label_source")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("campaign_id")
