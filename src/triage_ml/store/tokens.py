"""The API's bearer tokens: one row per token, its secret kept only as a SHA-256 digest.

A token is ``tml_<token_id>_<secret>``; the id finds the row, the digest checks the secret
(see :mod:`triage_ml.api.auth`). Every function takes a connection inside the caller's
transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from triage_ml.store.tables import api_tokens

# What `token list` shows: everything but the digest.
LISTED_COLUMNS = ("token_id", "name", "scope", "created_at", "last_used_at", "revoked_at")


def insert_token(conn: Connection, row: dict[str, Any]) -> None:
    """Store a new token (``api_tokens`` columns); IntegrityError when its name is taken."""
    conn.execute(sa.insert(api_tokens).values(**row))


def token_by_id(conn: Connection, token_id: str) -> dict[str, Any] | None:
    """The token row with ``token_id`` (digest included, for the check), or None."""
    statement = sa.select(api_tokens).where(api_tokens.c.token_id == token_id)
    row = conn.execute(statement).mappings().first()
    return dict(row) if row is not None else None


def token_named(conn: Connection, name: str) -> dict[str, Any] | None:
    """The token row named ``name`` (revoked or not), without its digest, or None."""
    statement = sa.select(*(api_tokens.c[c] for c in LISTED_COLUMNS)).where(
        api_tokens.c.name == name
    )
    row = conn.execute(statement).mappings().first()
    return dict(row) if row is not None else None


def list_tokens(conn: Connection) -> list[dict[str, Any]]:
    """Every token, oldest first, without digests."""
    statement = sa.select(*(api_tokens.c[c] for c in LISTED_COLUMNS)).order_by(
        api_tokens.c.created_at, api_tokens.c.name
    )
    return [dict(row) for row in conn.execute(statement).mappings()]


def revoke_token(conn: Connection, name: str, at: datetime) -> bool:
    """Revoke the active token named ``name`` at ``at``; False when there is none."""
    statement = (
        sa.update(api_tokens)
        .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return conn.execute(statement).rowcount > 0


def touch_token(conn: Connection, token_id: str, at: datetime) -> None:
    """Record that token ``token_id`` was used at ``at``."""
    statement = (
        sa.update(api_tokens).where(api_tokens.c.token_id == token_id).values(last_used_at=at)
    )
    conn.execute(statement)
