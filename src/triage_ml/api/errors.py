"""What the API answers when it cannot do what was asked: a status, a code, one line, a field.

Every non-2xx answer has the body ``{"error": {"code", "message", "field"}}``
(:class:`triage_ml.api.schemas.ErrorOut`); the app's exception handler turns
an :class:`ApiError` into it. Raised inside a request's transaction, it rolls
the transaction back, so a refused request leaves the store as it was.
"""

from __future__ import annotations

from triage_ml.errors import TriageError


class ApiError(TriageError):
    """A request the API refuses, with its HTTP status and the field at fault (if one is)."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


class UnauthorizedError(ApiError):
    """No token, or one the store does not know (or has revoked)."""

    status, code = 401, "unauthorized"


class ForbiddenError(ApiError):
    """A valid token without the scope the request needs (a read token writing)."""

    status, code = 403, "forbidden"


class NotFoundError(ApiError):
    """An unknown ticket, route or webhook provider."""

    status, code = 404, "not_found"


class ConflictError(ApiError):
    """The request contradicts the ticket's state: an illegal transition, an id already taken,
    an Idempotency-Key whose first request is still running."""

    status, code = 409, "conflict"


class TooLargeError(ApiError):
    """A body over ``api.max_request_bytes``."""

    status, code = 413, "too_large"


class InvalidError(ApiError):
    """A field the contracts refuse (named in ``field``), or an Idempotency-Key reused with
    another body."""

    status, code = 422, "invalid"


class RateLimitedError(ApiError):
    """More requests than ``api.rate_limit`` allows this caller."""

    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnavailableError(ApiError):
    """No champion to triage with (the API cannot answer a create until one is promoted)."""

    status, code = 503, "unavailable"
