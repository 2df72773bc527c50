"""The HTTP scoring server: MLflow's scoring app for a registered model, behind a guard.

``mlflow.pyfunc.scoring_server.init`` builds MLflow's own app for a loaded
model (``/invocations``, ``/ping``, ``/health``, ``/version``). On its own it
reads any body whole, coerces what it is given and has no authentication.
:class:`GuardedApp` wraps it as ASGI middleware and, before MLflow sees a
request:

- asks for ``Authorization: Bearer <token>`` on every path but ``/ping`` and
  ``/health`` when a token is set (401);
- refuses a body over the size limit from its Content-Length, or while it
  streams, never holding more than the limit (413);
- takes JSON only on ``/invocations`` (415), and refuses invalid or deeply
  nested JSON, mistyped fields and tickets with no text (400) and too many
  tickets (413);
- bounds each request's time: 408 while its body is still arriving, 504
  after;
- leaves out of each ticket the fields the model does not read (a client's
  own ``ticket_id``, say), which MLflow would ignore with a warning on every
  request.

Run it with ``python -m triage_ml.scoring.app`` (as ``triage-ml serve`` does).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from triage_ml.errors import TriageError
from triage_ml.scoring import payload
from triage_ml.scoring.payload import RequestRefusedError
from triage_ml.scoring.serving import ServeLimits, check_bind, read_token

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/ping", "/health"})
SCORING_PATH = "/invocations"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Open connections per worker past which uvicorn answers 503: a bound on slow clients.
MAX_CONNECTIONS = 64
KEEP_ALIVE_SECONDS = 5
# How the server's process passes its options to uvicorn's worker processes.
ENV_PREFIX = "TRIAGE_SERVE_APP_"


class ClientGoneError(Exception):
    """The client disconnected before its body arrived: nobody is left to answer."""


class GuardedApp:
    """ASGI middleware that checks each request before MLflow's scoring app sees it."""

    def __init__(
        self, inner: AsgiApp, fields: dict[str, str], limits: ServeLimits, token: str | None
    ) -> None:
        """Wrap ``inner``.

        Args:
            inner: MLflow's scoring app.
            fields: the model's input columns and their MLflow types.
            limits: the size, ticket and time limits.
            token: the bearer token every request but a health check must carry, or None.
        """
        self.inner, self.fields, self.limits = inner, fields, limits
        self.token = token.encode() if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI event: a refusal, or whatever MLflow's app answers."""
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        progress = Progress(send)
        try:
            async with asyncio.timeout(self.limits.request_timeout):
                await self.handle(scope, receive, progress)
        except TimeoutError:
            if not progress.started:
                await refuse(send, scope, timed_out(progress.body_read, self.limits))
        except RequestRefusedError as refusal:
            await refuse(send, scope, refusal)
        except ClientGoneError:
            logger.info("%s %s: the client left before its body arrived", *request_line(scope))

    async def handle(self, scope: Scope, receive: Receive, progress: Progress) -> None:
        """Check ``scope``'s request, then pass it on to MLflow's app with its body replayed."""
        if scope["path"] not in OPEN_PATHS:
            self.check_token(scope)
        if scope["method"] in BODY_METHODS:
            if scope["path"] == SCORING_PATH:
                check_json_content(scope)
            body = await read_body(scope, receive, self.limits.max_request_bytes)
            progress.body_read = True
            if scope["path"] == SCORING_PATH:
                body = payload.passed_on(body, self.fields, self.limits.max_rows)
                scope = with_content_length(scope, len(body))
            receive = replay(body, receive)
        await self.inner(scope, receive, progress.send)

    def check_token(self, scope: Scope) -> None:
        """Refuse a request without this server's bearer token (when it has one)."""
        if self.token is None:
            return
        scheme, _, given = header(scope, b"authorization").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self.token
        ):
            raise RequestRefusedError(
                401,
                "UNAUTHENTICATED",
                "this server needs the header 'Authorization: Bearer <token>'",
            )


class Progress:
    """How far a request got: whether its body arrived and whether a response started."""

    def __init__(self, send: Send) -> None:
        """Track responses sent through ``send``."""
        self._send = send
        self.body_read = False
        self.started = False

    async def send(self, message: Message) -> None:
        """Send ``message``, noting the response has started."""
        self.started = True
        await self._send(message)


def header(scope: Scope, name: bytes) -> str:
    """The value of header ``name`` (lower case) in ``scope``, or ``""``."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def request_line(scope: Scope) -> tuple[str, str]:
    """The method and path of a request, for log lines (never its query or body)."""
    return scope["method"], scope["path"]


def check_json_content(scope: Scope) -> None:
    """Refuse a scoring request that is not JSON: only JSON's tickets can be checked here."""
    mime = header(scope, b"content-type").split(";")[0].strip().lower()
    if mime != "application/json":
        raise RequestRefusedError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"send JSON ('Content-Type: application/json'), not '{mime[:40] or 'none'}'",
        )


