"""rollback_champion and force_promote: the human side of the registry, audited.

Each starts by reconciling what a crashed process left (``reconcile_workspace``),
which the retraining flow shares.
"""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from triage_ml import registry
from triage_ml.flows import reports
from triage_ml.flows._common import open_store
from triage_ml.registry import promotion, recovery
from triage_ml.settings import Settings


@flow(name="rollback-champion")
def rollback_champion(reason: str, settings: Settings | None = None) -> dict[str, Any]:
    """Point champion back at the previous champion, in one guarded and audited step.

    Args:
        reason: why, for the audit trail (required).
        settings: the workspace; None builds them from this machine's environment.

    Returns:
        The move: action, champion before and now, previous champion now, reason.
    """
    settings = settings or Settings()
    engine, client = open_store(settings), registry.use_workspace(settings)
    reconcile_workspace(engine, client, settings)
    result = roll_back(client, engine, settings, reason)
    report_move(result, "champion-rollback")
    return result


@flow(name="force-promote")
def force_promote(version: str, reason: str, settings: Settings | None = None) -> dict[str, Any]:
    """Make a registered version champion without the gate (a human override, audited).

    Args:
        version: the registered version to make champion.
        reason: why, for the audit trail (required).
        settings: the workspace; None builds them from this machine's environment.

    Returns:
        The move: action, champion before and now, previous champion now, reason.
    """
    settings = settings or Settings()
    engine, client = open_store(settings), registry.use_workspace(settings)
    reconcile_workspace(engine, client, settings)
    result = promote_version(client, engine, settings, version, reason)
    report_move(result, "champion-force-promote")
    return result


@task(task_run_name="reconcile", cache_policy=NO_CACHE)
def reconcile_workspace(engine: Engine, client: MlflowClient, settings: Settings) -> dict[str, Any]:
    """Finish or undo what a crashed process left (see :func:`recovery.reconcile`)."""
    return recovery.reconcile(engine, client, settings, get_run_logger())


@task(task_run_name="roll-back-champion", cache_policy=NO_CACHE)
def roll_back(
    client: MlflowClient, engine: Engine, settings: Settings, reason: str
) -> dict[str, Any]:
    """Move champion back to the previous champion (see :func:`promotion.roll_back`)."""
    return promotion.roll_back(client, engine, settings, reason)


@task(task_run_name="force-promote-{version}", cache_policy=NO_CACHE)
def promote_version(
    client: MlflowClient, engine: Engine, settings: Settings, version: str, reason: str
) -> dict[str, Any]:
    """Make ``version`` champion without the gate (see :func:`promotion.force_promote`)."""
    return promotion.force_promote(client, engine, settings, version, reason)


@task(task_run_name="report-{key}", cache_policy=NO_CACHE)
def report_move(result: dict[str, Any], key: str) -> None:
    """Log the alias move in one line and publish it as the markdown artifact ``key``."""
    get_run_logger().info(
        "champion %s: version %s -> %s (previous-champion now %s): %s",
        result["action"],
        result["champion_before"],
        result["champion"],
        result["previous_champion"],
        result["reason"],
    )
    create_markdown_artifact(key=key, markdown=reports.alias_move_markdown(result))
