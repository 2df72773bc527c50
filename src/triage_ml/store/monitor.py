"""The monitor's reads of the audit trail: when it last acted on a model."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from triage_ml.store.tables import decisions


def last_decision(conn: Connection, model_name: str, action: str) -> dict[str, Any] | None:
    """The newest audit row of ``action`` about ``model_name`` (e.g. "retrain-triggered"), or None.

    ``decided_at`` is naive UTC, as the store keeps it.
    """
    statement = (
        sa.select(decisions)
        .where(decisions.c.model_name == model_name, decisions.c.action == action)
        .order_by(decisions.c.decided_at.desc(), decisions.c.id.desc())
        .limit(1)
    )
    row = conn.execute(statement).mappings().first()
    return None if row is None else dict(row)
