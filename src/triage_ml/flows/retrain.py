"""monthly_retrain: snapshot, split, fit candidates, assemble, evaluate, register, gate, promote.

The flow at the bottom is the table of contents; each stage above it is a
named task that calls the plain functions of ``triage_ml.training`` and
``triage_ml.registry`` and logs one line with its figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.transactions import Transaction, get_transaction, transaction
from sqlalchemy.engine import Engine

from triage_ml import registry, store
from triage_ml.flows import reports
from triage_ml.flows._common import Stopwatch, open_store, ticket_text_withheld
from triage_ml.flows.promotion import reconcile_workspace
from triage_ml.registry import gate, owners, promotion
from triage_ml.settings import Settings
from triage_ml.training import candidates, dataset, fit, inputs, priority, retrain
from triage_model.predictor import TriagePredictor

ABORTED_WHY = (
    "the retraining failed after registering this version, before its decision was recorded;"
    " see the flow run's logs"
)
IO_RETRIES: dict[str, Any] = {"retries": 3, "retry_delay_seconds": [2, 5, 15]}


class Laps:
    """Wall seconds of the run's timed stages, summed by metric name; the flow logs them on its run.

    An object rather than a dict, so that Prefect hands the tasks the flow's
    own instance.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def time(self, name: str) -> Iterator[Stopwatch]:
        """Add the wall time of the block to ``name``."""
        watch = Stopwatch()
        try:
            yield watch
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + watch.seconds(6)


@task(task_run_name="open-mlflow", cache_policy=NO_CACHE, **IO_RETRIES)
def open_workspace(settings: Settings) -> MlflowClient:
    """Point MLflow at the workspace (tracking server I/O: retried)."""
    return registry.use_workspace(settings)


@task(task_run_name="snapshot", cache_policy=NO_CACHE, **IO_RETRIES)
def take_snapshot(engine: Engine, settings: Settings) -> dataset.Snapshot:
    """Read labeled tickets with effective labels (database I/O: retried)."""
    with ticket_text_withheld(settings, "snapshot"):
        snapshot = dataset.load_snapshot(engine)
    get_run_logger().info(
        "snapshot %s: %d labeled tickets from %d ingest batches",
        snapshot.digest,
        len(snapshot.frame),
        len(snapshot.batch_ids),
    )
    return snapshot


@task(task_run_name="split", cache_policy=NO_CACHE)
def split_snapshot(snapshot: dataset.Snapshot, settings: Settings) -> dataset.Split:
    """Split the snapshot into training, validation and test rows."""
    split = retrain.split_snapshot(snapshot, settings.train)
    get_run_logger().info(
        "%s split: %d training, %d validation, %d test rows",
        split.strategy,
        len(split.train),
        len(split.valid),
        len(split.test),
    )
    return split


@task(task_run_name="log-lineage", cache_policy=NO_CACHE)
def log_lineage(snapshot: dataset.Snapshot, split: dataset.Split) -> None:
    """Record which data the run saw (datasets with digests, ingest batches)."""
    retrain.log_lineage(snapshot, split)
    get_run_logger().info("lineage: snapshot %s, three datasets logged", snapshot.digest)


@task(task_run_name="prepare-inputs", cache_policy=NO_CACHE)
def prepare_inputs(split: dataset.Split, settings: Settings, laps: Laps) -> inputs.Prepared:
    """Model inputs (sentiment, escalation signals, metadata) of training and validation rows."""
    with ticket_text_withheld(settings, "prepare-inputs"), laps.time("prepare_seconds"):
        prepared = inputs.prepare_split(split)
    get_run_logger().info(
        "model inputs of %d training and %d validation rows in %.1f s",
        len(prepared.train),
        len(prepared.valid),
        laps.seconds["prepare_seconds"],
    )
    return prepared


@task(task_run_name="featurize", cache_policy=NO_CACHE)
def featurize(prepared: inputs.Prepared, settings: Settings, laps: Laps) -> inputs.Matrices:
    """Fit the shared n-gram features on the training rows; transform both parts."""
    with ticket_text_withheld(settings, "featurize"), laps.time("fit_seconds_total") as watch:
        matrices = inputs.featurize(prepared.train, prepared.valid)
    get_run_logger().info(
        "shared matrix: %d n-gram columns (%d word) in %.1f s",
        matrices.train.shape[1],
        priority.word_columns(matrices.features),
        watch.seconds(),
    )
    return matrices


