"""What the flows share: opening the store, and the one timer their reports use."""

from __future__ import annotations

import time

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from triage_ml import store
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