def too_large(size: str, limit: int) -> RequestRefusedError:
    """The 413 refusal of a body of ``size`` bytes."""
    return RequestRefusedError(
        413, "REQUEST_TOO_LARGE", f"the request body is {size} bytes; the limit is {limit} bytes"
    )


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request's body, refused as soon as it is known to be over ``limit`` bytes.

    A declared Content-Length over the limit is refused before any of the body
    is read; a body without one is counted as it streams in.

    Raises:
        RequestRefusedError: 413 over the limit.
        ClientGoneError: the client disconnected.
    """
    declared = header(scope, b"content-length")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(declared, limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGoneError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(f"more than {limit}", limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def with_content_length(scope: Scope, length: int) -> Scope:
    """``scope`` with its Content-Length set to ``length``, for a body passed on changed."""
    headers = [(key, value) for key, value in scope["headers"] if key != b"content-length"]
    return {**scope, "headers": [*headers, (b"content-length", str(length).encode())]}


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, whole, then defers to the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


def timed_out(body_read: bool, limits: ServeLimits) -> RequestRefusedError:
    """The refusal of a request that ran out of time: 408 while its body arrived, else 504."""
    if not body_read:
        return RequestRefusedError(
            408,
            "REQUEST_TIMEOUT",
            f"the request body did not arrive within {limits.request_timeout} s",
        )
    return RequestRefusedError(
        504, "TIMEOUT", f"the request was not answered within {limits.request_timeout} s"
    )


async def refuse(send: Send, scope: Scope, refusal: RequestRefusedError) -> None:
    """Answer ``refusal`` as MLflow answers errors: JSON with an error code and a message."""
    logger.warning("refused %s %s: %s", *request_line(scope), refusal)
    content = json.dumps({"error_code": refusal.code, "message": refusal.message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    if refusal.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def input_fields(model: Any) -> dict[str, str]:
    """The model's input columns and their MLflow type names, from its signature."""
    from mlflow.types import DataType

    schema = model.metadata.get_input_schema()
    if schema is None or schema.is_tensor_spec():
        return {}
    return {
        name: kind.name if isinstance(kind, DataType) else "other"
        for name, kind in zip(schema.input_names(), schema.input_types())
    }


def create_app(model: Any, limits: ServeLimits, token: str | None) -> GuardedApp:
    """MLflow's scoring app for the loaded pyfunc ``model``, behind the guard."""
    from mlflow.pyfunc import scoring_server

    return GuardedApp(scoring_server.init(model), input_fields(model), limits, token)


def load_model(uri: str) -> Any:
    """Load the pyfunc model at ``uri``, its files checked against their registered digests first.

    skops is imported first (see :mod:`triage_ml.scoring.startup`); the tracking and
    registry stores come from the server's environment.
    """
    from triage_ml.scoring.startup import import_skops_first

    import_skops_first()
    from triage_ml.registry.versions import load_checked

    return load_checked(uri)


def app_from_environment() -> GuardedApp:
    """The guarded app as :func:`main` configured it: uvicorn's factory, in each worker."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    options = json.loads(os.environ[f"{ENV_PREFIX}OPTIONS"])
    token_file = options["token_file"]
    limits = ServeLimits(options["max_request_bytes"], options["max_rows"], options["timeout"])
    token = read_token(Path(token_file) if token_file else None)
    app = create_app(load_model(options["model_uri"]), limits, token)
    logger.info(
        "serving %s: at most %d bytes and %d tickets per request, %d s each, token %s",
        options["model_uri"],
        limits.max_request_bytes,
        limits.max_rows,
        limits.request_timeout,
        "required" if token else "not required",
    )
    return app


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The server's command-line options (see :func:`triage_ml.scoring.serving.serve_command`)."""
    parser = argparse.ArgumentParser(prog="python -m triage_ml.scoring.app", description=__doc__)
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-request-bytes", type=int, default=ServeLimits.max_request_bytes)
    parser.add_argument("--max-rows", type=int, default=ServeLimits.max_rows)
    parser.add_argument("--request-timeout", type=int, default=ServeLimits.request_timeout)
    parser.add_argument("--token-file", type=Path, default=None)
    parser.add_argument("--allow-remote", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted; 2 after one ``error:`` line when the options are unusable."""
    import uvicorn

    args = parse_arguments(argv)
    try:
        token = read_token(args.token_file)
        warning = check_bind(args.host, args.allow_remote, token is not None)
    except TriageError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    if warning:
        sys.stderr.write(f"warning: {warning}\n")
    options = {
        "model_uri": args.model_uri,
        "max_request_bytes": args.max_request_bytes,
        "max_rows": args.max_rows,
        "timeout": args.request_timeout,
        "token_file": str(args.token_file) if args.token_file else None,
    }
    os.environ[f"{ENV_PREFIX}OPTIONS"] = json.dumps(options)
    uvicorn.run(
        "triage_ml.scoring.app:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=MAX_CONNECTIONS,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
