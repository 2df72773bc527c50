"""The ticket events API as a FastAPI app: routes, error envelope, limits, OpenAPI.

Routes only translate HTTP: each one checks the caller (:mod:`triage_ml.api.deps`), opens
one transaction and calls :mod:`triage_ml.api.service`, whose plain functions do the work.
Every refusal is ``{"error": {"code", "message", "field"}}`` (``ErrorOut``) with its status.
The OpenAPI document does not depend on the settings, so the checked-in copy
(``docs/api/openapi.json``) is the document of every deployment of this version.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException

from triage_ml import __version__
from triage_ml.api import service, webhooks
from triage_ml.api.deps import (
    ApiContext,
    Caller,
    IdempotencyKey,
    context,
    idempotent,
    open_route,
    reader,
    writer,
)
from triage_ml.api.errors import ApiError, InvalidError, RateLimitedError
from triage_ml.api.limits import BodyLimit, ConnectionTurns, RateLimiter, refuse
from triage_ml.api.schemas import (
    ErrorOut,
    ListQuery,
    TicketClose,
    TicketDetail,
    TicketIn,
    TicketOut,
    TicketPage,
    TicketUpdate,
)
from triage_ml.errors import TriageError
from triage_ml.redact import mask_personal_data
from triage_ml.scoring.app import AsgiApp, Message, Receive, Scope, Send
from triage_ml.settings import Settings
from triage_ml.store import utcnow

if TYPE_CHECKING:
    from triage_ml.api.triage import Triager

TITLE = "triage-ml ticket events API"
DESCRIPTION = (
    "Helpdesks send tickets as they happen and get the champion model's triage back; "
    "agents' corrections, status changes and closes become the store's labels. "
    "Every call but `/v1/health` needs `Authorization: Bearer <token>` "
    "(`triage-ml api token create`)."
)
logger = logging.getLogger(__name__)

ERROR_MEANINGS = {
    401: "No token, or an unknown or revoked one.",
    403: "A read token on a write.",
    404: "Unknown ticket.",
    409: "Illegal transition, an id already taken, or a concurrent first use of the "
    "Idempotency-Key.",
    413: "Body over the size limit.",
    422: "A field the contracts refuse (named in `error.field`).",
    429: "Over the rate limit (see Retry-After).",
    503: "No champion to triage with.",
}
HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}
Reader = Annotated[Caller, Depends(reader)]
Writer = Annotated[Caller, Depends(writer)]


class Health(BaseModel):
    """``GET /v1/health``: the server answers, and with which champion version."""

    status: str
    champion: str


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of ``statuses``, each an ``ErrorOut``."""
    return {s: {"model": ErrorOut, "description": ERROR_MEANINGS[s]} for s in statuses}


router = APIRouter(prefix="/v1", tags=["tickets"])


@router.post(
    "/tickets",
    status_code=201,
    response_model=TicketOut,
    responses=errors(401, 403, 409, 413, 422, 429, 503),
)
def create_ticket(
    request: Request, ticket: TicketIn, caller: Writer, key: IdempotencyKey = None
) -> JSONResponse:
    """Store a ticket and triage it with the champion (201; 200 replaying an Idempotency-Key)."""
    ctx = context(request)
    return idempotent(
        request,
        caller,
        key,
        ticket,
        lambda conn: service.create_ticket(conn, ctx.settings, ctx.triager, ticket, utcnow()),
        status_code=201,
    )


