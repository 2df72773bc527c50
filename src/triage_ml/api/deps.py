"""What every route depends on: the app's context, the caller's token, the write helper.

``reader`` and ``writer`` are FastAPI dependencies: they check the bearer token (401),
the scope (403) and the caller's rate (429, counted per token, or per client address
for a request without a valid token). ``idempotent`` runs a write in one transaction
under its ``Idempotency-Key`` and shapes the JSON response.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from triage_ml.api import auth, idempotency
from triage_ml.api.auth import Caller
from triage_ml.api.errors import ForbiddenError, UnauthorizedError
from triage_ml.api.limits import RateLimiter
from triage_ml.settings import Settings
from triage_ml.store import utcnow

if TYPE_CHECKING:
    from triage_ml.api.triage import Triager

__all__ = [
    "ApiContext",
    "Caller",
    "IdempotencyKey",
    "context",
    "idempotent",
    "open_route",
    "reader",
    "writer",
]

REPLAYED_HEADER = "Idempotent-Replayed"
# Expired Idempotency-Key answers are deleted at most this often (and at each server start).
PURGE_INTERVAL = timedelta(hours=1)
bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="tml_<id>_<secret>",
    description="A token from `triage-ml api token create` (scope read or write).",
)
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        description="1-255 printable ASCII characters; a retry with the same key and body "
        "gets the first answer again.",
    ),
]


@dataclass(frozen=True)
class ApiContext:
    """What the routes work with: the settings, the store and the triage runtime."""

    settings: Settings
    engine: Engine
    triager: Triager


def context(request: Request) -> ApiContext:
    """The app's context (``app.state.context``, set by :func:`triage_ml.api.app.create_app`)."""
    return request.app.state.context


def limiter(request: Request) -> RateLimiter:
    """The app's rate limiter."""
    return request.app.state.rate_limiter


def client_address(request: Request) -> str:
    """The client's address, the rate-limit key of a request without a valid token."""
    return request.client.host if request.client is not None else "unknown"


def open_route(request: Request) -> None:
    """Dependency of a route without a token (health): the rate, counted per address apart
    from the address's other requests, so a load balancer's probes never use up its clients'."""
    limiter(request).hit(f"health:{client_address(request)}")


def reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """Dependency: the caller of any valid token (401 without one; 429 over the rate).

    A request without a valid token still counts against its address's rate, so that
    guessing tokens is bounded too.
    """
    token = credentials.credentials if credentials is not None else None
    try:
        caller = auth.authenticate(context(request).engine, token, utcnow())
    except UnauthorizedError:
        limiter(request).hit(f"address:{client_address(request)}")
        raise
    limiter(request).hit(f"token:{caller.token_id}")
    return caller


def writer(caller: Annotated[Caller, Depends(reader)]) -> Caller:
    """Dependency: the caller of a write-scoped token (403 for a read token)."""
    if caller.scope != "write":
        raise ForbiddenError(f"the token '{caller.name}' may only read (scope read)")
    return caller


def idempotent(
    request: Request,
    caller: Caller,
    key: str | None,
    body: BaseModel | None,
    write: idempotency.Write,
    status_code: int = 200,
) -> JSONResponse:
    """Run ``write`` (a service call taking the transaction's connection) under ``key``.

    Args:
        request: the HTTP request (its method and path identify the write).
        caller: the writer.
        key: the ``Idempotency-Key`` header, or None.
        body: the parsed request body (its canonical JSON identifies a retry).
        write: the write; its returned model is the response body.
        status_code: the status of a first answer (a replay answers 200).

    Returns:
        The JSON response; a replay carries ``Idempotent-Replayed: true``.
    """
    ctx, now = context(request), utcnow()
    identity = idempotency.Request(caller.token_id, request.method, request.url.path, key, body)
    keep = timedelta(hours=ctx.settings.api.idempotency_hours)
    if key is not None:
        purge_if_due(request, now, keep)
    outcome = idempotency.run_once(ctx.engine, identity, write, status_code, now, keep)
    headers = {REPLAYED_HEADER: "true"} if outcome.replayed else None
    return JSONResponse(outcome.content, status_code=outcome.status_code, headers=headers)


def purge_if_due(request: Request, now: datetime, keep: timedelta) -> None:
    """Delete expired Idempotency-Key answers when the last purge is over an hour old."""
    state = request.app.state
    due = getattr(state, "next_purge", None)
    if due is not None and now < due:
        return
    # Set first: concurrent requests skip the purge rather than all running it.
    state.next_purge = now + PURGE_INTERVAL
    idempotency.forget_expired(context(request).engine, now, keep)
