"""quarantine.released_batch: the batch a released record was re-ingested in (commit 8dbdf86).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("quarantine", sa.Column("released_batch", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("released_batch")