@task(task_run_name="fit-{spec.name}", cache_policy=NO_CACHE)
def fit_and_log_candidate(
    spec: candidates.CandidateSpec, matrices: inputs.Matrices, settings: Settings, run_id: str
) -> fit.FittedCandidate:
    """Search and fit one category candidate, logged as a child run (computation: no retries)."""
    watch = Stopwatch()
    fitted = fit.fit_candidate(spec, matrices, settings.train.seed)
    seconds = watch.seconds(6)
    retrain.log_candidate(fitted, run_id, seconds)
    get_run_logger().info(
        "%s: validation macro-F1 %.4f (%d settings searched), fitted in %.1f s",
        fitted.name,
        fitted.valid_metrics["valid_category_macro_f1"],
        fitted.valid_metrics["search_settings"],
        seconds,
    )
    return fitted


@task(task_run_name="fit-priority", cache_policy=NO_CACHE)
def fit_priority(
    prepared: inputs.Prepared, matrices: inputs.Matrices, settings: Settings
) -> priority.PriorityModel | None:
    """Fit the stacked priority model on the final rows (pure computation: no retries)."""
    watch = Stopwatch()
    stacked = priority.fit_on_final_rows(prepared, matrices, settings.train)
    if stacked is None:
        get_run_logger().info("no priority model: the labels hold fewer than two priority levels")
    else:
        get_run_logger().info(
            "priority model: %d boosting rounds kept, fitted in %.1f s",
            priority.kept_rounds(stacked),
            watch.seconds(),
        )
    return stacked


def fit_models(
    prepared: inputs.Prepared,
    matrices: inputs.Matrices,
    settings: Settings,
    run_id: str,
    laps: Laps,
) -> tuple[list[fit.FittedCandidate], priority.PriorityModel | None]:
    """The priority model and every configured candidate, fitted two at a time."""
    with laps.time("fit_seconds_total"):
        stacked = fit_priority.submit(prepared, matrices, settings)
        futures = [
            fit_and_log_candidate.submit(spec, matrices, settings, run_id)
            for spec in candidates.configured_specs(settings.train)
        ]
        return [future.result() for future in futures], stacked.result()


@task(task_run_name="ensemble-and-choose", cache_policy=NO_CACHE)
def choose_candidate(
    fitted: list[fit.FittedCandidate],
    matrices: inputs.Matrices,
    settings: Settings,
    run_id: str,
    laps: Laps,
) -> fit.FittedCandidate:
    """Add the soft-vote ensemble when configured (a child run too); pick the best on validation."""
    with laps.time("fit_seconds_total") as watch:
        ensemble = retrain.configured_ensemble(fitted, matrices, settings.train)
    pool = fitted if ensemble is None else [*fitted, ensemble]
    if ensemble is not None:
        retrain.log_candidate(ensemble, run_id, watch.seconds(6))
    best = fit.select_best(pool)
    get_run_logger().info(
        "chose %s: validation macro-F1 %.4f (%s)",
        best.name,
        best.valid_metrics["valid_category_macro_f1"],
        ", ".join(f"{c.name} {c.valid_metrics['valid_category_macro_f1']:.4f}" for c in pool),
    )
    return best


@task(task_run_name="refit-and-assemble", cache_policy=NO_CACHE)
def assemble(
    best: fit.FittedCandidate,
    prepared: inputs.Prepared,
    matrices: inputs.Matrices,
    stacked: priority.PriorityModel | None,
    settings: Settings,
    laps: Laps,
) -> TriagePredictor:
    """Review thresholds, the refit on the final rows, and the predictor (pure computation)."""
    with laps.time("fit_seconds_total") as watch:
        predictor = retrain.assemble_challenger(best, prepared, matrices, settings, stacked)
    get_run_logger().info(
        "assembled %s (%s), %s priority model, in %.1f s",
        best.name,
        "kept as fitted" if predictor.category is best.model else "refitted with validation rows",
        "with a" if stacked is not None else "no",
        watch.seconds(),
    )
    return predictor


