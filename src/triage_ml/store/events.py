"""The ticket events API's queries: a ticket's state and events, its answers and labels, lists.

Every function takes a ``Connection`` inside the caller's transaction, so one
request's writes commit or roll back together. Timestamps go in and come out
as the store's naive UTC ``datetime`` values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from triage_ml.api.schemas import ListQuery
from triage_ml.store import tables
from triage_ml.store.engine import naive_utc
from triage_ml.store.tables import TICKET_FIELDS, feedback, predictions, quarantine, tickets

# The function names below are the API's; the tables keep theirs under these.
_state, _events = tables.ticket_state, tables.ticket_events

_CHUNK = 2_000  # ids per IN list, far below SQLite's and PostgreSQL's bound-parameter limits


def _one(conn: Connection, statement: sa.Select) -> dict[str, Any] | None:
    row = conn.execute(statement).mappings().first()
    return None if row is None else dict(row)


def _all(conn: Connection, statement: sa.Select) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(statement).mappings()]


def insert_ticket(conn: Connection, row: dict[str, Any]) -> None:
    """Insert one ``tickets`` row (the API's one-row batch; times naive UTC)."""
    conn.execute(tickets.insert(), [row])


def feedback_stored(conn: Connection, feedback_id: str) -> bool:
    """Whether a feedback row with this id (its content hash) is stored already."""
    statement = sa.select(feedback.c.feedback_id).where(feedback.c.feedback_id == feedback_id)
    return conn.execute(statement).first() is not None


def insert_feedback(conn: Connection, row: dict[str, Any]) -> None:
    """Insert one ``feedback`` row (the API's one-row feedback batch; times naive UTC)."""
    conn.execute(feedback.insert(), [row])


def insert_answer(conn: Connection, row: dict[str, Any], table: sa.Table) -> None:
    """Insert one answer into ``predictions`` or ``shadow_predictions`` (times naive UTC).

    A ticket the API has just created has no answer yet, so the existence check and the
    frame conversions of ``queries.write_predictions`` (most of a create's write time) are
    not needed.
    """
    conn.execute(table.insert(), [row])


def insert_state(conn: Connection, row: dict[str, Any]) -> None:
    """Add a ticket's ``ticket_state`` row (the API's first touch of the ticket)."""
    conn.execute(_state.insert(), [row])


def ticket_state(conn: Connection, ticket_id: str, lock: bool = False) -> dict[str, Any] | None:
    """The ticket's ``ticket_state`` row, or None when the API never touched it.

    Args:
        conn: the store, inside the caller's transaction.
        ticket_id: the ticket.
        lock: hold the row until the transaction ends (PostgreSQL's ``FOR UPDATE``; SQLite
            serialises writers anyway), so concurrent updates of one ticket queue.
    """
    statement = sa.select(_state).where(_state.c.ticket_id == ticket_id)
    return _one(conn, statement.with_for_update() if lock else statement)


def update_state(conn: Connection, ticket_id: str, values: dict[str, Any]) -> None:
    """Overwrite ``values`` (column: value) of the ticket's ``ticket_state`` row."""
    conn.execute(_state.update().where(_state.c.ticket_id == ticket_id).values(**values))


def add_event(
    conn: Connection,
    ticket_id: str,
    kind: str,
    *,
    from_status: str | None,
    to_status: str | None,
    actor: str | None,
    at: datetime,
    details: dict[str, Any] | None,
) -> None:
    """Append one lifecycle event (``details``: field names and labels, never ticket text)."""
    row = {
        "ticket_id": ticket_id,
        "kind": kind,
        "from_status": from_status,
        "to_status": to_status,
        "actor": actor,
        "at": at,
        "details": None if details is None else json.dumps(details, sort_keys=True),
    }
    conn.execute(_events.insert(), [row])


def ticket_events(conn: Connection, ticket_id: str) -> list[dict[str, Any]]:
    """The ticket's events, oldest first (``details`` parsed back from JSON)."""
    statement = sa.select(_events).where(_events.c.ticket_id == ticket_id).order_by(_events.c.id)
    rows = _all(conn, statement)
    for row in rows:
        row["details"] = None if row["details"] is None else json.loads(row["details"])
    return rows


def ticket_row(conn: Connection, ticket_id: str) -> dict[str, Any] | None:
    """The ticket's ``tickets`` row (its store columns, batch id and ingest time), or None."""
    columns = [tickets.c[name] for name in TICKET_FIELDS]
    columns += [tickets.c.batch_id, tickets.c.ingested_at]
    return _one(conn, sa.select(*columns).where(tickets.c.ticket_id == ticket_id))


def ticket_predictions(conn: Connection, ticket_id: str) -> list[dict[str, Any]]:
    """Every answer served for the ticket (``predictions``, never the shadow's), newest first."""
    statement = (
        sa.select(predictions)
        .where(predictions.c.ticket_id == ticket_id)
        .order_by(predictions.c.scored_at.desc(), predictions.c.model_version.desc())
    )
    return _all(conn, statement)


def latest_predictions(conn: Connection, ticket_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The newest answer served for each of ``ticket_ids`` that has one."""
    ids = list(dict.fromkeys(ticket_ids))
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        statement = (
            sa.select(predictions)
            .where(predictions.c.ticket_id.in_(ids[start : start + _CHUNK]))
            .order_by(predictions.c.scored_at, predictions.c.model_version)
        )
        # Oldest first, so the newest answer of each ticket is the one left standing.
        out.update((row["ticket_id"], row) for row in _all(conn, statement))
    return out


def ticket_labels(conn: Connection, ticket_id: str) -> list[dict[str, Any]]:
    """The ticket's feedback rows (agents' labels and their provenance), oldest first."""
    statement = (
        sa.select(feedback)
        .where(feedback.c.ticket_id == ticket_id)
        .order_by(feedback.c.corrected_at, feedback.c.ingested_at, feedback.c.feedback_id)
    )
    return _all(conn, statement)


def quarantine_reasons(conn: Connection, batch_id: str) -> list[str]:
    """The reasons of every row batch ``batch_id`` quarantined, in row order."""
    statement = (
        sa.select(quarantine.c.reasons)
        .where(quarantine.c.batch_id == batch_id)
        .order_by(quarantine.c.row_number)
    )
    return [reason for text in conn.execute(statement).scalars() for reason in json.loads(text)]


def _latest(column: str) -> sa.ScalarSelect[Any]:
    """The newest served answer's ``column`` for the outer query's ticket."""
    return (
        sa.select(predictions.c[column])
        .where(predictions.c.ticket_id == tickets.c.ticket_id)
        .order_by(predictions.c.scored_at.desc(), predictions.c.model_version.desc())
        .limit(1)
        .scalar_subquery()
    )


def _filters(query: ListQuery) -> list[sa.ColumnElement[bool]]:
    """The query's filters on the values in effect: the API's state, else the ticket's own
    label, else the newest answer served (a batch ticket the API never touched)."""
    where: list[sa.ColumnElement[bool]] = []
    if query.status is not None:
        where.append(_state.c.status == query.status.value)
    if query.category is not None:
        effective = sa.func.coalesce(_state.c.category, tickets.c.category, _latest("category"))
        where.append(effective == query.category)
    if query.priority is not None:
        effective = sa.func.coalesce(_state.c.priority, tickets.c.priority, _latest("priority"))
        where.append(effective == query.priority.lower())
    if query.tier is not None:
        where.append(sa.func.coalesce(_state.c.tier, _latest("tier")) == query.tier)
    if query.review is not None:
        effective = sa.func.coalesce(_state.c.needs_review, _latest("needs_review"))
        where.append(effective == sa.true() if query.review else effective == sa.false())
    if query.escalated is not None:
        # The newest answer's signals, a JSON list: '[]' (or null, from a model logged before
        # escalation was an answer) when it raised none.
        signals = sa.func.coalesce(_latest("escalation"), "[]")
        where.append(signals != "[]" if query.escalated else signals == "[]")
    if query.language is not None:
        where.append(_latest("language") == query.language.lower())
    if query.created_from is not None:
        where.append(tickets.c.created_at >= naive_utc(query.created_from))
    if query.created_to is not None:
        where.append(tickets.c.created_at < naive_utc(query.created_to))
    return where


def _after(after: tuple[datetime | None, str]) -> sa.ColumnElement[bool]:
    """Tickets past a page's last one in the order (created_at desc, nulls last; id desc)."""
    created_at, ticket_id = after
    if created_at is None:
        return sa.and_(tickets.c.created_at.is_(None), tickets.c.ticket_id < ticket_id)
    created_at = naive_utc(created_at)
    return sa.or_(
        tickets.c.created_at < created_at,
        sa.and_(tickets.c.created_at == created_at, tickets.c.ticket_id < ticket_id),
        tickets.c.created_at.is_(None),
    )


_LIST_COLUMNS = (
    tickets.c.ticket_id,
    tickets.c.created_at,
    tickets.c.category.label("label_category"),
    tickets.c.priority.label("label_priority"),
    *(c for c in _state.c if c.name != "ticket_id"),
)


def list_tickets(
    conn: Connection, query: ListQuery, after: tuple[datetime | None, str] | None, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` tickets matching ``query``, newest first, past the cursor ``after``.

    Each row holds the ticket's ``ticket_id`` and ``created_at``, its own labels as
    ``label_category`` / ``label_priority``, and its ``ticket_state`` columns (None for a
    ticket the API never touched).
    """
    where = _filters(query) + ([] if after is None else [_after(after)])
    statement = (
        sa.select(*_LIST_COLUMNS)
        .select_from(tickets.outerjoin(_state, _state.c.ticket_id == tickets.c.ticket_id))
        .where(*where)
        .order_by(tickets.c.created_at.desc().nulls_last(), tickets.c.ticket_id.desc())
        .limit(limit)
    )
    return _all(conn, statement)
