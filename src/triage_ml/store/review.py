"""Reads about agents' answers: the models' answers they judge, tickets they labeled, the queue.

Feedback ingestion checks a row's ``model_version`` against the answers
stored for its ticket and compares the row with the served answer; training
reads tickets that arrived unlabeled and were labeled by feedback; the review
queue reads served answers that still wait for a human label.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from triage_ml.store.tables import (
    AUTO_APPLIED,
    BLOCKED,
    TICKET_FIELDS,
    batches,
    feedback,
    predictions,
    tickets,
)

ANSWER_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "model_version",
    "category",
    "category_proba",
    "priority",
    "scored_at",
)
_CHUNK = 2_000  # ids per IN list, far below SQLite's and PostgreSQL's bound-parameter limits


def _frame(conn: Connection, statement: sa.Select, time_columns: Sequence[str]) -> pd.DataFrame:
    result = conn.execute(statement)
    frame = pd.DataFrame([tuple(row) for row in result], columns=list(result.keys()))
    for column in time_columns:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def answers(conn: Connection, table: sa.Table, ticket_ids: Sequence[str]) -> pd.DataFrame:
    """Every stored answer (:data:`ANSWER_COLUMNS`) to these tickets in ``table``.

    Args:
        conn: the store.
        table: ``predictions`` (served answers) or ``shadow_predictions``.
        ticket_ids: the tickets.
    """
    ids = list(dict.fromkeys(ticket_ids))
    parts = [
        _frame(
            conn,
            sa.select(*(table.c[c] for c in ANSWER_COLUMNS)).where(
                table.c.ticket_id.in_(ids[start : start + _CHUNK])
            ),
            ("scored_at",),
        )
        for start in range(0, len(ids), _CHUNK)
    ]
    if not parts:
        return pd.DataFrame(columns=list(ANSWER_COLUMNS))
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _human_category_label() -> sa.ColumnElement[bool]:
    """The ticket has a feedback category that someone gave (not an auto-applied answer)."""
    given = sa.select(feedback.c.ticket_id).where(
        feedback.c.ticket_id == tickets.c.ticket_id,
        feedback.c.corrected_category.is_not(None),
        feedback.c.label_source.is_(None) | (feedback.c.label_source != AUTO_APPLIED),
    )
    return sa.exists(given)


def feedback_labeled_tickets(conn: Connection) -> pd.DataFrame:
    """Tickets ingested without a category that feedback gives one (any source), like
    :func:`triage_ml.store.labeled_tickets`: batches not blocked, with their batch id."""
    labeled = sa.exists(
        sa.select(feedback.c.ticket_id).where(
            feedback.c.ticket_id == tickets.c.ticket_id, feedback.c.corrected_category.is_not(None)
        )
    )
    statement = (
        sa.select(*(tickets.c[name] for name in TICKET_FIELDS), tickets.c.batch_id)
        .join(batches, batches.c.batch_id == tickets.c.batch_id)
        .where(tickets.c.category.is_(None), labeled, batches.c.status != BLOCKED)
        .order_by(tickets.c.created_at, tickets.c.ticket_id)
    )
    return _frame(conn, statement, ("created_at",))


def waiting_answers(conn: Connection) -> pd.DataFrame:
    """Served answers to tickets that no person has labeled yet, with the tickets' text.

    A ticket waits when it has no original category and no feedback category
    other than an auto-applied one (nobody looked at those). Every served
    version's answer is returned; the caller keeps the newest per ticket.
    """
    statement = (
        sa.select(
            *(predictions.c[c] for c in ANSWER_COLUMNS),
            predictions.c.priority_proba,
            tickets.c.subject,
            tickets.c.body,
        )
        .join(tickets, tickets.c.ticket_id == predictions.c.ticket_id)
        .where(tickets.c.category.is_(None), ~_human_category_label())
        .order_by(predictions.c.ticket_id, predictions.c.scored_at)
    )
    return _frame(conn, statement, ("scored_at",))


def labeled_texts(conn: Connection, limit: int) -> pd.DataFrame:
    """``subject`` and ``body`` of up to ``limit`` labeled tickets, newest first."""
    has_label = tickets.c.category.is_not(None) | _human_category_label()
    statement = (
        sa.select(tickets.c.subject, tickets.c.body)
        .where(has_label)
        .order_by(tickets.c.created_at.desc(), tickets.c.ticket_id)
        .limit(limit)
    )
    return _frame(conn, statement, ())