@task(task_run_name="evaluate-on-test", cache_policy=NO_CACHE)
def evaluate(
    predictor: TriagePredictor,
    candidate: str,
    test: pd.DataFrame,
    settings: Settings,
    laps: Laps,
) -> retrain.Challenger:
    """Predict the test rows (timed) and log the challenger's test metrics on the run."""
    with ticket_text_withheld(settings, "evaluate-on-test"), laps.time("predict_seconds"):
        predictions = predictor.predict(test.reset_index(drop=True))
    figures = retrain.metrics_on_test(
        predictions, test, settings.priority_levels, laps.seconds["predict_seconds"]
    )
    mlflow.log_metrics(figures)
    get_run_logger().info(
        "test (%d rows): category macro-F1 %.4f, priority macro-F1 %s, %.0f tickets/s",
        len(test),
        figures["category_macro_f1"],
        f"{figures['priority_macro_f1']:.4f}" if "priority_macro_f1" in figures else "n/a",
        figures["predict_tickets_per_second"],
    )
    return retrain.Challenger(predictor, candidate, figures, predictions)


@task(task_run_name="diagnostics", cache_policy=NO_CACHE)
def log_diagnostics(challenger: retrain.Challenger, test: pd.DataFrame, settings: Settings) -> None:
    """Confusion matrices, per-class F1 and misclassified examples, as run artifacts."""
    with ticket_text_withheld(settings, "diagnostics"):
        wrong = retrain.log_test_diagnostics(challenger.predictions, test)
    get_run_logger().info("diagnostics: figures and %d misclassified examples logged", wrong)


@task(task_run_name="log-model", cache_policy=NO_CACHE)
def log_model(challenger: retrain.Challenger, test: pd.DataFrame) -> str:
    """Log the challenger as an MLflow model on the run; returns its URI."""
    model_uri = registry.log_triage_model(challenger.predictor, registry.input_example(test))
    get_run_logger().info("logged %s as %s", challenger.candidate, model_uri)
    return model_uri


@task(task_run_name="register", cache_policy=NO_CACHE, **IO_RETRIES)
def register(
    model_uri: str, settings: Settings, run_id: str, candidate: str
) -> registry.RegisteredModel:
    """Register the challenger (registry I/O: retried)."""
    registered = registry.register(model_uri, settings.model_name, run_id, {"candidate": candidate})
    get_transaction().set("undo", (settings, registered))
    get_run_logger().info("registered %s version %s", registered.name, registered.version)
    promotion.crash_point(promotion.AFTER_REGISTER)
    return registered


@register.on_rollback
def _abort_registration(txn: Transaction) -> None:
    """The transaction failed after registering: the version stays, tagged and audited aborted."""
    settings, registered = txn.get("undo")
    with store.opened(settings.store_url) as engine:
        promotion.record_aborted(
            registry.client(settings), engine, settings, registered, ABORTED_WHY
        )


@task(task_run_name="evaluate-champion", cache_policy=NO_CACHE)
def evaluate_champion(
    client: MlflowClient, settings: Settings, test: pd.DataFrame
) -> promotion.ChampionOnTest:
    """Score the current champion on the same test rows."""
    champion = promotion.evaluate_champion(client, settings, test)
    if champion.metrics is None:
        get_run_logger().info("no champion yet: nothing to compare with")
    else:
        get_run_logger().info(
            "champion version %s on the test rows: category macro-F1 %.4f",
            champion.version,
            champion.metrics["category_macro_f1"],
        )
    return champion


@task(task_run_name="gate", cache_policy=NO_CACHE)
def judge(
    challenger: retrain.Challenger,
    champion: promotion.ChampionOnTest,
    test: pd.DataFrame,
    settings: Settings,
) -> gate.Decision:
    """The gate's verdict on challenger and champion predictions of the same rows."""
    with ticket_text_withheld(settings, "gate"):
        decision = promotion.judge(
            challenger.metrics, challenger.predictions, champion, test, settings
        )
    get_run_logger().info("gate: %s", decision.reason)
    return decision


