"""The duplicate suggestions' queries: recent open tickets of given customers or with given bodies.

One query per list of keys for a whole chunk of tickets (never one per
ticket), bounded by the chunk's time window on the ``created_at`` index. The
candidates come without their text; :func:`ticket_texts` reads the text of the
few a comparison needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from triage_ml.store.queries import _in_chunks
from triage_ml.store.tables import ticket_state, tickets

CLOSED = "closed"


def _open_in_window(since: datetime, until: datetime, with_body: bool) -> sa.Select:
    """Tickets created in ``[since, until)`` that are not closed (no state row counts as open)."""
    body = tickets.c.body if with_body else sa.null().label("body")
    return (
        sa.select(tickets.c.ticket_id, tickets.c.customer_id, tickets.c.created_at, body)
        .select_from(
            tickets.outerjoin(ticket_state, ticket_state.c.ticket_id == tickets.c.ticket_id)
        )
        .where(
            tickets.c.created_at >= since,
            tickets.c.created_at < until,
            sa.or_(ticket_state.c.status.is_(None), ticket_state.c.status != CLOSED),
        )
    )


def duplicate_candidates(
    conn: Connection,
    since: datetime,
    until: datetime,
    customers: Sequence[str],
    bodies: Sequence[str],
) -> list[tuple[str, str | None, datetime, str | None]]:
    """Open tickets created in ``[since, until)`` of one of ``customers`` or with one of ``bodies``.

    Args:
        conn: the store.
        since: the window's start (naive UTC, included).
        until: its end (naive UTC, excluded).
        customers: customer ids (the same customer's re-sends).
        bodies: ticket bodies, compared exactly (the same text from anyone).

    Returns:
        One ``(ticket_id, customer_id, created_at, body)`` per ticket (plain rows: a frame per
        query cost the API's one-ticket call more than the query), ``created_at`` naive UTC,
        ``body`` given for the tickets found by their body, None for those found by customer only.
    """
    keys = ((tickets.c.customer_id, customers, False), (tickets.c.body, bodies, True))
    found: dict[str, tuple[str, str | None, datetime, str | None]] = {}
    for column, values, with_body in keys:
        for part in _in_chunks(list(dict.fromkeys(values))):
            statement = _open_in_window(since, until, with_body).where(column.in_(part))
            # A ticket found both ways keeps the row with its body (read last).
            found.update((row[0], tuple(row)) for row in conn.execute(statement).all())
    return list(found.values())


def ticket_texts(conn: Connection, ids: Sequence[str]) -> list[tuple[str, str | None, str]]:
    """``(ticket_id, subject, body)`` of the stored tickets among ``ids``."""
    columns = (tickets.c.ticket_id, tickets.c.subject, tickets.c.body)
    return [
        tuple(row)
        for part in _in_chunks(list(dict.fromkeys(ids)))
        for row in conn.execute(sa.select(*columns).where(tickets.c.ticket_id.in_(part)))
    ]
