"""monthly_retrain: snapshot -> validate -> train candidates -> evaluate -> gate -> promote."""

from __future__ import annotations

import time
from typing import Any

import mlflow
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows._common import open_store
from triage_ml import dataset, registry, reports, retrain, train
from triage_ml.settings import Settings


@task(retries=3, retry_delay_seconds=[2, 5, 15], cache_policy=NO_CACHE)
def take_snapshot(engine) -> dataset.Snapshot:  # type: ignore[no-untyped-def]
    """Read labeled tickets with effective labels (database I/O: retried)."""
    return dataset.load_snapshot(engine)


@task(retries=3, retry_delay_seconds=[2, 5, 15], cache_policy=NO_CACHE)
def register(model_uri: str, settings: Settings, run_id: str, candidate: str) -> registry.RegisteredModel:
    """Register the challenger (registry I/O: retried)."""
    return registry.register(model_uri, settings.model_name, run_id, {"candidate": candidate})


@task(cache_policy=NO_CACHE)
def fit_priority(prepared: retrain.Prepared, matrices: train.Matrices, settings: Settings) -> train.PriorityModel | None:
    """Fit the stacked priority model (pure computation: no retries)."""
    return retrain.train_priority(prepared, matrices, settings)


@task(cache_policy=NO_CACHE)
def fit_candidate(spec: Any, matrices: train.Matrices, settings: Settings, parent_run_id: str) -> train.FittedCandidate:
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
        futures = [fit_candidate.submit(spec, matrices, settings, run.info.run_id) for spec in retrain.candidate_specs(settings)]
        fitted = [future.result() for future in futures]
        priority_model = priority.result()
        candidates_seconds = time.perf_counter() - fitting
        ensemble = retrain.train_ensemble(fitted, matrices, settings, run.info.run_id)
        challenger = retrain.assemble_challenger(train.select_best(fitted + ([ensemble] if ensemble else [])),
                                                 prepared, matrices, settings, priority_model)
        mlflow.log_metrics(challenger.metrics)
        retrain.log_test_diagnostics(challenger, prepared.split.test)
        model_uri = registry.log_triage_model(challenger.predictor, registry.input_example(prepared.split.test))
        registered = register(model_uri, settings, run.info.run_id, challenger.candidate)
        champion = retrain.evaluate_champion(client, settings, prepared.split.test)
        decision = retrain.judge(challenger, champion, prepared.split.test, settings)
        record = retrain.log_decision(decision, registered, champion[0])
        record["champion_after"] = retrain.apply_decision(client, engine, settings, decision, registered, champion[0])
        mlflow.log_metrics(retrain.timing_metrics(prepared, matrices, candidates_seconds, ensemble, challenger,
                                                  time.perf_counter() - started))
    create_markdown_artifact(key="promotion-decision", markdown=reports.decision_markdown(record))
    return {**record, "run_id": run.info.run_id, "candidate": challenger.candidate}
