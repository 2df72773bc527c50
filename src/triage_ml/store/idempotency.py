"""The first answer to each ``Idempotency-Key``, kept so that a retried write gets it again.

Rows are keyed by (token, key): two callers never see each other's answers. Each answer is
stored in the transaction of the write it answers (see :mod:`triage_ml.api.idempotency`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from triage_ml.store.tables import idempotency_keys


def stored_answer(conn: Connection, token_id: str, key: str) -> dict[str, Any] | None:
    """The stored answer to ``key`` from token ``token_id`` (``idempotency_keys`` columns)."""
    statement = sa.select(idempotency_keys).where(
        idempotency_keys.c.token_id == token_id, idempotency_keys.c.key == key
    )
    row = conn.execute(statement).mappings().first()
    return dict(row) if row is not None else None


def store_answer(conn: Connection, row: dict[str, Any]) -> None:
    """Keep a write's answer; IntegrityError when a concurrent request stored one first."""
    conn.execute(sa.insert(idempotency_keys).values(**row))


def forget_before(conn: Connection, cutoff: datetime) -> int:
    """Delete the answers stored before ``cutoff``; returns how many went."""
    statement = sa.delete(idempotency_keys).where(idempotency_keys.c.created_at < cutoff)
    return conn.execute(statement).rowcount
