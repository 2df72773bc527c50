"""The stages of a retraining run that are not a model fit, as plain functions the flow composes.

snapshot -> split into fit and test parts (here) -> the signals' config
(``signals``) -> model inputs and shared matrix (``inputs``) -> candidates
cross-validated inside the fit part (``selection``) beside the priority model
fitted on it (``priority``) -> the winner and the heads the data has
(``heads``) fitted on the fit part, measured on the test part (here) ->
everything refitted on every labeled row and shipped with the ids it learned
from (here). Registering, the gate and the alias move are in
``triage_ml.registry.promotion``; the flow is ``triage_ml.flows.retrain``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.meta_dataset import MetaDataset

from triage_ml.monitoring import tiers
from triage_ml.registry import runs
from triage_ml.settings import HeadSettings, Settings, TrainSettings
from triage_ml.training import (
    dataset,
    diagnostics,
    fit,
    heads,
    inputs,
    metrics,
    priority,
    selection,
)
from triage_model.heads import HEADS_KEY
from triage_model.predictor import ENCODER, TIER_THRESHOLDS, TriagePredictor


@dataclass(frozen=True)
class Challenger:
    """The chosen model as fitted on the fit part, and how it did on the held-out test rows.

    The gate compares these predictions with the champion's; the model
    that ships is the same recipe refitted on every row.
    """

    predictor: TriagePredictor
    candidate: str
    metrics: dict[str, float]
    predictions: pd.DataFrame


def split_snapshot(snapshot: dataset.Snapshot, train: TrainSettings) -> dataset.Split:
    """Refuse untrainable data, then split the snapshot into the fit and test parts.

    Raises:
        TrainingDataError: too few labeled rows or a single category.
    """
    fit.require_trainable(snapshot.frame, train.min_rows)
    return dataset.split_snapshot(snapshot.frame, train.test_days, train.test_fraction, train.seed)


def lineage_dataset(part: pd.DataFrame, name: str, schema_rows: int = 1_000) -> MetaDataset:
    """What lineage records of one part of the split: name, digest of all its rows, schema.

    The schema is inferred from the first ``schema_rows`` rows (text left
    out): a pandas dataset of the whole part inferred it value by value,
    which was slow on large parts. The row count goes in the input's tags.
    """
    digest = dataset.frame_digest(part)
    columns = part.drop(columns=["body", "subject"]).head(schema_rows).reset_index(drop=True)
    sample = mlflow.data.from_pandas(columns, digest=digest)
    return MetaDataset(sample.source, name=name, digest=digest, schema=sample.schema)


def log_lineage(snapshot: dataset.Snapshot, split: dataset.Split) -> None:
    """Record on the active run which data it saw: datasets with digests, and ingest batches."""
    for context, part in (("training", split.train), ("test", split.test)):
        mlflow.log_input(
            lineage_dataset(part, f"tickets-{context}"),
            context=context,
            tags={"snapshot_digest": snapshot.digest, "rows": str(len(part))},
        )
    mlflow.log_dict(
        {"snapshot_digest": snapshot.digest, "ingest_batches": list(snapshot.batch_ids)},
        "lineage/batches.json",
    )
    mlflow.set_tags(
        {"snapshot_digest": snapshot.digest, "ingest_batch_count": str(len(snapshot.batch_ids))}
    )
    mlflow.log_params(
        {
            "split_strategy": split.strategy,
            "rows_train": len(split.train),
            "rows_test": len(split.test),
            # Counts only: where the category labels came from (LABEL_SOURCES).
            **{f"labels.{source}": count for source, count in snapshot.labels.items()},
        }
    )


@contextmanager
def candidate_run(name: str, parent_run_id: str) -> Iterator[None]:
    """A candidate's child run, open while the block runs: its duration is the candidate's CV.

    The parent is named explicitly: candidates are cross-validated in worker
    threads, where MLflow has no active run. A block that raises ends the
    child run as failed.
    """
    with mlflow.start_run(
        run_name=f"candidate-{name}",
        nested=True,
        parent_run_id=parent_run_id,
        tags={"candidate": name, **runs.run_tags()},
    ):
        yield


def log_scored(scored: selection.Scored, seconds: float) -> None:
    """On the active child run: the searched setting, fold scores and CV seconds.

    The params are the grid's keys with the chosen values, plus any configured
    overrides (``candidate_params``), never a full ``get_params()`` dump.
    """
    mlflow.log_params(scored.params)
    runs.log_metrics({**scored.figures(), "cv_seconds": seconds, "fit_seconds": seconds})


def log_candidate(scored: selection.Scored, parent_run_id: str, seconds: float) -> None:
    """Log a scored candidate as a child run of its own (the ensemble, which has no fit)."""
    with candidate_run(scored.name, parent_run_id):
        log_scored(scored, seconds)


def log_configuration(settings: Settings) -> None:
    """Put what the retraining was told to do on the active (parent) run, as params."""
    mlflow.log_params(runs.configuration_params(settings))


def log_comparable_metrics(
    chosen: selection.Scored, test_figures: dict[str, float], seconds: dict[str, float]
) -> None:
    """On the parent: the chosen candidate's CV figures, ``test_`` figures and ``fit_seconds``.

    Under the names the child runs use (``triage_ml.registry.runs``), with
    the chosen candidate and its searched setting as params.
    """
    runs.log_metrics(runs.comparable_metrics(chosen.figures(), test_figures, seconds))
    mlflow.log_params(
        {"candidate": chosen.name, **{f"candidate.{k}": v for k, v in chosen.params.items()}}
    )


def serving_config(
    settings: Settings,
    chosen: selection.Scored,
    folds: selection.Folds,
    signals: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What the served model needs besides its fitted parts: routes, tier thresholds, encoder.

    With ``signals`` (``training.signals.signal_config``) merged in; the
    heads' config joins with the heads (:func:`with_heads`). Tier thresholds
    (per class, for ``auto`` and ``suggest`` at the precisions of
    ``settings.automation``) are read off the chosen candidate's out-of-fold
    predictions: rows no model of the choice had seen. The flat review
    thresholds stay for readers of older configs. The abstention threshold
    comes later (:func:`predict_with_abstention`).
    """
    truth, predicted, confidence = selection.validated_predictions(chosen, folds)
    thresholds = fit.review_thresholds(
        [str(c) for c in folds.classes],
        truth,
        predicted,
        confidence,
        0.9,
        settings.review_threshold,
    )
    config: dict[str, Any] = {
        "routes": dict(settings.routes),
        "default_route": settings.default_route,
        "review_threshold": settings.review_threshold,
        "review_thresholds": thresholds,
        TIER_THRESHOLDS: tiers.thresholds_for(
            [str(c) for c in folds.classes], truth, predicted, confidence, settings.automation
        ),
        "candidate": chosen.name,
        "priority_levels": list(settings.priority_levels),
    }
    encoder = inputs.encoder_settings(settings.train)
    if encoder is not None:
        config[ENCODER] = encoder
    return {**dict(signals or {}), **config}


