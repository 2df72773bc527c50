"""The Prefect deployments of triage-ml, defined once from settings.

:func:`deployment_specs` says what runs when (plain data, no Prefect import);
:func:`register` applies the specs to a Prefect server for workers of the
work pool, and :func:`serve` runs them in this process instead. Both build
their Prefect deployments with :func:`runner_deployments`, so ``triage-ml
deploy`` and ``triage-ml serve-flows`` cannot disagree.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from triage_ml.errors import TriageError
from triage_ml.settings import Settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import WorkPool
    from prefect.deployments.runner import RunnerDeployment
    from prefect.schedules import Schedule

DEPLOYMENT_NAME = "triage-ml"
TAGS: tuple[str, ...] = ("triage-ml",)


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: which flow, when, with which parameters, and how many runs at once."""

    flow_name: str
    entrypoint: str
    description: str
    timezone: str
    cron: str | None = None
    interval_minutes: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    concurrency_limit: int = 1

    @property
    def full_name(self) -> str:
        """``<flow>/<deployment>``, as Prefect names deployments."""
        return f"{self.flow_name}/{DEPLOYMENT_NAME}"

    def describe_schedule(self) -> str:
        """The schedule in words, e.g. ``cron 0 3 1 * * (Europe/Berlin)``."""
        when = f"cron {self.cron}" if self.cron else f"every {self.interval_minutes} min"
        return f"{when} ({self.timezone})"


def deployment_specs(settings: Settings) -> list[DeploymentSpec]:
    """The scheduled jobs: monthly retraining, frequent scoring, inbox ingestion, daily monitor.

    Each allows one run at a time; a run due while another is still going
    waits for it (see :func:`concurrency`), so retrainings never overlap.
    """
    s = settings.schedules
    return [
        DeploymentSpec(
            "monthly-retrain",
            "triage_ml/flows/retrain.py:monthly_retrain",
            "Retrain every candidate; promote the best only if it beats the champion.",
            s.timezone,
            cron=s.retrain_cron,
        ),
        DeploymentSpec(
            "scheduled-scoring",
            "triage_ml/flows/score.py:scheduled_scoring",
            "Score new tickets with the champion, "
            "on the task runner the settings choose (threads or Dask).",
            s.timezone,
            interval_minutes=s.score_interval_minutes,
            parameters={"rescore": False},
        ),
        DeploymentSpec(
            "ingest-inbox",
            "triage_ml/flows/ingest.py:ingest_inbox",
            "Ingest files dropped into the inbox; move each to processed/ or failed/.",
            s.timezone,
            interval_minutes=s.ingest_interval_minutes,
        ),
        DeploymentSpec(
            "monitor",
            "triage_ml/flows/monitor.py:monitor",
            "Judge the champion on live labels and drift; alert, and retrain early if it slipped.",
            s.timezone,
            cron=s.monitor_cron,
        ),
    ]


def project_root() -> Path:
    """The directory holding the ``triage_ml`` package (``src/``).

    A process worker runs the deployments' entrypoints (``triage_ml/flows/<x>.py:<fn>``) from it.
    """
    import triage_ml

    return Path(triage_ml.__file__).resolve().parent.parent


def schedule(spec: DeploymentSpec) -> Schedule:
    """The Prefect schedule of a spec.

    Intervals are anchored at midnight of 2026-01-01 in the configured
    timezone, so scoring runs land on :00, :15, :30... and re-deploying does
    not shift them (Prefect would anchor them at the moment of deployment).
    """
    from prefect.schedules import Cron, Interval

    if spec.cron:
        return Cron(spec.cron, timezone=spec.timezone)
    anchor = datetime(2026, 1, 1, tzinfo=ZoneInfo(spec.timezone))
    return Interval(
        timedelta(minutes=spec.interval_minutes or 0), anchor_date=anchor, timezone=spec.timezone
    )


def concurrency(spec: DeploymentSpec) -> Any:
    """At most ``spec.concurrency_limit`` runs; a run that collides is queued, never cancelled."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    return ConcurrencyLimitConfig(
        limit=spec.concurrency_limit, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE
    )


def runner_deployments(settings: Settings, work_pool: str | None) -> list[RunnerDeployment]:
    """Prefect deployments of the specs; ``work_pool=None`` for serving in this process.

    The flows are loaded with ``Flow.from_source`` from the project directory,
    so a process worker on this machine runs them from that directory.
    """
    from prefect import Flow

    root = str(project_root())
    return [
        Flow.from_source(source=root, entrypoint=spec.entrypoint).to_deployment(
            name=DEPLOYMENT_NAME,
            schedules=[schedule(spec)],
            concurrency_limit=concurrency(spec),
            parameters=spec.parameters,
            description=spec.description,
            tags=list(TAGS),
            work_pool_name=work_pool,
            paused=False,
        )
        for spec in deployment_specs(settings)
    ]


def require_api_url(command: str) -> str:
    """The configured Prefect API URL: ``deploy`` and ``serve-flows`` need a real server.

    Deployments registered on Prefect's temporary embedded server vanish with
    the command, and a served run's subprocess would start a temporary server
    of its own (seen on 3.8.8: the run is cancelled, its concurrency slot "lost").

    Raises:
        TriageError: no API URL is configured, or the API does not answer.
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise TriageError(
            f"{command} needs a Prefect server: set TRIAGE_PREFECT_API_URL "
            "(e.g. http://127.0.0.1:4200/api, "
            "from `prefect server start` or `make prefect-ui`)"
        )
    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()
    if problem is not None:
        detail = (
            str(problem).strip().splitlines()[0] if str(problem).strip() else type(problem).__name__
        )
        raise TriageError(f"cannot reach the Prefect API at {url}: {detail}")
    return url


