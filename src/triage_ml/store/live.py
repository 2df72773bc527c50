"""Queries of live quality: the answers served to tickets, and those tickets' labels.

A prediction is placed in time by its ticket's ``created_at`` (its own
``scored_at`` when the ticket has none), so "since" means the same thing in
every query here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from triage_ml.store.engine import naive_utc
from triage_ml.store.queries import _rows_frame
from triage_ml.store.tables import feedback, predictions, tickets

SERVED_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "model_version",
    "category",
    "category_proba",
    "priority",
    "tier",
    "needs_review",
    "scored_at",
    "created_at",
    "channel",
    "language",
    "customer_tier",
    "campaign_id",
    "body_length",
)


def _served_since(table: sa.Table, since: datetime | pd.Timestamp | None) -> sa.Select:
    """Ticket ids answered in ``table`` at or after ``since`` (all of them for None)."""
    statement = sa.select(table.c.ticket_id).join(tickets, tickets.c.ticket_id == table.c.ticket_id)
    if since is None:
        return statement
    return statement.where(_placed_at(table) >= naive_utc(since))


def _placed_at(table: sa.Table) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(tickets.c.created_at, table.c.scored_at, type_=sa.DateTime)


def served_predictions(
    conn: Connection, since: datetime | pd.Timestamp | None, table: sa.Table = predictions
) -> pd.DataFrame:
    """One row per ticket and model version answered in ``table`` since ``since``.

    Args:
        conn: An open store connection.
        since: Earliest ticket time to include (``created_at``, else ``scored_at``); None: all.
        table: ``predictions`` (the champion's served answers) or ``shadow_predictions``.

    Returns:
        The columns of :data:`SERVED_COLUMNS`: the answer, its tier, and the ticket's
        time and segments (``body_length`` in characters; no ticket text).
    """
    columns = [
        table.c.ticket_id,
        table.c.model_version,
        table.c.category,
        table.c.category_proba,
        table.c.priority,
        table.c.tier,
        table.c.needs_review,
        table.c.scored_at,
        tickets.c.created_at,
        tickets.c.channel,
        tickets.c.language,
        tickets.c.customer_tier,
        tickets.c.campaign_id,
        sa.func.length(tickets.c.body).label("body_length"),
    ]
    statement = sa.select(*columns).join(tickets, tickets.c.ticket_id == table.c.ticket_id)
    if since is not None:
        statement = statement.where(_placed_at(table) >= naive_utc(since))
    statement = statement.order_by(table.c.model_version, table.c.ticket_id)
    result = conn.execute(statement)
    return _rows_frame(result.fetchall(), SERVED_COLUMNS, ("scored_at", "created_at"))


def served_labels(
    conn: Connection, since: datetime | pd.Timestamp | None, table: sa.Table = predictions
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The original labels and the feedback rows of the tickets :func:`served_predictions` reads.

    Returns:
        ``(tickets, feedback)``: ``ticket_id, category, priority`` of each served ticket, and
        every stored feedback row about them, oldest first (the input of final labels).
    """
    served = _served_since(table, since).distinct().subquery()
    ticket_rows = sa.select(tickets.c.ticket_id, tickets.c.category, tickets.c.priority).where(
        tickets.c.ticket_id.in_(sa.select(served.c.ticket_id))
    )
    feedback_rows = (
        sa.select(feedback)
        .where(feedback.c.ticket_id.in_(sa.select(served.c.ticket_id)))
        .order_by(feedback.c.corrected_at, feedback.c.feedback_id)
    )
    labels = conn.execute(ticket_rows)
    label_frame = _rows_frame(labels.fetchall(), list(labels.keys()), ())
    found = conn.execute(feedback_rows)
    feedback_frame = _rows_frame(
        found.fetchall(), list(found.keys()), ("corrected_at", "ingested_at")
    )
    return label_frame, feedback_frame