def evaluation_predictor(
    chosen: selection.Scored,
    matrices: inputs.Matrices,
    stacked: priority.PriorityModel | None,
    config: dict[str, Any],
) -> TriagePredictor:
    """The chosen candidate fitted on the fit part, with the priority model fitted there too."""
    category = fit.refit(chosen.blueprint, matrices.train, matrices.y_train)
    return fit.assemble_predictor(matrices.features, category, stacked, config)


def with_heads(
    predictor: TriagePredictor, fitted: heads.Heads, settings: HeadSettings
) -> TriagePredictor:
    """``predictor`` with the heads fitted on the same rows, and their config."""
    config = {**predictor.config, **heads.heads_config(fitted, settings)}
    return dataclasses.replace(predictor, config=config, heads=dict(fitted.models))


def predict_with_abstention(
    predictor: TriagePredictor, test: pd.DataFrame, rate: float
) -> pd.DataFrame:
    """Predict the held-out rows; with ``rate``, first set where the model abstains.

    The threshold is the confidence below which ``rate`` of these known
    tickets fall, read off the model as fitted on the fit part. Out-of-fold
    confidences, from models fitted on a fraction of the rows, were lower
    than the shipped model's, and it then abstained on about half the share
    asked for (docs/benchmarks.md). The predictions returned include the
    abstentions, so the gate judges the model as it will answer.
    """
    predictions = predictor.predict(test.reset_index(drop=True))
    threshold = fit.abstain_threshold(predictions["category_proba"].to_numpy(dtype=float), rate)
    if threshold is None:
        return predictions
    predictor.config["abstain_threshold"] = threshold
    return predictor.predict(test.reset_index(drop=True))


