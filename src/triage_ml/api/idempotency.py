"""``Idempotency-Key`` on writes: a retried request gets the first answer, never a second write.

The first answer to a key is stored in the write's own transaction, so either both the
write and its answer are kept or neither is. A key is per token; its answer is replayed
for ``api.idempotency_hours``. The same key with another body (its canonical JSON's
SHA-256 differs) is refused with 422; a second request racing the first one's commit
fails on the key's primary key and gets 409.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Connection, Engine

from triage_ml.api.errors import ConflictError, InvalidError
from triage_ml.store import idempotency

HEADER = "Idempotency-Key"
KEY_SHAPE = re.compile(r"^[\x20-\x7e]{1,255}$")
Write = Callable[[Connection], BaseModel]


@dataclass(frozen=True)
class Outcome:
    """A write's answer: its status, its JSON body, and whether it is a stored one replayed."""

    status_code: int
    content: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class Request:
    """What identifies a write: who sent it, where, with which key and body."""

    token_id: str
    method: str
    path: str
    key: str | None
    body: BaseModel | None


def fingerprint(request: Request) -> str:
    """SHA-256 of the request's canonical JSON: method, path and the fields the client sent."""
    body = request.body.model_dump(mode="json", exclude_unset=True) if request.body else None
    canonical = json.dumps(
        [request.method, request.path, body], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> None:
    """Refuse a key that is not 1-255 printable ASCII characters (422)."""
    if not KEY_SHAPE.match(key):
        raise InvalidError(f"{HEADER} must be 1-255 printable ASCII characters", field=HEADER)


def run_once(
    engine: Engine,
    request: Request,
    write: Write,
    status_code: int,
    now: datetime,
    keep: timedelta,
) -> Outcome:
    """Run ``write`` in one transaction, or replay the stored answer to the request's key.

    Args:
        engine: the store.
        request: the write's identity (without a key, ``write`` simply runs).
        write: the service call; it gets the transaction's connection.
        status_code: the status of a first answer (201 for a create).
        now: the request's time (naive UTC).
        keep: how long an answer is replayed.

    Raises:
        InvalidError: a malformed key, or a key reused with another request.
        ConflictError: a concurrent request with the same key committed first.
        ApiError: whatever ``write`` raises (nothing is stored then).
    """
    if request.key is None:
        with engine.begin() as conn:
            return Outcome(status_code, write(conn).model_dump(mode="json"))
    check_key(request.key)
    digest = fingerprint(request)
    with engine.begin() as conn:
        stored = idempotency.stored_answer(conn, request.token_id, request.key)
        if stored is not None and stored["created_at"] < now - keep:
            idempotency.forget_before(conn, now - keep)
            stored = None
        if stored is not None:
            return replay(stored, digest)
        content = write(conn).model_dump(mode="json")
        store(conn, request, digest, Outcome(status_code, content), now)
    return Outcome(status_code, content)


def replay(stored: dict[str, Any], digest: str) -> Outcome:
    """The stored answer, if it answered the same request (422 otherwise)."""
    if stored["request_hash"] != digest:
        raise InvalidError(
            f"this {HEADER} was first used with another request; use a new key for a new request",
            field=HEADER,
        )
    return Outcome(200, json.loads(stored["response"]), replayed=True)


def store(conn: Connection, request: Request, digest: str, outcome: Outcome, now: datetime) -> None:
    """Keep ``outcome`` as the answer to the request's key (409 when another request did)."""
    row = {
        "token_id": request.token_id,
        "key": request.key,
        "method": request.method,
        "path": request.path[:300],
        "request_hash": digest,
        "status_code": outcome.status_code,
        "response": json.dumps(outcome.content),
        "created_at": now,
    }
    try:
        idempotency.store_answer(conn, row)
    except sa.exc.IntegrityError:
        raise ConflictError(
            f"another request with this {HEADER} is being answered; retry it to get its answer",
            field=HEADER,
        ) from None


def forget_expired(engine: Engine, now: datetime, keep: timedelta) -> int:
    """Delete the answers older than ``keep``; returns how many went."""
    with engine.begin() as conn:
        return idempotency.forget_before(conn, now - keep)