def ensure_work_pool(name: str, concurrency_limit: int | None) -> WorkPool:
    """Create the process work pool, or set the concurrency limit of the existing one.

    An existing pool keeps its type, job template and paused state: an
    operator may have tuned them (Prefect's ``overwrite=True`` would reset
    all three), only its limit follows the settings.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            return client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type="process",
                    concurrency_limit=concurrency_limit,
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                    description="triage-ml: monthly retraining, scoring and inbox ingestion",
                )
            )
        except ObjectAlreadyExists:
            client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=concurrency_limit))
            return client.read_work_pool(name)


def register(settings: Settings) -> dict[str, Any]:
    """Register the work pool and the deployments (schedules, limits) on the configured API.

    Returns:
        What the server now holds, read back from its API.
    """
    url = require_api_url("deploy")
    pool = ensure_work_pool(settings.schedules.work_pool, settings.schedules.work_pool_concurrency)
    # RunnerDeployment.apply rather than prefect.deploy(): on 3.8.8 with the
    # pinned fastapi, deploy()'s worker lookup is refused by the server (422,
    # limit=None), and deploy() prints a failed deployment instead of raising.
    ids = [
        deployment.apply(work_pool_name=pool.name)
        for deployment in runner_deployments(settings, pool.name)
    ]
    return {
        "api_url": url,
        "work_pool": {
            "name": pool.name,
            "type": pool.type,
            "concurrency_limit": pool.concurrency_limit,
        },
        "deployments": [read_back(deployment_id) for deployment_id in ids],
    }


def read_back(deployment_id: Any) -> dict[str, Any]:
    """One deployment as the server holds it: schedules, next runs, parameters, pool, limits."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(deployment_id)
        flow = client.read_flow(deployment.flow_id)
    limit = deployment.global_concurrency_limit
    options = deployment.concurrency_options
    return {
        "name": f"{flow.name}/{deployment.name}",
        "id": str(deployment.id),
        "entrypoint": deployment.entrypoint,
        "work_pool": deployment.work_pool_name,
        "parameters": deployment.parameters,
        "concurrency_limit": limit.limit if limit else None,
        "collision_strategy": str(options.collision_strategy.value) if options else None,
        "schedules": [schedule_summary(item.schedule) for item in deployment.schedules],
    }


def schedule_summary(server_schedule: Any, runs: int = 3) -> dict[str, Any]:
    """A schedule as the API returned it, with its next run times (from Prefect's server code)."""
    import asyncio

    from prefect.server.schemas import schedules

    data = server_schedule.model_dump(mode="json")
    kind = schedules.CronSchedule if "cron" in data else schedules.IntervalSchedule
    upcoming = asyncio.run(kind.model_validate(data).get_dates(n=runs))
    summary = {key: data[key] for key in ("cron", "interval", "timezone") if key in data}
    return {**summary, "next_runs": [moment.isoformat() for moment in upcoming]}


def serve(settings: Settings, announce: Callable[[], None] = lambda: None) -> None:
    """Run the deployments in this process (schedules included) until interrupted.

    For setups without workers: ``triage-ml serve-flows``.
    """
    from prefect import serve as prefect_serve

    require_api_url("serve-flows")
    announce()
    with interrupt_raises_at_once():
        prefect_serve(*runner_deployments(settings, work_pool=None), print_starting_message=True)


@contextmanager
def interrupt_raises_at_once() -> Iterator[None]:
    """Make Ctrl-C raise KeyboardInterrupt where the main thread is, as Python did before 3.11.

    ``asyncio.run`` (3.11+) otherwise turns a first Ctrl-C into a cancellation
    of its main task, which Prefect's runner sometimes absorbed, so that
    ``serve-flows`` did not stop. ``prefect.serve`` handles the
    KeyboardInterrupt itself, and ``asyncio.run`` still cancels the runner's
    tasks on the way out, so its schedules are paused (tested). asyncio
    leaves a handler of one's own in place.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
