"""The parallel run's queries: a shadow challenger's answers, and what judges them.

A shadow challenger's predictions live in ``shadow_predictions`` only; no
query that feeds a caller (scored files, the HTTP server, ``score``) reads
that table. The reads here pair them with the champion's answers to the same
tickets, for the live comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from triage_ml.store.queries import _frame, _in_chunks, write_predictions
from triage_ml.store.tables import decisions, feedback, predictions, shadow_predictions, tickets

# The audit row of a shadow run's start (see registry.promotion).
SHADOW_START = "shadow-start"
# The answer columns the comparison reads from each side.
ANSWER_COLUMNS: tuple[str, ...] = ("category", "category_proba", "top3", "priority")


def write_shadow_predictions(conn: Connection, frame: pd.DataFrame) -> int:
    """Insert a challenger's predictions not stored yet; returns how many were new."""
    return write_predictions(conn, frame, shadow_predictions)


def count_shadow_predictions(conn: Connection, version: str) -> int:
    """How many tickets version ``version`` has answered in the shadow."""
    statement = (
        sa.select(sa.func.count())
        .select_from(shadow_predictions)
        .where(shadow_predictions.c.model_version == version)
    )
    return int(conn.execute(statement).scalar_one())


def paired_predictions(conn: Connection, champion: str, challenger: str) -> pd.DataFrame:
    """Tickets answered by both versions: ``ticket_id``, ``scored_at`` (the shadow's) and
    ``champion_<column>`` / ``challenger_<column>`` for each of :data:`ANSWER_COLUMNS`."""
    ours, theirs = predictions.alias("ours"), shadow_predictions.alias("theirs")
    statement = (
        sa.select(
            ours.c.ticket_id,
            theirs.c.scored_at,
            *(ours.c[name].label(f"champion_{name}") for name in ANSWER_COLUMNS),
            *(theirs.c[name].label(f"challenger_{name}") for name in ANSWER_COLUMNS),
        )
        .join(theirs, theirs.c.ticket_id == ours.c.ticket_id)
        .where(ours.c.model_version == champion, theirs.c.model_version == challenger)
        .order_by(ours.c.ticket_id)
    )
    return _frame(conn, statement, ("scored_at",))


def ticket_labels(conn: Connection, ticket_ids: Sequence[str]) -> pd.DataFrame:
    """``ticket_id``, ``category`` and ``priority`` (as ingested) of these tickets."""
    columns = (tickets.c.ticket_id, tickets.c.category, tickets.c.priority)
    parts = [
        _frame(conn, sa.select(*columns).where(tickets.c.ticket_id.in_(part)))
        for part in _in_chunks(ticket_ids)
    ]
    return _concat(parts, [c.name for c in columns])


def ticket_feedback(conn: Connection, ticket_ids: Sequence[str]) -> pd.DataFrame:
    """Every stored feedback row about these tickets (the label provenance the comparison needs)."""
    parts = [
        _frame(
            conn,
            sa.select(feedback).where(feedback.c.ticket_id.in_(part)),
            ("corrected_at", "ingested_at"),
        )
        for part in _in_chunks(ticket_ids)
    ]
    return _concat(parts, [c.name for c in feedback.columns])


def _concat(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    filled = [part for part in parts if not part.empty]
    return pd.concat(filled, ignore_index=True) if filled else pd.DataFrame(columns=columns)


def shadow_started(conn: Connection, model_name: str, version: str) -> datetime | None:
    """When version ``version`` last started a shadow run (its newest ``shadow-start`` row)."""
    statement = (
        sa.select(decisions.c.decided_at)
        .where(
            decisions.c.model_name == model_name,
            decisions.c.action == SHADOW_START,
            decisions.c.challenger_version == version,
        )
        .order_by(decisions.c.id.desc())
        .limit(1)
    )
    found: Any = conn.execute(statement).scalar()
    return found
