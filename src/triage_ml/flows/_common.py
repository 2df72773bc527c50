"""What the flows share: opening the store, the one timer their reports use, the guard that
keeps ticket text out of Prefect's state messages and logs, the progress artifact of a run, and
the overrides a flow run's parameters make to the workspace settings."""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import PrefectException
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from triage_ml import progress, store
from triage_ml.errors import ConfigError, TriageError, first_invalid
from triage_ml.settings import Settings


@task(
    task_run_name="open-store",
    retries=3,
    retry_delay_seconds=[2, 5, 15],
    cache_policy=NO_CACHE,
)
def open_store(settings: Settings) -> Engine:
    """Connect to the ticket store (network I/O in production: retried)."""
    return store.connect(settings.store_url)


class Stopwatch:
    """Wall-clock seconds since it was made: the one timer of a flow's summary.

    A flow reports its own duration in its return value (the CLI prints it),
    which Prefect's run duration cannot give while the run is still going.
    """

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def seconds(self, digits: int = 2) -> float:
        """Seconds elapsed, rounded to ``digits``."""
        return round(time.perf_counter() - self.started, digits)


class WithheldError(RuntimeError):
    """An unexpected error inside a stage that reads tickets, its message kept in the workspace."""


def withheld_errors_log(settings: Settings) -> Path:
    """The workspace file that keeps the full tracebacks of :class:`WithheldError`."""
    return settings.home / "logs" / "withheld-errors.log"


@contextmanager
def ticket_text_withheld(settings: Settings, stage: str) -> Iterator[None]:
    """Re-raise an unexpected error of ``stage`` without its message.

    A task's exception message becomes its Prefect state message, and its
    traceback a Prefect log line, both shown to anyone who can open the UI.
    Messages of database drivers, pandas and pandera may quote the rows they
    failed on (PostgreSQL's ``DETAIL: Failing row contains (...)``), so the
    traceback goes to a file in the workspace, beside the ticket store, and
    Prefect gets the error's type and where to look. The project's own
    errors (written without ticket text) and Prefect's pass unchanged.

    Raises:
        WithheldError: in place of any other exception.
    """
    try:
        yield
    except (TriageError, PrefectException):
        raise
    except Exception as exc:
        kept = _keep_traceback(settings, stage, exc)
        raise WithheldError(
            f"{stage} failed with {type(exc).__name__}; its message may quote ticket text,"
            f" so it is kept out of Prefect: {kept}"
        ) from None


def _keep_traceback(settings: Settings, stage: str, exc: BaseException) -> str:
    """Append the traceback of ``exc`` to the workspace's log; says where it went."""
    path = withheld_errors_log(settings)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {stamp} {stage}\n{''.join(traceback.format_exception(exc))}\n")
    except OSError as failed:
        # Raised from here, it would carry the original error along as its context.
        return f"the traceback could not be written to {path} ({failed.strerror})"
    return f"see {path}"


@contextmanager
def progress_artifact(key: str) -> Iterator[None]:
    """Show the progress reports made inside the block as the Prefect progress artifact ``key``.

    The artifact is created at 0 % here, in the flow run's own context, so it
    belongs to the flow run; each report then moves it from whichever worker
    thread makes it. A run that fails leaves it where the failing stage began.
    """
    artifact_id = create_progress_artifact(0.0, key=key, description="starting")
    with progress.listening(partial(update_progress, artifact_id)):
        yield


def update_progress(artifact_id: UUID, description: str, completed: float, total: float) -> None:
    """Set the progress artifact to ``completed`` of ``total`` (in percent), described."""
    share = 100.0 * completed / total if total > 0 else 0.0
    update_progress_artifact(artifact_id, min(100.0, max(0.0, share)), description=description)


def with_overrides(settings: Settings, section: str, **values: Any) -> Settings:
    """``settings`` with the given fields of its ``train`` or ``gate`` section replaced.

    A flow run's parameters (set in the Prefect UI, say) override the
    workspace's settings this way; a value of None keeps the setting. The
    section is validated again, so a value out of range fails here, in one line.

    Raises:
        ConfigError: a value the section refuses (its field and why).
    """
    changes = {name: value for name, value in values.items() if value is not None}
    if not changes:
        return settings
    current = getattr(settings, section)
    try:
        updated = type(current).model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        field, why = first_invalid(exc)
        given = exc.errors()[0].get("input")
        raise ConfigError(f"{section}.{field}: {why} (got {given!r})") from None
    return settings.model_copy(update={section: updated})
