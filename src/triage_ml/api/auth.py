"""Bearer tokens: made by ``triage-ml api token create``, checked on every request.

A token reads ``tml_<token_id>_<secret>``. The store keeps the id, the name, the scope and
a SHA-256 digest of the secret, never the secret: the secret is 256 random bits
(``secrets.token_urlsafe(32)``), so a fast digest is as safe as a slow password hash and
keeps every request cheap. Scopes are ``read`` and ``write``; ``write`` includes ``read``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from triage_ml.api.errors import UnauthorizedError
from triage_ml.errors import TriageError
from triage_ml.store import tokens

PREFIX = "tml"
SCOPES = ("read", "write")
# last_used_at is written at most this often per token, so that reads stay reads.
TOUCH_INTERVAL = timedelta(minutes=1)
TOKEN_SHAPE = re.compile(r"^tml_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")
NAME_SHAPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@:/-]{0,127}$")


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a valid token's id, name and scope (``read`` or ``write``)."""

    token_id: str
    name: str
    scope: str


@dataclass(frozen=True)
class NewToken:
    """A token just created: the only moment its full text exists outside the caller's hands."""

    name: str
    scope: str
    token: str


def digest(secret: str) -> str:
    """The hex SHA-256 of a token's secret, as the store keeps it."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(engine: Engine, name: str, scope: str, now: datetime) -> NewToken:
    """Make and store a token named ``name`` with ``scope``.

    Raises:
        TriageError: an unusable name or scope, or a name already taken (revoked tokens keep
            theirs, so a log line naming a token always means one token).
    """
    name = name.strip()
    if not NAME_SHAPE.match(name):
        raise TriageError(
            f"token name '{name[:40]}' is not 1-128 letters, digits, spaces or ._@:/- "
            "(starting with a letter or digit)"
        )
    if scope not in SCOPES:
        raise TriageError(f"token scope '{scope}' is unknown (use: {', '.join(SCOPES)})")
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    row = {"token_id": token_id, "name": name, "scope": scope, "secret_hash": digest(secret)}
    try:
        with engine.begin() as conn:
            tokens.insert_token(conn, {**row, "created_at": now})
    except sa.exc.IntegrityError:
        raise TriageError(
            f"a token named '{name}' already exists (see `triage-ml api token list`); "
            "choose another name"
        ) from None
    return NewToken(name, scope, f"{PREFIX}_{token_id}_{secret}")


def list_tokens(engine: Engine) -> list[dict[str, Any]]:
    """Every token without its digest, oldest first."""
    with engine.begin() as conn:
        return tokens.list_tokens(conn)


def revoke_token(engine: Engine, name: str, now: datetime) -> None:
    """Revoke the active token named ``name``: requests carrying it get 401 from now on.

    Raises:
        TriageError: no active token has that name.
    """
    with engine.begin() as conn:
        if tokens.revoke_token(conn, name, now):
            return
        known = tokens.token_named(conn, name)
    if known is not None:
        raise TriageError(f"the token '{name}' is already revoked")
    raise TriageError(f"no token named '{name}' (see `triage-ml api token list`)")


def authenticate(engine: Engine, text: str | None, now: datetime) -> Caller:
    """The caller that the bearer token ``text`` stands for.

    Raises:
        UnauthorizedError: no token, a malformed or unknown one, a wrong secret, a revoked one.
    """
    if not text:
        raise UnauthorizedError("this API needs the header 'Authorization: Bearer <token>'")
    shape = TOKEN_SHAPE.match(text.strip())
    if shape is None:
        raise UnauthorizedError("the bearer token is not a triage-ml API token (tml_...)")
    token_id, secret = shape.groups()
    with engine.begin() as conn:
        row = tokens.token_by_id(conn, token_id)
    if row is None or not hmac.compare_digest(row["secret_hash"], digest(secret)):
        raise UnauthorizedError("the bearer token is unknown")
    if row["revoked_at"] is not None:
        raise UnauthorizedError("the bearer token is revoked")
    if row["last_used_at"] is None or now - row["last_used_at"] >= TOUCH_INTERVAL:
        with engine.begin() as conn:
            tokens.touch_token(conn, token_id, now)
    return Caller(token_id, row["name"], row["scope"])
