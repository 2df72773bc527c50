"""monthly_retrain: snapshot, split, cross-validate, evaluate, refit on everything, gate, promote.

The flow at the bottom is the table of contents; each stage above it is a
named task that calls the plain functions of ``triage_ml.training`` and
``triage_ml.registry`` and logs one line with its figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import mlflow
import pandas as pd
from mlflow import MlflowClient
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.transactions import Transaction, get_transaction, transaction
from sqlalchemy.engine import Engine

from triage_ml import progress, registry, store
from triage_ml.errors import ConfigError
from triage_ml.flows import reports
from triage_ml.flows._common import (
    Stopwatch,
    open_store,
    progress_artifact,
    ticket_text_withheld,
    with_overrides,
)
from triage_ml.flows.promotion import reconcile_workspace
from triage_ml.registry import card, gate, lineage, owners, promotion, runs
from triage_ml.settings import Settings
from triage_ml.training import (
    candidates,
    dataset,
    fit,
    heads,
    inputs,
    priority,
    retrain,
    selection,
    signals,
)
from triage_model.heads import HEADS
from triage_model.predictor import TriagePredictor

ABORTED_WHY = (
    "the retraining failed after registering this version, before its decision was recorded;"
    " see the flow run's logs"
)
IO_RETRIES: dict[str, Any] = {"retries": 3, "retry_delay_seconds": [2, 5, 15]}
# The stages a retraining reports, in order: progress is the share of them begun.
STAGES: tuple[str, ...] = (
    "snapshot",
    "split",
    "model inputs",
    "features",
    "cross-validation",
    "choice",
    "fit for evaluation",
    "test evaluation",
    "refit on every row",
    "log model",
    "register and gate",
)
# The candidates a run's parameter may name: the UI offers them as choices.
CandidateName = Literal[(*candidates.CATEGORY_CANDIDATES, candidates.ENSEMBLE)]  # type: ignore[valid-type]


def stage(name: str) -> None:
    """Tell progress listeners that the retraining begins stage ``name`` of :data:`STAGES`."""
    progress.report(f"retrain: {name}", STAGES.index(name), len(STAGES))


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
    stage("snapshot")
    with ticket_text_withheld(settings, "snapshot"):
        snapshot = dataset.load_snapshot(engine, settings.train.use_auto_applied_labels)
    get_run_logger().info(
        "snapshot %s: %d labeled tickets from %d ingest batches",
        snapshot.digest,
        len(snapshot.frame),
        len(snapshot.batch_ids),
    )
    get_run_logger().info(
        "category labels by source: %s%s",
        ", ".join(f"{source} {count}" for source, count in snapshot.labels.items()),
        "" if settings.train.use_auto_applied_labels else " (auto-applied labels left out)",
    )
    from triage_ml.routing import route_warnings  # a scheduled run has no CLI to warn

    categories = snapshot.frame["category"].dropna().unique()
    for line in route_warnings(categories, settings.routes, settings.default_route):
        get_run_logger().warning("routes: %s", line)
    return snapshot


@task(task_run_name="split", cache_policy=NO_CACHE)
def split_snapshot(snapshot: dataset.Snapshot, settings: Settings) -> dataset.Split:
    """Split the snapshot into the fit part and the held-out test part."""
    stage("split")
    split = retrain.split_snapshot(snapshot, settings.train)
    get_run_logger().info(
        "%s split: %d rows to fit on, %d test rows held out",
        split.strategy,
        len(split.train),
        len(split.test),
    )
    return split


@task(task_run_name="link-mlflow-run", cache_policy=NO_CACHE)
def link_mlflow_run(experiment_id: str, run_id: str, settings: Settings) -> str:
    """The ``mlflow-run`` link artifact: the MLflow UI's page of this retraining's run."""
    url, where = runs.ui_url(settings.tracking_uri, experiment_id, run_id)
    create_link_artifact(
        key="mlflow-run", link=url, link_text=f"MLflow run {run_id}", description=where
    )
    get_run_logger().info("MLflow run %s: %s", run_id, url)
    return url


@task(task_run_name="log-lineage", cache_policy=NO_CACHE)
def log_lineage(snapshot: dataset.Snapshot, split: dataset.Split) -> None:
    """Record which data the run saw (datasets with digests, ingest batches)."""
    retrain.log_lineage(snapshot, split)
    get_run_logger().info("lineage: snapshot %s, two datasets logged", snapshot.digest)


@task(task_run_name="signal-config", cache_policy=NO_CACHE)
def signal_config(split: dataset.Split, settings: Settings) -> dict[str, Any]:
    """The signals' config the model will carry (languages, escalation terms, priority blend)."""
    config = signals.signal_config(settings, split.train)
    get_run_logger().info(
        "signals: languages %s, %d escalation signals, customer value quantiles %s",
        ", ".join(config.get("languages", [])),
        len(config.get("escalation_terms", {})),
        "learned" if config.get("ltv_quantiles") else "none (no customer value)",
    )
    return config