def abstention(predictor: TriagePredictor) -> dict[str, float]:
    """The abstention threshold the predictor was given, as config for its shipped copy."""
    threshold = predictor.config.get("abstain_threshold")
    return {} if threshold is None else {"abstain_threshold": threshold}


def trained_ticket_ids(split: dataset.Split) -> list[str]:
    """Ids of every ticket the shipped model learned from, sorted (kept in the run's lineage)."""
    return sorted(
        pd.concat([split.train["ticket_id"], split.test["ticket_id"]]).astype(str).tolist()
    )


def metrics_on_test(
    predictions: pd.DataFrame,
    test: pd.DataFrame,
    levels: tuple[str, ...],
    predict_seconds: float,
    config: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """The challenger's metrics on the test rows, with its prediction speed.

    With the model's ``config``, its heads are measured (``<head>_macro_f1`` ...)
    and its subcategories judged against the parents it learned.
    """
    facts = (config or {}).get(HEADS_KEY, {})
    figures = metrics.evaluate_predictions(
        predictions,
        test.reset_index(drop=True),
        levels,
        parents=facts.get("subcategory", {}).get("parents"),
        heads=list(facts) if config is not None else None,
    )
    figures["predict_tickets_per_second"] = len(predictions) / max(predict_seconds, 1e-9)
    return figures


def log_test_diagnostics(predictions: pd.DataFrame, test: pd.DataFrame) -> int:
    """Confusion matrices, per-class F1 and masked misclassified examples, as run artifacts.

    Returns:
        How many misclassified examples were logged.
    """
    import matplotlib.pyplot as plt

    figures = diagnostic_figures(predictions, test)
    for path, figure in figures.items():
        mlflow.log_figure(figure, path)
        plt.close(figure)
    wrong = diagnostics.misclassified_examples(test.reset_index(drop=True), predictions)
    mlflow.log_table(wrong, "evaluation/misclassified_examples.json")
    return len(wrong)


def diagnostic_figures(predictions: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """The figures of the test results by artifact path (priority where both sides have one)."""
    truth = test["category"].astype(str).tolist()
    predicted = predictions["category"].astype(str).tolist()
    figures = {
        "evaluation/category_confusion_matrix.png": diagnostics.confusion_matrix_figure(
            truth, predicted, "Category (test)"
        ),
        "evaluation/category_f1_per_class.png": diagnostics.per_class_f1_figure(
            truth, predicted, "Category F1 (test)"
        ),
    }
    labeled = test["priority"].notna().to_numpy() & predictions["priority"].notna().to_numpy()
    if labeled.any():
        figures["evaluation/priority_confusion_matrix.png"] = diagnostics.confusion_matrix_figure(
            test["priority"].to_numpy(dtype=object)[labeled].astype(str).tolist(),
            predictions["priority"].to_numpy(dtype=object)[labeled].astype(str).tolist(),
            "Priority (test)",
        )
    return figures
