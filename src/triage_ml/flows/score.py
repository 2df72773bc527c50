"""score_new_tickets: partition the unscored tickets and score the partitions on a task runner."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import unmapped

from triage_ml import registry
from triage_ml.errors import RegistryError
from triage_ml.flows._common import open_store
from triage_ml.scoring import batch
from triage_ml.scoring.startup import import_skops_first
from triage_ml.settings import Settings


# Retried as a whole: a partition reads and writes the store, and a retry
# rescores only the chunks that were not written (each chunk commits alone).
@task(retries=2, retry_delay_seconds=[5, 15], cache_policy=NO_CACHE)
def score_partition(
    settings: Settings, version: str, model_uri: str, key_range: batch.KeyRange, rescore: bool
) -> batch.ScoreSummary:
    """Score one key range of tickets with the model at ``model_uri`` (version ``version``), on whichever worker runs it."""
    engine, model = (
        batch.process_engine(settings.store_url),
        registry.process_model(settings, model_uri),
    )
    return batch.score_partition(
        engine, model, version, settings.score_chunk_rows, key_range, rescore
    )


@flow(name="score-new-tickets")
def score_new_tickets(rescore: bool = False) -> dict[str, Any]:
    """Predict every ticket not scored yet (with ``rescore``: not scored by this champion) and store the results."""
    started = time.perf_counter()
    settings = Settings()
    engine, client = open_store(settings), registry.use_workspace(settings)
    version = registry.alias_version(client, settings.model_name, settings.champion_alias)
    if version is None:
        raise RegistryError(
            f"no '{settings.champion_alias}' model yet for '{settings.model_name}'; run `triage-ml retrain` first"
        )
    ranges = batch.partitions(
        engine, version if rescore else None, settings.score_partition_rows, settings.score_workers
    )
    model_uri = registry.version_files(client, settings.model_name, version)
    futures = score_partition.map(
        unmapped(settings), unmapped(version), unmapped(model_uri), ranges, unmapped(rescore)
    )
    summary = batch.combine([future.result() for future in futures], version)
    create_markdown_artifact(
        key="scoring-summary",
        markdown=f"Scored **{summary.scored}** tickets with version {version} "
        f"in {len(ranges)} partitions; {summary.needs_review} need review.",
    )
    return {
        "model_version": version,
        "scored": summary.scored,
        "needs_review": summary.needs_review,
        "chunks": summary.chunks,
        "partitions": len(ranges),
        "seconds": round(time.perf_counter() - started, 2),
    }


def task_runner(settings: Settings) -> TaskRunner:
    """Threads in this process, a pool of local worker processes, or Dask (a local cluster or ``dask_address``'s).

    Prediction is CPU-bound Python (the sentiment analyzer, text vectorisers),
    so threads share one core; processes and Dask use them all.
    """
    if settings.score_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": settings.score_workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    if settings.score_runner == "processes":
        return ProcessPoolTaskRunner(
            max_workers=settings.score_workers, initializer=import_skops_first
        )
    return ThreadPoolTaskRunner(max_workers=settings.score_workers)


def score(settings: Settings, rescore: bool = False) -> dict[str, Any]:
    """Run the scoring flow on the task runner the settings choose."""
    with api_shared_with_workers(settings):
        return score_new_tickets.with_options(task_runner=task_runner(settings))(rescore=rescore)


@contextmanager
def api_shared_with_workers(settings: Settings) -> Iterator[None]:
    """Without a Prefect API URL, give worker processes this process's temporary server.

    Otherwise each worker process, seeing no URL, would start a temporary
    server of its own (seconds each) and record its task runs there, out of
    the flow run's sight. Threads share this process's client already, and
    a remote Dask cluster could not reach a loopback server.
    """
    local_processes = settings.score_runner == "processes" or (
        settings.score_runner == "dask" and not settings.dask_address
    )
    if not local_processes or get_current_settings().api.url:
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the one this process's client would start: one per process
    server.start()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield


# A worker or `prefect serve` loads a deployment's flow from its entrypoint,
# so a runner picked with `with_options` at deploy time would be lost: this
# entry point picks it when the run starts, from the settings of the machine
# that runs it (TRIAGE_SCORE_RUNNER, TRIAGE_DASK_ADDRESS).
@flow(name="scheduled-scoring")
def scheduled_scoring(rescore: bool = False) -> dict[str, Any]:
    """Deployment entry point: run score-new-tickets on the task runner the settings choose."""
    return score(Settings(), rescore=rescore)
