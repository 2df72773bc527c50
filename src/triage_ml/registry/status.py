"""What a workspace holds: the champion, its metrics, recent runs and decisions.

``status`` reconciles first (see :mod:`triage_ml.registry.recovery`), so what it
shows is never a crashed process's half-done move.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow import MlflowClient
from sqlalchemy.engine import Connection

from triage_ml import registry, store
from triage_ml.registry import recovery, runs
from triage_ml.settings import Settings


def champion_summary(client: MlflowClient, settings: Settings) -> dict[str, Any] | None:
    """The champion version with the test metrics of the run that produced it."""
    version = registry.alias_version(client, settings.model_name, settings.champion_alias)
    if version is None:
        return None
    mv = client.get_model_version(settings.model_name, version)
    run = client.get_run(mv.run_id) if mv.run_id else None
    run_metrics = (
        {}
        if run is None
        else {k: v for k, v in run.data.metrics.items() if not k.startswith("champion.")}
    )
    return {
        "version": version,
        "run_id": mv.run_id,
        "candidate": mv.tags.get("candidate"),
        "metrics": run_metrics,
        "previous_champion": registry.alias_version(
            client, settings.model_name, settings.previous_alias
        ),
    }


def recent_runs(settings: Settings, limit: int = 5) -> list[dict[str, Any]]:
    """The newest retraining runs (parents only), newest first.

    Parents are named ``retrain <month> · <n> tickets``; earlier ones were all
    ``monthly-retrain``, and both are listed.
    """
    found = [
        run
        for name_filter in (
            f"attributes.run_name LIKE '{runs.RUN_PREFIX}%'",
            f"attributes.run_name = '{runs.LEGACY_RUN_NAME}'",
        )
        for run in mlflow.search_runs(
            experiment_names=[settings.experiment_name],
            filter_string=name_filter,
            order_by=["start_time DESC"],
            max_results=limit,
            output_format="list",
        )
    ]
    newest = sorted(found, key=lambda r: r.info.start_time, reverse=True)[:limit]
    return [
        {
            "run_id": r.info.run_id,
            "start_time": r.info.start_time,
            "status": r.info.status,
            "decision": r.data.tags.get("promotion.decision"),
            "challenger_version": r.data.tags.get("promotion.challenger_version"),
            "category_macro_f1": r.data.metrics.get("category_macro_f1"),
        }
        for r in newest
    ]


def workspace_status(settings: Settings) -> dict[str, Any]:
    """Everything ``triage-ml status`` reports."""
    client = registry.use_workspace(settings)
    with store.opened(settings.store_url) as engine:
        reconciled = recovery.reconcile(engine, client, settings)
        with engine.connect() as conn:
            decisions, counts = _store_figures(conn)
    return {
        "champion": champion_summary(client, settings),
        "store": counts,
        "runs": recent_runs(settings),
        "decisions": decisions,
        "model_name": settings.model_name,
        "workspace": str(settings.home.resolve()),
        "reconciled": reconciled,
    }


def _store_figures(conn: Connection) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The newest audit rows and the store's row counts."""
    counts = {
        "tickets": store.count_rows(conn, store.tickets),
        "labeled": store.count_rows(conn, store.tickets, store.tickets.c.category.is_not(None)),
        "feedback": store.count_rows(conn, store.feedback),
        "surveys": store.count_rows(conn, store.surveys),
        "quarantined": store.count_rows(
            conn, store.quarantine, store.quarantine.c.released_at.is_(None)
        ),
        "predictions": store.count_rows(conn, store.predictions),
    }
    return store.recent_decisions(conn), counts
