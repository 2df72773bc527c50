"""Opening the ticket store: URLs, engines, reachability and the schema check on connect."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from triage_ml.errors import StoreError
from triage_ml.redact import mask_url
from triage_ml.store import schema

# Seconds a SQLite connection waits for another writer's lock before giving up.
SQLITE_LOCK_TIMEOUT = 60


@contextmanager
def opened(url: str) -> Iterator[Engine]:
    """The store at ``url`` for the length of one command; disposed afterwards."""
    engine = connect(url)
    try:
        yield engine
    finally:
        engine.dispose()


def utcnow() -> datetime:
    """Current time as naive UTC, the store's timestamp convention."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(moment: datetime) -> datetime:
    """``moment`` in the store's convention: an aware one converted to naive UTC, a naive one
    taken as UTC already; a pandas Timestamp comes back as a plain datetime."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.to_pydatetime() if hasattr(moment, "to_pydatetime") else moment


def database_url(url: str) -> sa.URL:
    """Parse a store URL; a plain ``postgresql://`` URL uses the installed psycopg 3 driver.

    Raises:
        StoreError: ``url`` is not a SQLAlchemy URL (the text is not echoed: it may hold a
        password).
    """
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(
            "the database URL is not a valid SQLAlchemy URL (e.g. sqlite:////path/triage.db, "
            "postgresql://user@host:5432/db)"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def safe_url(url: str | sa.URL) -> str:
    """``url`` fit to print: the password masked, in the user part and in query parameters."""
    parsed = url if isinstance(url, sa.URL) else database_url(url)
    return mask_url(parsed.render_as_string(hide_password=False))


def create_engine(url: str) -> Engine:
    """An engine on the store at ``url``, without touching its schema (see :func:`connect`).

    Raises:
        StoreError: unknown or uninstalled database driver.
    """
    parsed = database_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite" and "timeout" not in parsed.query:
        # SQLite waits this long for another writer (a concurrent promotion or
        # ingest) instead of failing at once with "database is locked";
        # ``?timeout=SECONDS`` in the URL sets another wait.
        connect_args = {"timeout": SQLITE_LOCK_TIMEOUT}
    elif parsed.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": 10}  # an unreachable host fails instead of hanging
    try:
        # A failed statement's message must not quote the ticket rows it carried.
        engine = sa.create_engine(parsed, connect_args=connect_args, hide_parameters=True)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise StoreError(
            f"cannot use the database URL {safe_url(parsed)}: unknown or uninstalled driver "
            f"'{parsed.drivername}' (use sqlite:///PATH or postgresql://USER@HOST/DB)"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine, "handle_error", _locked_store_error)
    return engine


def _locked_store_error(context: sa.engine.ExceptionContext) -> None:
    """Replace SQLite's "database is locked", wherever a command meets it, by one StoreError line.

    The wait has run out by then, so the line says whose lock it is and what to do.
    """
    if "database is locked" not in str(context.original_exception):
        return
    url = context.engine.url if context.engine is not None else None
    where = safe_url(url) if url is not None else "the SQLite store"
    raise StoreError(
        f"the store {where} stayed locked by another process past its wait "
        f"({url.query.get('timeout', SQLITE_LOCK_TIMEOUT) if url is not None else '?'} s); "
        "retry when the other triage-ml command has finished"
    ) from None


@contextmanager
def reachable(engine: Engine) -> Iterator[None]:
    """Turn a failure to reach the database into one :class:`StoreError` line (password masked)."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        text = str(exc.orig if exc.orig is not None else exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        raise StoreError(f"cannot open the store at {safe_url(engine.url)}: {reason}") from None


def connect(url: str) -> Engine:
    """Open the store at ``url``, migrating its schema to the current revision if needed.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:////tmp/t.db`` or ``postgresql://...``.

    Returns:
        An engine; the caller owns it (``engine.dispose()`` when done).

    Raises:
        StoreError: bad URL, unreachable database, or a schema newer than this release.
    """
    engine = create_engine(url)
    try:
        with reachable(engine):
            schema.ensure_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
