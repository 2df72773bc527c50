"""Queries of drift: the champion's training tickets, recent tickets with their served answers,
and the category labels agents have given in feedback.

Ticket text leaves the store here only to be measured in memory (token and length figures);
no customer id is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from triage_ml.store.engine import naive_utc
from triage_ml.store.queries import _in_chunks, _rows_frame, repeat_contacts_column
from triage_ml.store.tables import BLOCKED, batches, feedback, predictions, tickets

# What the model reads, the figures drift compares and the segments it breaks them down by.
TICKET_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "created_at",
    "channel",
    "customer_tier",
    "customer_ltv",
    "language",
    "subject",
    "body",
    "campaign_id",
)


def tickets_by_ids(
    conn: Connection, ticket_ids: Sequence[str], repeat_window_days: int
) -> pd.DataFrame:
    """The tickets ``ticket_ids`` with their label and ``repeat_contacts``, as scoring counts it.

    Args:
        conn: An open store connection.
        ticket_ids: The ids to read (ids no longer stored are left out).
        repeat_window_days: The window of :func:`~triage_ml.store.repeat_contacts_column`.

    Returns:
        :data:`TICKET_COLUMNS`, ``category``, ``priority`` and ``repeat_contacts`` (float,
        NaN when unknown), in id order.
    """
    columns: list[Any] = [tickets.c[name] for name in (*TICKET_COLUMNS, "category", "priority")]
    columns.append(repeat_contacts_column(conn.dialect.name, repeat_window_days))
    parts = []
    for chunk in _in_chunks(list(ticket_ids)):
        statement = sa.select(*columns).where(tickets.c.ticket_id.in_(chunk))
        result = conn.execute(statement)
        parts.append(_rows_frame(result.fetchall(), list(result.keys()), ("created_at",)))
    if not parts:
        names = [*TICKET_COLUMNS, "category", "priority", "repeat_contacts"]
        return _rows_frame([], names, ("created_at",))
    frame = pd.concat(parts, ignore_index=True).sort_values("ticket_id", ignore_index=True)
    frame["repeat_contacts"] = frame["repeat_contacts"].astype(float)  # None becomes NaN
    return frame


def labeled_ids_in_batches(conn: Connection, batch_ids: Sequence[str]) -> list[str]:
    """Ids of the labeled tickets of ``batch_ids`` that batch validation did not block.

    What a version logged before trained-id lineage could have learned from.
    """
    out: list[str] = []
    for chunk in _in_chunks(sorted(batch_ids)):
        statement = (
            sa.select(tickets.c.ticket_id)
            .join(batches, batches.c.batch_id == tickets.c.batch_id)
            .where(
                tickets.c.batch_id.in_(chunk),
                tickets.c.category.is_not(None),
                batches.c.status != BLOCKED,
            )
        )
        out.extend(str(value) for value in conn.execute(statement).scalars())
    return sorted(out)


def recent_tickets(
    conn: Connection, since: datetime | pd.Timestamp, model_version: str
) -> pd.DataFrame:
    """Tickets created at or after ``since``, with ``model_version``'s served answer if any.

    Args:
        conn: An open store connection.
        since: The earliest ``created_at`` to include.
        model_version: Whose answers to join (the champion's); other versions' are left out.

    Returns:
        :data:`TICKET_COLUMNS` without ``customer_ltv``, plus ``category``, ``category_proba``,
        ``sentiment`` and ``tier`` of the answer (missing where the version did not answer).
    """
    answered = sa.and_(
        predictions.c.ticket_id == tickets.c.ticket_id,
        predictions.c.model_version == str(model_version),
    )
    names = [c for c in TICKET_COLUMNS if c != "customer_ltv"]
    statement = (
        sa.select(
            *(tickets.c[name] for name in names),
            predictions.c.category,
            predictions.c.category_proba,
            predictions.c.sentiment,
            predictions.c.tier,
        )
        .select_from(tickets.outerjoin(predictions, answered))
        .where(tickets.c.created_at >= naive_utc(since))
        .order_by(tickets.c.created_at, tickets.c.ticket_id)
    )
    result = conn.execute(statement)
    return _rows_frame(result.fetchall(), list(result.keys()), ("created_at",))


def feedback_categories(conn: Connection, since: datetime | pd.Timestamp | None) -> dict[str, int]:
    """How often each category label was given in feedback at or after ``since`` (None: ever)."""
    statement = (
        sa.select(feedback.c.corrected_category, sa.func.count())
        .where(feedback.c.corrected_category.is_not(None))
        .group_by(feedback.c.corrected_category)
    )
    if since is not None:
        statement = statement.where(feedback.c.corrected_at >= naive_utc(since))
    return {str(label): int(n) for label, n in conn.execute(statement)}


def first_served(
    conn: Connection, model_version: str, days: int, after: datetime | pd.Timestamp
) -> pd.DataFrame:
    """``model_version``'s answers to tickets created after ``after``, in their first ``days``.

    Args:
        conn: An open store connection.
        model_version: Whose answers to read.
        days: Length of the window from the earliest such ticket.
        after: Where its training data ended: only later tickets are ones it never learned from.

    Returns:
        ``created_at``, ``category`` and ``category_proba`` (empty when it answered none).
    """
    answered = sa.and_(
        predictions.c.ticket_id == tickets.c.ticket_id,
        predictions.c.model_version == str(model_version),
    )
    joined = tickets.join(predictions, answered)
    later = tickets.c.created_at > naive_utc(after)
    first = conn.execute(
        sa.select(sa.func.min(tickets.c.created_at)).select_from(joined).where(later)
    ).scalar()
    if first is None:
        return pd.DataFrame(columns=["created_at", "category", "category_proba"])
    statement = (
        sa.select(tickets.c.created_at, predictions.c.category, predictions.c.category_proba)
        .select_from(joined)
        .where(later, tickets.c.created_at < first + pd.Timedelta(days=days).to_pytimedelta())
    )
    result = conn.execute(statement)
    return _rows_frame(result.fetchall(), list(result.keys()), ("created_at",))