@task(task_run_name="prepare-inputs", cache_policy=NO_CACHE)
def prepare_inputs(
    split: dataset.Split, settings: Settings, laps: Laps, signal_config: dict[str, Any]
) -> inputs.Prepared:
    """Model inputs (language, sentiment, escalation signals, metadata) of the fit and test rows.

    Read with the signal config the model will carry, as the served model reads them.
    """
    stage("model inputs")
    with ticket_text_withheld(settings, "prepare-inputs"), laps.time("prepare_seconds"):
        prepared = inputs.prepare_split(split, signal_config)
    get_run_logger().info(
        "model inputs of %d fit and %d test rows in %.1f s",
        len(prepared.train),
        len(prepared.test),
        laps.seconds["prepare_seconds"],
    )
    return prepared


@task(task_run_name="featurize", cache_policy=NO_CACHE)
def featurize(prepared: inputs.Prepared, settings: Settings, laps: Laps) -> inputs.Matrices:
    """Fit the shared n-gram features on the fit rows; transform both parts."""
    stage("features")
    with ticket_text_withheld(settings, "featurize"), laps.time("fit_seconds_total") as watch:
        encoder = inputs.encoder_settings(settings.train)
        matrices = inputs.featurize(prepared.train, prepared.test, encoder=encoder)
    get_run_logger().info(
        "shared matrix: %d n-gram columns (%d word) in %.1f s",
        matrices.train.shape[1],
        priority.word_columns(matrices.features),
        watch.seconds(),
    )
    return matrices


@task(task_run_name="cross-validate-{spec.name}", cache_policy=NO_CACHE)
def cross_validate_candidate(
    spec: candidates.CandidateSpec,
    matrices: inputs.Matrices,
    folds: selection.Folds,
    settings: Settings,
    run_id: str,
) -> selection.Scored:
    """Score one candidate's settings by cross-validation, logged as a child run (no retries)."""
    # The child run is open around the fit, so its duration in MLflow is the CV's.
    with retrain.candidate_run(spec.name, run_id):
        watch = Stopwatch()
        scored = selection.cross_validate(spec, matrices.train, folds, settings.train.seed)
        seconds = watch.seconds(6)
        retrain.log_scored(scored, seconds)
    get_run_logger().info(
        "%s: CV macro-F1 %.4f ± %.4f over %d folds (%d settings), in %.1f s",
        scored.name,
        scored.mean,
        scored.standard_error,
        len(scored.fold_scores),
        scored.settings_tried,
        seconds,
    )
    return scored


@task(task_run_name="fit-priority-{part}", cache_policy=NO_CACHE)
def fit_priority(
    rows: pd.DataFrame, matrix: Any, features: Any, settings: Settings, part: str, kind: str
) -> priority.PriorityModel | None:
    """Fit the priority model of ``kind`` on ``rows`` (pure computation: no retries)."""
    watch = Stopwatch()
    fitted = priority.fit_stage(rows, matrix, features, settings.train, kind)
    if fitted is None:
        get_run_logger().info("no priority model: the labels hold fewer than two priority levels")
    else:
        get_run_logger().info(
            "priority model (%s) on %d %s rows: %d boosting rounds kept, fitted in %.1f s",
            kind,
            len(rows),
            part,
            priority.kept_rounds(fitted),
            watch.seconds(),
        )
    return fitted


@task(task_run_name="choose-and-fit-priority", cache_policy=NO_CACHE)
def choose_priority(
    prepared: inputs.Prepared, matrices: inputs.Matrices, folds: selection.Folds, settings: Settings
) -> tuple[priority.PriorityModel | None, dict[str, float]]:
    """Stack or plain baseline by CV on the category's folds, then fit it on the fit part.

    Returns the model and the CV figures (logged by the flow: this runs in a worker thread,
    where MLflow has no active run).
    """
    watch = Stopwatch()
    kind, figures = priority.choose_kind(
        prepared.train, matrices.train, matrices.features, folds, settings.train
    )
    get_run_logger().info(
        "priority: chose the %s (%s) in %.1f s",
        kind,
        ", ".join(f"{k.split('_')[2]} CV macro-F1 {v:.4f}" for k, v in figures.items())
        or "pinned by the priority_model setting",
        watch.seconds(),
    )
    fitted = fit_priority.fn(
        prepared.train, matrices.train, matrices.features, settings, "fit", kind
    )
    return fitted, figures


