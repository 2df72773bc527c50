"""Finish or undo what a killed process left in the registry, the runs and the audit table.

:func:`reconcile` runs at the start of every retraining, forced promotion,
rollback and ``status``. It only touches work whose process is gone (see
:mod:`triage_ml.registry.owners`), so it is safe beside a live retraining:

- a run left RUNNING by a dead process is marked FAILED;
- a pending alias move of a dead process is undone (``promotion.settle_dead_intents``);
- a champion alias that disagrees with the audit table is put back where the
  newest audited move left it, and that is audited too;
- a version with no decision whose run is over is tagged from its audit row,
  or, with none, tagged and audited as aborted.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from sqlalchemy.engine import Connection, Engine

from triage_ml import registry, store
from triage_ml.registry import owners, promotion
from triage_ml.settings import Settings

RECONCILED = "reconcile"  # the audit action of a champion put back by reconciliation
DECISION_TAG = "promotion.decision"
PARENT_TAG = "mlflow.parentRunId"
RUN_FAILED_WHY = "the process running it died; marked FAILED by reconciliation"
NO_DECISION_WHY = (
    "no decision was recorded for this version: the process that registered it died"
    " before the gate's verdict; aborted by reconciliation"
)

logger = logging.getLogger(__name__)


def reconcile(
    engine: Engine,
    client: MlflowClient,
    settings: Settings,
    log: logging.Logger | logging.LoggerAdapter[Any] | None = None,
) -> dict[str, Any]:
    """Finish or undo what crashed processes left; log one line of what was done.

    Returns:
        ``runs_failed`` (run ids), ``moves_undone`` (intent records),
        ``champion_restored`` (``{"from", "to"}`` or None), ``versions_aborted`` and
        ``versions_tagged`` (version numbers).
    """
    runs_failed = fail_dead_runs(client, settings)
    with engine.connect() as conn, conn.begin():
        store.lock_aliases(engine, conn, settings.model_name)
        pending = store.pending_intents(conn, settings.model_name)
        dead = [i for i in pending if not promotion.intent_alive(i)]
        undone = promotion.settle_dead_intents(conn, client, settings, dead)
        # A live move is between its intent and its audit row: the aliases are in flux.
        restored = None if len(dead) < len(pending) else align_champion(conn, client, settings)
        aborted, tagged = settle_undecided_versions(conn, client, settings)
    summary = {
        "runs_failed": runs_failed,
        "moves_undone": undone,
        "champion_restored": restored,
        "versions_aborted": aborted,
        "versions_tagged": tagged,
    }
    (log or logger).info("reconciled: %s", describe(summary))
    return summary


def describe(summary: dict[str, Any]) -> str:
    """One line saying what :func:`reconcile` did."""
    restored = summary["champion_restored"]
    parts = [
        f"{len(summary['runs_failed'])} dead run(s) marked FAILED",
        f"{len(summary['moves_undone'])} interrupted alias move(s) undone",
        "champion agrees with the audit"
        if restored is None
        else f"champion put back from {restored['from']} to {restored['to']}",
        f"{len(summary['versions_aborted'])} undecided version(s) aborted",
        f"{len(summary['versions_tagged'])} tagged from the audit",
    ]
    return ", ".join(parts)


def _started(run: Run) -> datetime:
    return datetime.fromtimestamp((run.info.start_time or 0) / 1000, UTC)


def _run_alive(run: Run, running: dict[str, Run]) -> bool:
    """A run with an owner tag lives as long as its owner; a child run as long as its parent."""
    tags = run.data.tags
    parent = tags.get(PARENT_TAG)
    if owners.OWNER_TAG in tags or parent is None:
        return owners.owner_alive(tags.get(owners.OWNER_TAG), _started(run), owners.RUN_LEASE)
    return parent in running and _run_alive(running[parent], running)


def fail_dead_runs(client: MlflowClient, settings: Settings) -> list[str]:
    """Mark FAILED the workspace experiment's runs left RUNNING by a dead process.

    Returns:
        The ids of the runs marked FAILED.
    """
    experiment = client.get_experiment_by_name(settings.experiment_name)
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id], "attributes.status = 'RUNNING'", max_results=1000
    )
    running = {run.info.run_id: run for run in runs}
    dead = [run_id for run_id, run in running.items() if not _run_alive(run, running)]
    for run_id in dead:
        client.set_tag(run_id, "triage.reconciled", RUN_FAILED_WHY)
        client.set_terminated(run_id, status="FAILED")
    return dead


def align_champion(
    conn: Connection, client: MlflowClient, settings: Settings
) -> dict[str, str | None] | None:
    """Put the champion back where the newest audited move left it (audited), if it is elsewhere.

    A model whose audit table holds no move is left alone: nothing says where it belongs.

    Returns:
        ``{"from": ..., "to": ...}`` when the champion was put back, else None.
    """
    last = store.last_promotion(conn, settings.model_name)
    if last is None:
        return None
    audited, now = last["challenger_version"], registry.aliases(client, settings)
    if now.champion == audited:
        return None
    previous = None if now.previous == audited else now.previous
    registry.restore_aliases(client, settings, registry.Aliases(audited, previous))
    why = (
        f"the champion alias pointed at version {now.champion}, which no audited move put there;"
        f" put back to version {audited} as audit row {last['id']} says"
    )
    store.record_decision(
        conn,
        promotion.audit_row(settings, RECONCILED, audited, True, why, champion=now.champion),
    )
    return {"from": now.champion, "to": audited}


def _run_over(client: MlflowClient, run_id: str | None) -> bool:
    if not run_id:
        return True
    try:
        return client.get_run(run_id).info.status != "RUNNING"
    except MlflowException:
        return True  # the run is gone: nothing will ever decide about the version


def _outcome(row: dict[str, Any]) -> str:
    """The version tag an audit row about the version stands for."""
    if row["action"] == promotion.GATE:
        return "promoted" if row["promoted"] else "rejected"
    return {promotion.FORCED: "force-promoted"}.get(row["action"], row["action"])


def settle_undecided_versions(
    conn: Connection, client: MlflowClient, settings: Settings
) -> tuple[list[str], list[str]]:
    """Tag every version with no decision whose run is over: from its audit row, else aborted.

    Returns:
        The versions aborted (tagged and audited), and the versions tagged from the audit.
    """
    aborted, tagged = [], []
    name = settings.model_name
    for mv in client.search_model_versions(f"name = '{name}'"):
        if DECISION_TAG in mv.tags or not _run_over(client, mv.run_id):
            continue
        version = str(mv.version)
        row = store.version_decision(conn, name, version)
        if row is None:
            store.record_decision(
                conn,
                promotion.audit_row(
                    settings, promotion.ABORTED, version, False, NO_DECISION_WHY, mv.run_id
                ),
            )
            promotion.tag_version(client, name, version, promotion.ABORTED, NO_DECISION_WHY)
            aborted.append(version)
        else:
            promotion.tag_version(client, name, version, _outcome(row), row["reason"])
            tagged.append(version)
    return aborted, tagged
