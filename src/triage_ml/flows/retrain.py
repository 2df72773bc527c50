"""monthly_retrain: snapshot -> validate -> train candidates -> evaluate -> gate -> promote."""

from __future__ import annotations

import time
from typing import Any

import mlflow
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.transactions import Transaction, get_transaction, transaction

from triage_ml import registry, store
from triage_ml.flows import reports
from triage_ml.flows._common import open_store
from triage_ml.registry import gate, promotion
from triage_ml.settings import Settings
from triage_ml.training import dataset, fit, retrain

ABORTED_WHY = "the retraining failed after registering this version, before its decision was recorded; see the flow run's logs"


@task(retries=3, retry_delay_seconds=[2, 5, 15], cache_policy=NO_CACHE)
def take_snapshot(engine) -> dataset.Snapshot:  # type: ignore[no-untyped-def]
    """Read labeled tickets with effective labels (database I/O: retried)."""
    return dataset.load_snapshot(engine)


@task(retries=3, retry_delay_seconds=[2, 5, 15], cache_policy=NO_CACHE)
def register(
    model_uri: str, settings: Settings, run_id: str, candidate: str
) -> registry.RegisteredModel:
    """Register the challenger (registry I/O: retried)."""
    registered = registry.register(model_uri, settings.model_name, run_id, {"candidate": candidate})
    get_transaction().set("undo", (settings, registered))
    return registered


@register.on_rollback
def _abort_registration(txn: Transaction) -> None:
    """The transaction failed after registering: the version stays, tagged and audited as aborted."""
    settings, registered = txn.get("undo")
    with store.opened(settings.store_url) as engine:
        promotion.record_aborted(
            registry.client(settings), engine, settings, registered, ABORTED_WHY
        )


@task(cache_policy=NO_CACHE)
def apply_decision(
    engine,
    client,
    settings: Settings,
    decision: gate.Decision,  # type: ignore[no-untyped-def]
    registered: registry.RegisteredModel,
    champion_version: str | None,
) -> gate.Decision:
    """Guarded alias move (or rejection), audited. Not retried: a failed move is undone, not repeated."""
    final, moved_from = promotion.apply_decision(
        client, engine, settings, decision, registered, champion_version
    )
    get_transaction().set("undo", (settings, registered.version, moved_from))
    return final


@apply_decision.on_rollback
def _revert_promotion(txn: Transaction) -> None:
    """The transaction failed after the alias moved: put the champion back."""
    settings, version, moved_from = txn.get("undo")
    if moved_from is not None:
        with store.opened(settings.store_url) as engine:
            promotion.revert_promotion(
                registry.client(settings), engine, settings, version, moved_from, ABORTED_WHY
            )


@task(cache_policy=NO_CACHE)
def fit_priority(
    prepared: retrain.Prepared, matrices: fit.Matrices, settings: Settings
) -> fit.PriorityModel | None:
    """Fit the stacked priority model (pure computation: no retries)."""
    return retrain.train_priority(prepared, matrices, settings)


@task(cache_policy=NO_CACHE)
def fit_candidate(
    spec: Any, matrices: fit.Matrices, settings: Settings, parent_run_id: str
) -> fit.FittedCandidate:
    """Search and fit one category candidate (pure computation: no retries)."""
    return retrain.train_candidate(spec, matrices, settings, parent_run_id)


# Two models fit at once (the priority model and the candidates), one per core
# of the machines this targets: the solvers spend their time in numpy/scipy
# code that releases the GIL.
@flow(name="monthly-retrain", task_runner=ThreadPoolTaskRunner(max_workers=2))
def monthly_retrain() -> dict[str, Any]:
    """Retrain every candidate, register the best, promote it only if it beats the champion."""
    started = time.perf_counter()
    settings = Settings()
    engine, client = open_store(settings), registry.use_workspace(settings)
    snapshot = take_snapshot(engine)
    prepared = retrain.prepare_split(snapshot, settings)
    with mlflow.start_run(run_name="monthly-retrain") as run:
        retrain.log_lineage(snapshot, prepared)
        matrices = retrain.featurize(prepared)
        fitting = time.perf_counter()
        priority = fit_priority.submit(prepared, matrices, settings)
        futures = [
            fit_candidate.submit(spec, matrices, settings, run.info.run_id)
            for spec in retrain.candidate_specs(settings)
        ]
        fitted = [future.result() for future in futures]
        priority_model = priority.result()
        candidates_seconds = time.perf_counter() - fitting
        ensemble = retrain.train_ensemble(fitted, matrices, settings, run.info.run_id)
        challenger = retrain.assemble_challenger(
            fit.select_best(fitted + ([ensemble] if ensemble else [])),
            prepared,
            matrices,
            settings,
            priority_model,
        )
        mlflow.log_metrics(challenger.metrics)
        retrain.log_test_diagnostics(challenger, prepared.split.test)
        model_uri = registry.log_triage_model(
            challenger.predictor, registry.input_example(prepared.split.test)
        )
        # register -> gate -> alias is all or nothing: the rollback hooks above tag
        # an orphaned version and put a moved alias back.
        with transaction():
            registered = register(model_uri, settings, run.info.run_id, challenger.candidate)
            champion = promotion.evaluate_champion(client, settings, prepared.split.test)
            decision = promotion.judge(
                challenger.metrics, challenger.predictions, champion, prepared.split.test, settings
            )
            decision = apply_decision(
                engine, client, settings, decision, registered, champion.version
            )
            record = promotion.log_decision(decision, registered, champion.version, settings)
        record["champion_after"] = registered.version if decision.promote else champion.version
        mlflow.log_metrics(
            retrain.timing_metrics(
                prepared,
                matrices,
                candidates_seconds,
                ensemble,
                challenger,
                time.perf_counter() - started,
            )
        )
    create_markdown_artifact(key="promotion-decision", markdown=reports.decision_markdown(record))
    return {**record, "run_id": run.info.run_id, "candidate": challenger.candidate}