def cross_validate_models(
    prepared: inputs.Prepared,
    matrices: inputs.Matrices,
    settings: Settings,
    run_id: str,
    laps: Laps,
) -> tuple[selection.Folds, list[selection.Scored], priority.PriorityModel | None]:
    """The folds, every configured candidate scored on them, and the priority model of the fit part.

    Two at a time: the priority model fits while the candidates are scored.
    """
    stage("cross-validation")
    train = settings.train
    with laps.time("fit_seconds_total"), laps.time("cv_seconds"):
        folds = selection.make_folds(
            matrices.y_train, train.cv_folds, train.cv_rows, train.seed, prepared.split.time_ordered
        )
        stacked = choose_priority.submit(prepared, matrices, folds, settings)
        futures = [
            cross_validate_candidate.submit(spec, matrices, folds, settings, run_id)
            for spec in candidates.configured_specs(train)
        ]
        scored = [future.result() for future in futures]
        fitted, figures = stacked.result()
    runs.log_metrics(figures)
    if fitted is not None:
        mlflow.log_param("priority_model", fitted.kind)
    return folds, scored, fitted


@task(task_run_name="ensemble-and-choose", cache_policy=NO_CACHE)
def choose_candidate(
    scored: list[selection.Scored],
    folds: selection.Folds,
    matrices: inputs.Matrices,
    split: dataset.Split,
    settings: Settings,
    run_id: str,
) -> tuple[selection.Scored, dict[str, float]]:
    """Add the ensemble (a child run too); choose by the 1-SE rule; duel the baseline at full size.

    Returns the choice and the duel's figures (logged by the flow, whose thread has the run).
    """
    stage("choice")
    train = settings.train
    pool = list(scored)
    if candidates.ENSEMBLE in train.candidates:
        ensemble = selection.ensemble(scored, folds, train.ensemble_members)
        if ensemble is not None:
            retrain.log_candidate(ensemble, run_id, 0.0)
            pool.append(ensemble)
    chosen = selection.choose(pool, train.one_standard_error)
    best = max(pool, key=lambda s: s.mean)
    get_run_logger().info(
        "CV chose %s: macro-F1 %.4f (best %s %.4f ± %.4f%s); %s",
        chosen.name,
        chosen.mean,
        best.name,
        best.mean,
        best.standard_error,
        ", within one standard error" if chosen is not best else "",
        ", ".join(f"{s.name} {s.mean:.4f}" for s in pool),
    )
    baseline = next(s for s in scored if s.name == candidates.BASELINE)
    duel = selection.duel(
        chosen,
        baseline,
        matrices.train,
        matrices.y_train,
        split.time_ordered,
        train.duel_rows,
        train.seed,
    )
    if duel.figures:
        get_run_logger().info(
            "at full size (%d rows, newest fifth of the fit part held out): %s; %s kept",
            duel.figures["duel_rows_fitted"],
            ", ".join(f"{k.split('.')[1]} {v:.4f}" for k, v in duel.figures.items() if "." in k),
            duel.winner.name,
        )
    publish_candidates(pool, duel.winner.name)
    return duel.winner, duel.figures


def publish_candidates(pool: list[selection.Scored], chosen: str) -> None:
    """The ``candidates`` table artifact: each candidate's CV macro-F1 and standard error."""
    create_table_artifact(
        key="candidates",
        table=reports.candidates_table(pool, chosen),
        description=f"cross-validated candidates; {chosen} was chosen",
    )


@task(task_run_name="fit-for-evaluation", cache_policy=NO_CACHE)
def fit_category_for_evaluation(
    chosen: selection.Scored,
    matrices: inputs.Matrices,
    stacked: priority.PriorityModel | None,
    config: dict[str, Any],
) -> TriagePredictor:
    """The chosen candidate fitted on the fit part (pure computation)."""
    return retrain.evaluation_predictor(chosen, matrices, stacked, config)


