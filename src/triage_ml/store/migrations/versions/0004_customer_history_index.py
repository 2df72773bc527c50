"""tickets (customer_id, created_at, ticket_id): one index that answers a scoring chunk's
customer-history query.

``store.customer_contacts`` asks for some customers' tickets created in a
time window. With an index on each column alone, SQLite scanned the window's
every ticket once per IN list of customers (the backlog of a busy helpdesk,
up to a hundred thousand rows, seven times per chunk); with this index each
customer is one range seek, and the query never reads the table. The
single-column customer index is its prefix, so it goes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_tickets_customer_history", "tickets", ["customer_id", "created_at", "ticket_id"]
    )
    op.drop_index("ix_tickets_customer_id", table_name="tickets")


def downgrade() -> None:
    op.create_index("ix_tickets_customer_id", "tickets", ["customer_id"])
    op.drop_index("ix_tickets_customer_history", table_name="tickets")
