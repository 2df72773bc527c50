"""score_new_tickets: partition the unscored tickets and score the partitions on a task runner."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlflow import MlflowClient
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import unmapped
from sqlalchemy.engine import Engine

from triage_ml import progress, registry, store
from triage_ml.flows import reports
from triage_ml.flows._common import Stopwatch, open_store, progress_artifact, ticket_text_withheld
from triage_ml.scoring import batch
from triage_ml.scoring.startup import import_skops_first
from triage_ml.settings import Settings


@flow(name="score-new-tickets")
def score_new_tickets(rescore: bool = False, settings: Settings | None = None) -> dict[str, Any]:
    """Predict every ticket not scored yet (with ``rescore``: not scored by this champion).

    Args:
        rescore: also score tickets that an earlier champion scored.
        settings: the workspace; None builds them from this machine's environment.

    Returns:
        The model version, tickets scored, those needing review, the count per tier (auto,
        suggest, review), chunks, partitions and seconds.
    """
    stopwatch = Stopwatch()
    settings = settings or Settings()
    with progress_artifact("scoring-progress"):
        engine, client = open_store(settings), registry.use_workspace(settings)
        version, model_uri = find_champion(client, settings)
        shadow = find_challenger(client, settings, version)
        ranges, tickets = plan_partitions(engine, settings, version if rescore else None)
        futures = score_partition.map(
            unmapped(settings),
            unmapped(version),
            unmapped(model_uri),
            ranges,
            unmapped(rescore),
            unmapped(shadow),
        )
        parts = collect(futures, tickets)
        summary = batch.combine(parts, version)
        report_scoring(summary, parts, ranges, stopwatch.seconds())
    return {
        "model_version": version,
        "scored": summary.scored,
        "needs_review": summary.needs_review,
        "tiers": summary.tiers,
        "chunks": summary.chunks,
        "partitions": len(ranges),
        "seconds": stopwatch.seconds(),
        # Counts only: the shadow challenger's answers are never returned (see monitoring.shadow).
        "shadow_version": None if shadow is None else shadow[0],
        "shadow_scored": summary.shadow_scored,
    }


@task(task_run_name="find-champion", cache_policy=NO_CACHE)
def find_champion(client: MlflowClient, settings: Settings) -> tuple[str, str]:
    """The champion's version and the URI of its files (workers load them without a registry).

    Raises:
        RegistryError: no champion yet.
    """
    version = registry.alias_version(client, settings.model_name, settings.champion_alias)
    if version is None:
        raise registry.no_champion_error(settings)
    model_uri = registry.version_files(client, settings.model_name, version)
    get_run_logger().info("scoring with %s version %s", settings.model_name, version)
    return version, model_uri


@task(task_run_name="find-challenger", cache_policy=NO_CACHE)
def find_challenger(
    client: MlflowClient, settings: Settings, champion: str
) -> tuple[str, str] | None:
    """The shadow challenger's version and files' URI, or None when no other version has the alias.

    It answers the same tickets into ``shadow_predictions``, which no caller reads.
    """
    version = registry.alias_version(client, settings.model_name, settings.challenger_alias)
    if version is None or version == champion:
        return None
    model_uri = registry.version_files(client, settings.model_name, version)
    get_run_logger().info("shadow challenger version %s scores beside the champion", version)
    return version, model_uri


@task(task_run_name="plan-partitions", cache_policy=NO_CACHE)
def plan_partitions(
    engine: Engine, settings: Settings, scored_by: str | None
) -> tuple[list[batch.KeyRange], int]:
    """Key ranges of the unscored tickets (not scored by ``scored_by``; by anyone when None).

    Returns:
        The ranges, and how many tickets they hold (the total of the run's progress).
    """
    with engine.connect() as conn:
        tickets = store.count_unscored(conn, scored_by)
    ranges = batch.partitions(
        engine, scored_by, settings.score_partition_rows, settings.score_workers
    )
    get_run_logger().info(
        "%d ticket(s) to score in %d partition(s) of at most %d tickets for %d worker(s)",
        tickets,
        len(ranges),
        settings.score_partition_rows,
        settings.score_workers,
    )
    progress.report("scoring: tickets scored", 0, tickets)
    return ranges, tickets


def collect(futures: list[PrefectFuture[batch.ScoreSummary]], tickets: int) -> list[Any]:
    """The partitions' summaries, in order; the tickets scored are reported as each one ends.

    In submission order rather than as completed: the partitions are of one
    size and start together, and every task runner's futures support it.
    """
    parts, scored = [], 0
    for future in futures:
        parts.append(future.result())
        scored += parts[-1].scored
        progress.report("scoring: tickets scored", scored, max(tickets, scored))
    return parts


def partition_run_name(parameters: dict[str, Any]) -> str:
    """``score_partition-(after, upto]``: the key range a partition's task run scores."""
    after, upto = parameters["key_range"]
    return f"score_partition-({after or 'start'}, {upto or 'end'}]"


# Retried as a whole: a partition reads and writes the store, and a retry
# rescores only the chunks that were not written (each chunk commits alone).
@task(
    task_run_name=partition_run_name,
    retries=2,
    retry_delay_seconds=[5, 15],
    cache_policy=NO_CACHE,
)
def score_partition(
    settings: Settings,
    version: str,
    model_uri: str,
    key_range: batch.KeyRange,
    rescore: bool,
    shadow: tuple[str, str] | None = None,
) -> batch.ScoreSummary:
    """Score one key range with the model at ``model_uri`` (``version``), on any worker.

    With ``shadow`` (the challenger's version and files' URI) it scores the same tickets too.
    The champion's answers carry their duplicate suggestions (``settings.duplicates``).
    Its INFO line (tickets scored, chunks, needs review) comes from :func:`batch.score_partition`.
    An error while predicting reaches Prefect without its message, which may quote a ticket.
    """
    engine, model = (
        batch.process_engine(settings.store_url),
        registry.process_model(settings, model_uri),
    )
    challenger = None if shadow is None else load_shadow(settings, *shadow)
    with ticket_text_withheld(settings, "score-partition"):
        return batch.score_partition(
            engine,
            model,
            version,
            settings.score_chunk_rows,
            key_range,
            rescore,
            challenger,
            duplicate_settings=settings.duplicates,
        )


def load_shadow(settings: Settings, version: str, model_uri: str) -> batch.ShadowModel | None:
    """The shadow challenger's model, or None (logged) when it cannot load.

    A challenger that fails its integrity check or cannot load must never stop the
    champion's scoring: the partition goes on without the parallel run.
    """
    try:
        return batch.ShadowModel(registry.process_model(settings, model_uri), version)
    except Exception as exc:
        get_run_logger().warning(
            "shadow challenger version %s not loaded (%s): scoring with the champion alone",
            version,
            type(exc).__name__,
        )
        return None


@task(task_run_name="report-scoring", cache_policy=NO_CACHE)
def report_scoring(
    summary: batch.ScoreSummary,
    parts: list[batch.ScoreSummary],
    ranges: list[batch.KeyRange],
    seconds: float,
) -> None:
    """Log the run's figures in one line; publish the partitions' counts as ``scoring-summary``."""
    get_run_logger().info(
        "scored %d tickets with version %s in %d partition(s), %d chunk(s) in %.1f s; "
        "%d need review",
        summary.scored,
        summary.model_version,
        len(ranges),
        summary.chunks,
        seconds,
        summary.needs_review,
    )
    if summary.shadow_scored or summary.shadow_failed:
        get_run_logger().info(
            "shadow challenger answered %d tickets apart (%d chunk(s) failed)",
            summary.shadow_scored,
            summary.shadow_failed,
        )
    create_table_artifact(
        key="scoring-summary",
        table=reports.scoring_table(parts, ranges),
        description=f"Scored {summary.scored} tickets with version {summary.model_version} "
        f"in {len(ranges)} partition(s) and {seconds:.1f} s; {summary.needs_review} need review.",
    )


def task_runner(settings: Settings) -> TaskRunner:
    """Threads in this process, local worker processes, or Dask (local, or ``dask_address``'s).

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
    """Run the scoring flow on the task runner the settings choose.

    Args:
        settings: the workspace, passed to the flow as its parameter.
        rescore: also score tickets that an earlier champion scored.

    Returns:
        What :func:`score_new_tickets` returns.
    """
    with api_shared_with_workers(settings):
        flow_on_runner = score_new_tickets.with_options(task_runner=task_runner(settings))
        return flow_on_runner(rescore=rescore, settings=settings)


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
# entry point picks it when the run starts, from the settings it is given or,
# without them, from the environment of the machine that runs it.
@flow(name="scheduled-scoring")
def scheduled_scoring(rescore: bool = False, settings: Settings | None = None) -> dict[str, Any]:
    """Deployment entry point: run score-new-tickets on the task runner the settings choose.

    Args:
        rescore: also score tickets that an earlier champion scored.
        settings: the workspace; None (what deployments pass) builds them from the environment.

    Returns:
        What :func:`score_new_tickets` returns.
    """
    return score(settings or Settings(), rescore=rescore)