@router.put(
    "/tickets/{ticket_id}",
    response_model=TicketOut,
    responses=errors(401, 403, 404, 409, 413, 422, 429),
)
def update_ticket(
    request: Request,
    ticket_id: str,
    change: TicketUpdate,
    caller: Writer,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """An agent's change of status, category or priority (a correction is stored as a label)."""
    ctx = context(request)
    return idempotent(
        request,
        caller,
        key,
        change,
        lambda conn: service.update_ticket(
            conn, ctx.settings, ctx.triager, ticket_id, change, utcnow()
        ),
    )


@router.put(
    "/tickets/{ticket_id}/close",
    response_model=TicketOut,
    responses=errors(401, 403, 404, 409, 413, 422, 429),
)
def close_ticket(
    request: Request, ticket_id: str, close: TicketClose, caller: Writer, key: IdempotencyKey = None
) -> JSONResponse:
    """Close a ticket with its final labels (those in effect when none are given)."""
    ctx = context(request)
    return idempotent(
        request,
        caller,
        key,
        close,
        lambda conn: service.close_ticket(
            conn, ctx.settings, ctx.triager, ticket_id, close, utcnow()
        ),
    )


@router.get("/tickets", response_model=TicketPage, responses=errors(401, 422, 429))
def list_tickets(
    request: Request, query: Annotated[ListQuery, Query()], caller: Reader
) -> TicketPage:
    """Tickets, newest first, a page at a time (pass ``next_cursor`` back as ``cursor``)."""
    ctx = context(request)
    with ctx.engine.begin() as conn:
        return service.list_tickets(conn, ctx.settings, query)


@router.get(
    "/tickets/{ticket_id}", response_model=TicketDetail, responses=errors(401, 404, 422, 429)
)
def get_ticket(request: Request, ticket_id: str, caller: Reader) -> TicketDetail:
    """A ticket with the answers served, its label history and its lifecycle."""
    with context(request).engine.begin() as conn:
        return service.get_ticket(conn, ticket_id)


@router.get(
    "/health",
    response_model=Health,
    tags=["health"],
    dependencies=[Depends(open_route)],
    responses=errors(429),
)
def health(request: Request) -> Health:
    """No token needed: the server is up, and which champion version answers."""
    return Health(status="ok", champion=context(request).triager.champion_version)


def error_response(error: ApiError) -> JSONResponse:
    """``error`` as its status and ``ErrorOut`` body (with WWW-Authenticate / Retry-After)."""
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    if isinstance(error, RateLimitedError):
        headers["Retry-After"] = str(error.retry_after)
    body = {"error": {"code": error.code, "message": error.message, "field": error.field}}
    return JSONResponse(body, status_code=error.status, headers=headers)


async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
    """An :class:`ApiError` raised by a route or a dependency."""
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def on_triage_error(request: Request, exc: Exception) -> JSONResponse:
    """Another :class:`TriageError` (no champion, the store unreachable): 503 with its line."""
    logger.warning("%s %s: %s", request.method, request.url.path, type(exc).__name__)
    body = {
        "error": {"code": "unavailable", "message": mask_personal_data(str(exc)), "field": None}
    }
    return JSONResponse(body, status_code=503)


async def on_invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's validation error as one 422 naming the first field at fault."""
    assert isinstance(exc, RequestValidationError)
    return error_response(first_problem(exc.errors()))


def first_problem(problems: Any) -> ApiError:
    """The first of pydantic's ``problems`` as an error naming its field (never its value)."""
    problem = next(iter(problems), {"loc": (), "type": "invalid", "msg": "invalid request"})
    loc = tuple(problem["loc"])
    where = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
    field = ".".join(str(part) for part in where) or None
    if problem["type"] == "json_invalid":
        return InvalidError("the body is not valid JSON")
    if problem["type"] == "missing" and field is None:
        return InvalidError("the request needs a JSON body")
    if problem["type"] == "extra_forbidden":
        return InvalidError(f"unknown field '{field}'", field=field)
    return InvalidError(f"{field}: {problem['msg']}" if field else problem["msg"], field=field)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (an unknown route, a wrong method) in the error envelope."""
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    message = (
        f"no route {request.method} {request.url.path}"
        if exc.status_code == 404
        else str(exc.detail)
    )
    body = {"error": {"code": code, "message": message, "field": None}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


class InternalError(ApiError):
    """A bug: the request met an exception nothing expected."""

    status, code = 500, "internal"


class ContainErrors:
    """ASGI middleware: a bug becomes a 500 envelope and one log line with the exception's type.

    Left to Starlette and uvicorn, the exception's message would be logged, and a message
    (pandas', pydantic's) may quote a ticket's text or a customer id.
    """

    def __init__(self, app: AsgiApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request; answer 500 if it raised before its response started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            logger.error("%s %s failed: %s", scope["method"], scope["path"], type(exc).__name__)
            if not started:
                await refuse(send, scope, InternalError("internal error (see the server's log)"))


def build_app() -> FastAPI:
    """The app's routes, error handlers and OpenAPI document, without a store or a model."""
    app = FastAPI(
        title=TITLE,
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(TriageError, on_triage_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(HTTPException, on_http_error)
    app.include_router(router)
    app.include_router(webhooks.router)
    return app


def create_app(settings: Settings, engine: Engine, triager: Triager) -> FastAPI:
    """The API over ``engine``, answering tickets with ``triager``.

    Args:
        settings: the workspace's settings (limits, SLA targets, idempotency window).
        engine: the ticket store, migrated.
        triager: the loaded triage runtime.

    Returns:
        The ASGI app (its body limit in front).
    """
    app = build_app()
    app.state.context = ApiContext(settings, engine, triager)
    app.state.rate_limiter = RateLimiter(settings.api.rate_limit)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.api.max_request_bytes,
        timeout=settings.api.request_timeout_seconds,
    )
    app.add_middleware(ConnectionTurns, max_requests=settings.api.keepalive_requests)
    app.add_middleware(ContainErrors)  # the last added is the outermost
    return app


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document (the same for every settings)."""
    return build_app().openapi()