@task(task_run_name="fit-heads-{part}", cache_policy=NO_CACHE)
def fit_heads(
    rows: pd.DataFrame,
    matrix: Any,
    features: Any,
    names: list[str],
    settings: Settings,
    part: str,
) -> heads.Heads:
    """Fit the named heads on the ``part`` rows' shared matrix (pure computation: no retries)."""
    watch = Stopwatch()
    fitted = heads.fit_heads(
        rows, matrix, features, names, settings.train, settings.heads.candidate
    )
    get_run_logger().info(
        "heads on the %s rows: %s in %.1f s",
        part,
        ", ".join(
            f"{n} ({len(f['classes'])} classes, {f['rows']} rows)" for n, f in fitted.facts.items()
        )
        or "none (no subcategory, type or team labels enough to learn)",
        watch.seconds(),
    )
    return fitted


def fit_for_evaluation(
    chosen: selection.Scored,
    prepared: inputs.Prepared,
    matrices: inputs.Matrices,
    stacked: priority.PriorityModel | None,
    config: dict[str, Any],
    settings: Settings,
    laps: Laps,
) -> TriagePredictor:
    """The chosen candidate and the heads the data has, fitted on the fit part (two at a time)."""
    stage("fit for evaluation")
    with laps.time("fit_seconds_total") as watch:
        names = heads.trainable_heads(prepared.train, settings.train.min_rows)
        fitted = fit_heads.submit(
            prepared.train, matrices.train, matrices.features, names, settings, "fit"
        )
        category = fit_category_for_evaluation.submit(chosen, matrices, stacked, config)
        predictor = retrain.with_heads(category.result(), fitted.result(), settings.heads)
    get_run_logger().info(
        "fitted %s and %d heads on %d rows in %.1f s",
        chosen.name,
        len(names),
        matrices.train.shape[0],
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
    """Predict the held-out test rows (timed) and log the challenger's test metrics on the run.

    With ``abstain_rate`` set, the abstention threshold is read off these predictions first.
    """
    stage("test evaluation")
    with ticket_text_withheld(settings, "evaluate-on-test"), laps.time("predict_seconds"):
        predictions = retrain.predict_with_abstention(predictor, test, settings.train.abstain_rate)
    figures = retrain.metrics_on_test(
        predictions,
        test,
        settings.priority_levels,
        laps.seconds["predict_seconds"],
        predictor.config,
    )
    runs.log_metrics(figures)
    lineage.log_held_out_answers(test["ticket_id"], predictions)
    get_run_logger().info(
        "test (%d rows): category macro-F1 %.4f, priority macro-F1 %s, %.0f tickets/s",
        len(test),
        figures["category_macro_f1"],
        f"{figures['priority_macro_f1']:.4f}" if "priority_macro_f1" in figures else "n/a",
        figures["predict_tickets_per_second"],
    )
    measured = [h for h in HEADS if f"{h}_macro_f1" in figures]
    if measured:
        get_run_logger().info(
            "test heads: %s",
            ", ".join(f"{h} macro-F1 {figures[f'{h}_macro_f1']:.4f}" for h in measured),
        )
    return retrain.Challenger(predictor, candidate, figures, predictions)


@task(task_run_name="refit-category-on-everything", cache_policy=NO_CACHE)
def refit_category(chosen: selection.Scored, rows: pd.DataFrame, matrix: Any) -> Any:
    """The chosen candidate refitted on every labeled row (pure computation)."""
    return fit.refit(chosen.blueprint, matrix, inputs.labels(rows))


def refit_on_everything(
    chosen: selection.Scored,
    evaluated: priority.PriorityModel | None,
    prepared: inputs.Prepared,
    matrices: inputs.Matrices,
    config: dict[str, Any],
    settings: Settings,
    laps: Laps,
    head_names: list[str] | None = None,
) -> TriagePredictor:
    """The shipped model: features, category, priority models and heads refitted on every row.

    The priority model is of the kind chosen on the fit part (``evaluated``);
    the heads are those evaluated there (``head_names``).
    """
    stage("refit on every row")
    with laps.time("fit_seconds_total"), laps.time("refit_seconds") as watch:
        rows, features, matrix = inputs.everything(prepared, matrices)
        kind = priority.PLAIN if evaluated is None else evaluated.kind
        stacked = fit_priority.submit(rows, matrix, features, settings, "labeled", kind)
        category = refit_category.submit(chosen, rows, matrix)
        fitted = fit_heads.submit(rows, matrix, features, head_names or [], settings, "labeled")
        config = {**config, **heads.heads_config(fitted.result(), settings.heads)}
        shipped = fit.assemble_predictor(
            features, category.result(), stacked.result(), config, fitted.result()
        )
    get_run_logger().info(
        "refitted %s, the priority model and %d heads on all %d labeled rows in %.1f s",
        chosen.name,
        len(shipped.heads),
        len(rows),
        watch.seconds(),
    )
    return shipped


@task(task_run_name="diagnostics", cache_policy=NO_CACHE)
def log_diagnostics(challenger: retrain.Challenger, test: pd.DataFrame, settings: Settings) -> None:
    """Confusion matrices, per-class F1 and misclassified examples, as run artifacts."""
    with ticket_text_withheld(settings, "diagnostics"):
        wrong = retrain.log_test_diagnostics(challenger.predictions, test)
    get_run_logger().info("diagnostics: figures and %d misclassified examples logged", wrong)


@task(task_run_name="log-model", cache_policy=NO_CACHE)
def log_model(shipped: TriagePredictor, split: dataset.Split, candidate: str) -> str:
    """Log the shipped model on the run, with the ids it learned from; returns its URI."""
    stage("log model")
    watch = Stopwatch()
    model_uri = registry.log_triage_model(shipped, registry.input_example(split.test))
    ids = retrain.trained_ticket_ids(split)
    lineage.log_trained_ids(ids)
    get_run_logger().info(
        "logged %s as %s (learned from %d tickets) in %.1f s",
        candidate,
        model_uri,
        len(ids),
        watch.seconds(),
    )
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
    """Score the current champion on the test rows it never trained on."""
    champion = promotion.evaluate_champion(client, settings, test)
    if champion.version is None:
        get_run_logger().info("no champion yet: nothing to compare with")
    elif champion.metrics is None:
        get_run_logger().info(
            "champion version %s trained on every test row: nothing to compare on",
            champion.version,
        )
    else:
        assert champion.unseen is not None
        get_run_logger().info(
            "champion version %s on the %d test rows it never trained on: category macro-F1 %.4f",
            champion.version,
            int(champion.unseen.sum()),
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
    get_transaction().set("shadowed", promotion.outcome(final) == "shadow")
    get_run_logger().info(
        "version %s %s; champion is version %s",
        registered.version,
        promotion.outcome(final),
        registered.version if final.promote else champion_version,
    )
    return final


@apply_decision.on_rollback
def _revert_promotion(txn: Transaction) -> None:
    """The transaction failed after the alias moved: put the champion (or challenger) back."""
    settings, version, moved_from = txn.get("undo")
    if moved_from is not None:
        with store.opened(settings.store_url) as engine:
            promotion.revert_promotion(
                registry.client(settings), engine, settings, version, moved_from, ABORTED_WHY
            )
    if txn.get("shadowed", False):
        with store.opened(settings.store_url) as engine:
            promotion.revert_shadow(registry.client(settings), engine, settings, version)


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


@task(task_run_name="model-card", cache_policy=NO_CACHE, **IO_RETRIES)
def write_model_card(
    client: MlflowClient,
    settings: Settings,
    run_id: str,
    chosen: selection.Scored,
    challenger: retrain.Challenger,
    split: dataset.Split,
    snapshot: dataset.Snapshot,
    record: dict[str, Any],
) -> None:
    """Write the registered version's model card and tags, after the gate's decision."""
    version = record["challenger_version"]
    facts = card.card_facts(
        settings, version, run_id, chosen, challenger, split.test, snapshot, record
    )
    text = card.write_card(client, facts)
    get_run_logger().info("model card of version %s written (%d characters)", version, len(text))


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
    stage("register and gate")
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
def monthly_retrain(
    candidates: list[CandidateName] | None = None,
    cv_folds: int | None = None,
    cv_rows: int | None = None,
    priority_model: Literal["auto", "stacked", "baseline"] | None = None,
    abstain_rate: float | None = None,
    min_delta: float | None = None,
    absolute_floor: float | None = None,
    require_significance: bool | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Choose a model by cross-validation, ship it refitted on every row, promote it if it wins.

    The gate compares it with the champion on held-out test rows that
    neither learned from: the challenger as fitted on the fit part, the
    champion on the test rows outside its training lineage. Every other
    parameter overrides one workspace setting for this run; None keeps it.

    Args:
        candidates: candidate models to cross-validate (``train.candidates``), e.g.
            ``["logreg", "complement_nb", "ensemble"]``; the baseline always competes.
        cv_folds: cross-validation folds, 2 to 10 (``train.cv_folds``).
        cv_rows: at most this many fit rows in cross-validation (``train.cv_rows``).
        priority_model: ``auto`` (chosen by CV), ``stacked`` or ``baseline``.
        abstain_rate: share of test tickets to send to review, below 0.5.
        min_delta: smallest macro-F1 gain over the champion that promotes (``gate.min_delta``).
        absolute_floor: macro-F1 below which a challenger is never promoted.
        require_significance: whether the bootstrap interval of the gain must lie above 0.
        settings: the workspace; None builds them from this machine's environment.

    Returns:
        The promotion decision record, with ``champion_after``, ``run_id`` and ``candidate``.

    Raises:
        ConfigError: an override the settings refuse (unknown candidate, value out of range).
    """
    settings = with_overrides(
        settings or Settings(),
        "train",
        candidates=known_candidates(candidates),
        cv_folds=cv_folds,
        cv_rows=cv_rows,
        priority_model=priority_model,
        abstain_rate=abstain_rate,
    )
    settings = with_overrides(
        settings,
        "gate",
        min_delta=min_delta,
        absolute_floor=absolute_floor,
        require_significance=require_significance,
    )
    with progress_artifact("retrain-progress"):
        record = retrain_and_promote(settings)
        progress.report("retrain: done", len(STAGES), len(STAGES))
    return record


def known_candidates(names: list[CandidateName] | None) -> tuple[str, ...] | None:
    """The candidate names of a run's parameter, checked; None keeps the configured ones.

    Raises:
        ConfigError: the list is empty or names an unknown candidate.
    """
    if names is None:
        return None
    known = sorted([*candidates.CATEGORY_CANDIDATES, candidates.ENSEMBLE])
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        problem = f"unknown {unknown}" if unknown else "none given"
        raise ConfigError(f"candidates: {problem}; choose from {', '.join(known)}")
    return tuple(names)


def retrain_and_promote(settings: Settings) -> dict[str, Any]:
    """The retraining's table of contents (see :func:`monthly_retrain`)."""
    watch, laps = Stopwatch(), Laps()
    engine, client = open_store(settings), open_workspace(settings)
    reconcile_workspace(engine, client, settings)
    snapshot = take_snapshot(engine, settings)
    split = split_snapshot(snapshot, settings)
    # The owner tag lets a later reconciliation tell a dead run from a live one.
    owner = {owners.OWNER_TAG: owners.current_owner()}
    name, tags = registry.run_name(snapshot.frame), {**owner, **registry.run_tags()}
    with mlflow.start_run(run_name=name, tags=tags) as run:
        run_id = run.info.run_id
        retrain.log_configuration(settings)
        link_mlflow_run(run.info.experiment_id, run_id, settings)
        log_lineage(snapshot, split)
        signals_config = signal_config(split, settings)
        prepared = prepare_inputs(split, settings, laps, signals_config)
        signals_config = signals.with_trained_languages(
            signals_config, prepared.train["language"], settings.signals
        )
        matrices = featurize(prepared, settings, laps)
        folds, scored, stacked = cross_validate_models(prepared, matrices, settings, run_id, laps)
        chosen, duel = choose_candidate(scored, folds, matrices, split, settings, run_id)
        runs.log_metrics(duel)
        config = retrain.serving_config(settings, chosen, folds, signals_config)
        predictor = fit_for_evaluation(chosen, prepared, matrices, stacked, config, settings, laps)
        challenger = evaluate(predictor, chosen.name, split.test, settings, laps)
        log_diagnostics(challenger, split.test, settings)
        config = {**config, **retrain.abstention(challenger.predictor)}
        shipped = refit_on_everything(
            chosen, stacked, prepared, matrices, config, settings, laps, list(predictor.heads)
        )
        model_uri = log_model(shipped, split, chosen.name)
        record = register_and_promote(
            engine, client, settings, run_id, model_uri, challenger, split.test
        )
        write_model_card(client, settings, run_id, chosen, challenger, split, snapshot, record)
        runs.log_metrics({**laps.seconds, "flow_seconds": watch.seconds(6)})
        retrain.log_comparable_metrics(chosen, challenger.metrics, laps.seconds)
    create_markdown_artifact(key="promotion-decision", markdown=reports.decision_markdown(record))
    return {**record, "run_id": run.info.run_id, "candidate": challenger.candidate}
