"""What one caller may cost the API: a rate per token (or client address), and a body size.

The rate is counted by the ``limits`` package (a moving window in memory, so one server
process keeps one count). The body limit is an ASGI middleware in front of the app: a
declared Content-Length over the limit is refused before any byte is read, and a streamed
(chunked) body is counted as it arrives; it reuses the body reader of the scoring server's
guard (:func:`triage_ml.scoring.app.read_body`), which does exactly that.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from triage_ml.api.errors import ApiError, RateLimitedError, TooLargeError
from triage_ml.scoring.app import (
    AsgiApp,
    ClientGoneError,
    Receive,
    Scope,
    Send,
    read_body,
    replay,
)
from triage_ml.scoring.payload import RequestRefusedError

logger = logging.getLogger(__name__)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class RateLimiter:
    """Every rate of a ``limits`` notation (``"100/second;3000/minute"``), per caller key."""

    def __init__(self, notation: str) -> None:
        """Parse ``notation`` (already checked by the settings)."""
        self.items = parse_many(notation)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key: str) -> None:
        """Count one request from ``key`` (``token:<id>`` or ``address:<ip>``).

        Raises:
            RateLimitedError: one of the rates is used up; ``retry_after`` is the whole seconds
                until its window lets a request through again.
        """
        for item in self.items:
            if not self.limiter.hit(item, key):
                reset = self.limiter.get_window_stats(item, key).reset_time
                wait = max(1, math.ceil(reset - time.time()))
                raise RateLimitedError(
                    f"over the rate limit of {item} requests; retry in {wait} s",
                    retry_after=wait,
                )


def error_body(error: ApiError) -> bytes:
    """The JSON ``ErrorOut`` of ``error``."""
    body = {"error": {"code": error.code, "message": error.message, "field": error.field}}
    return json.dumps(body, separators=(",", ":")).encode()


class RequestTimeoutError(ApiError):
    """The body did not arrive in time (a client trickling it out holds a connection)."""

    status, code = 408, "timeout"


class BodyLimit:
    """ASGI middleware: refuse a body over ``max_bytes`` (413), or slower than ``timeout`` (408)."""

    def __init__(self, app: AsgiApp, max_bytes: int, timeout: float) -> None:
        """Guard ``app`` with a body of at most ``max_bytes`` arriving within ``timeout`` s."""
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the body of a write whole (it is bounded), then pass the request on."""
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.timeout):
                body = await read_body(scope, receive, self.max_bytes)
        except RequestRefusedError:
            await refuse(send, scope, TooLargeError(self.too_large()))
            return
        except TimeoutError:
            await refuse(send, scope, RequestTimeoutError(f"the body took over {self.timeout} s"))
            return
        except ClientGoneError:
            return
        await self.app(scope, replay(body, receive), send)

    def too_large(self) -> str:
        """The one line of a 413."""
        return f"the request body is over the limit of {self.max_bytes} bytes"


async def refuse(send: Send, scope: Scope, error: ApiError) -> None:
    """Answer ``error`` before the app sees the request (its body was not read whole)."""
    logger.info("refused %s %s: %d %s", scope["method"], scope["path"], error.status, error.code)
    content = error_body(error)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


class ConnectionTurns:
    """ASGI middleware: close a keep-alive connection after ``max_requests`` answers.

    A connection stays with the worker process that accepted it, so with several workers
    a few busy helpdesk connections can all sit on one of them while another idles.
    ``Connection: close`` on every ``max_requests``-th answer sends the client's next
    connection to whichever worker accepts first, the free one (nginx's
    ``keepalive_requests``). Hand-written: uvicorn bounds requests per worker, not per
    connection.
    """

    # Connections are known by the client's (address, port); past this many (clients that
    # went away mid-count), the counts start over.
    MAX_TRACKED = 10_000

    def __init__(self, app: AsgiApp, max_requests: int) -> None:
        """Guard ``app``, closing each connection after ``max_requests`` answers."""
        self.app, self.max_requests = app, max_requests
        self.answered: dict[tuple[str, int], int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; on a connection's last turn, answer with ``Connection: close``."""
        client = scope.get("client")
        if scope["type"] != "http" or client is None or not self.last_turn(tuple(client)):
            await self.app(scope, receive, send)
            return

        async def closing(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, closing)

    def last_turn(self, client: tuple[str, int]) -> bool:
        """Count one more request of ``client``'s connection; True when it is its last."""
        if len(self.answered) > self.MAX_TRACKED:
            self.answered.clear()
        turns = self.answered.get(client, 0) + 1
        if turns >= self.max_requests:
            self.answered.pop(client, None)
            return True
        self.answered[client] = turns
        return False
