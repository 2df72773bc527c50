"""Tasks shared by the flows: opening the store and the MLflow workspace."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from triage_ml import store
from triage_ml.settings import Settings


@task(retries=3, retry_delay_seconds=[2, 5, 15], cache_policy=NO_CACHE)
def open_store(settings: Settings) -> Engine:
    """Connect to the ticket store (network I/O in production: retried)."""
    return store.connect(settings.store_url)