@task(task_run_name="promote", cache_policy=NO_CACHE)
def apply_decision(
    engine: Engine,
    client: MlflowClient,
    settings: Settings,
    decision: gate.Decision,
    registered: registry.RegisteredModel,
    champion_version: str | None,
) -> gate.Decision:
    """Guarded alias move (or rejection), audited; a failed move is undone, never retried."""
    final, moved_from = promotion.apply_decision(
        client, engine, settings, decision, registered, champion_version
    )
    get_transaction().set("undo", (settings, registered.version, moved_from))
    get_run_logger().info(
        "version %s %s; champion is version %s",
        registered.version,
        "promoted" if final.promote else "not promoted",
        registered.version if final.promote else champion_version,
    )
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


@task(task_run_name="log-decision", cache_policy=NO_CACHE)
def log_decision(
    decision: gate.Decision,
    registered: registry.RegisteredModel,
    champion_version: str | None,
    settings: Settings,
) -> dict[str, Any]:
    """Put the decision on the retraining run (tags, champion metrics, JSON of every threshold)."""
    record = promotion.log_decision(decision, registered, champion_version, settings)
    get_run_logger().info("decision recorded on the run: %s", record["reason"])
    return record


def register_and_promote(
    engine: Engine,
    client: MlflowClient,
    settings: Settings,
    run_id: str,
    model_uri: str,
    challenger: retrain.Challenger,
    test: pd.DataFrame,
) -> dict[str, Any]:
    """register -> gate -> alias, all or nothing; returns the decision record.

    The rollback hooks above tag an orphaned version and put a moved alias back.
    """
    with transaction():
        registered = register(model_uri, settings, run_id, challenger.candidate)
        champion = evaluate_champion(client, settings, test)
        decision = judge(challenger, champion, test, settings)
        decision = apply_decision(engine, client, settings, decision, registered, champion.version)
        record = log_decision(decision, registered, champion.version, settings)
    record["champion_after"] = registered.version if decision.promote else champion.version
    return record


# Two models fit at once (the priority model and the candidates), one per core
# of the machines this targets: the solvers spend their time in numpy/scipy
# code that releases the GIL.
@flow(name="monthly-retrain", task_runner=ThreadPoolTaskRunner(max_workers=2))
def monthly_retrain(settings: Settings | None = None) -> dict[str, Any]:
    """Retrain every candidate, register the best, promote it only if it beats the champion.

    Args:
        settings: the workspace; None builds them from this machine's environment.

    Returns:
        The promotion decision record, with ``champion_after``, ``run_id`` and ``candidate``.
    """
    watch, laps, settings = Stopwatch(), Laps(), settings or Settings()
    engine, client = open_store(settings), open_workspace(settings)
    reconcile_workspace(engine, client, settings)
    snapshot = take_snapshot(engine, settings)
    split = split_snapshot(snapshot, settings)
    # The owner tag lets a later reconciliation tell a dead run from a live one.
    owner = {owners.OWNER_TAG: owners.current_owner()}
    with mlflow.start_run(run_name="monthly-retrain", tags=owner) as run:
        log_lineage(snapshot, split)
        prepared = prepare_inputs(split, settings, laps)
        matrices = featurize(prepared, settings, laps)
        fitted, stacked = fit_models(prepared, matrices, settings, run.info.run_id, laps)
        best = choose_candidate(fitted, matrices, settings, run.info.run_id, laps)
        predictor = assemble(best, prepared, matrices, stacked, settings, laps)
        challenger = evaluate(predictor, best.name, split.test, settings, laps)
        log_diagnostics(challenger, split.test, settings)
        model_uri = log_model(challenger, split.test)
        record = register_and_promote(
            engine, client, settings, run.info.run_id, model_uri, challenger, split.test
        )
        mlflow.log_metrics({**laps.seconds, "flow_seconds": watch.seconds(6)})
    create_markdown_artifact(key="promotion-decision", markdown=reports.decision_markdown(record))
    return {**record, "run_id": run.info.run_id, "candidate": challenger.candidate}
