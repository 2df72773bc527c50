"""The stages of a retraining run that are not a model fit, as plain functions the flow composes.

snapshot -> split (here) -> model inputs and shared matrix (``inputs``) ->
candidates (``fit``) beside the priority model (``priority``) -> ensemble
and choice -> assemble the challenger (here) -> test metrics and
diagnostics (here). Registering, the gate and the alias move are in
``triage_ml.registry.promotion``; the flow is ``triage_ml.flows.retrain``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.meta_dataset import MetaDataset

from triage_ml.settings import Settings, TrainSettings
from triage_ml.training import candidates, dataset, diagnostics, fit, inputs, metrics, priority
from triage_model.predictor import TriagePredictor


@dataclass(frozen=True)
class Challenger:
    """The assembled candidate model and how it did on the test rows."""

    predictor: TriagePredictor
    candidate: str
    metrics: dict[str, float]
    predictions: pd.DataFrame


def split_snapshot(snapshot: dataset.Snapshot, train: TrainSettings) -> dataset.Split:
    """Refuse untrainable data, then split the snapshot into training, validation and test parts.

    Raises:
        TrainingDataError: too few labeled rows or a single category.
    """
    fit.require_trainable(snapshot.frame, train.min_rows)
    return dataset.split_snapshot(
        snapshot.frame, train.test_days, train.validation_fraction, train.test_fraction, train.seed
    )


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
    for context, part in (
        ("training", split.train),
        ("validation", split.valid),
        ("test", split.test),
    ):
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
            "rows_valid": len(split.valid),
            "rows_test": len(split.test),
        }
    )


def log_candidate(fitted: fit.FittedCandidate, parent_run_id: str, fit_seconds: float) -> None:
    """Log a fitted candidate as a child run of the retraining (parameters, figures, fit time)."""
    with mlflow.start_run(
        run_name=f"candidate-{fitted.name}", nested=True, parent_run_id=parent_run_id
    ):
        mlflow.set_tag("candidate", fitted.name)
        mlflow.log_params(fitted.params)
        mlflow.log_metrics({**fitted.valid_metrics, "fit_seconds": fit_seconds})


def configured_ensemble(
    fitted: list[fit.FittedCandidate], matrices: inputs.Matrices, train: TrainSettings
) -> fit.FittedCandidate | None:
    """The soft-vote ensemble of the best candidates, when configured and there are two or more."""
    if candidates.ENSEMBLE not in train.candidates or len(fitted) < 2:
        return None
    return fit.fit_ensemble(fitted, matrices, train.ensemble_members)


def assemble_challenger(
    best: fit.FittedCandidate,
    prepared: inputs.Prepared,
    matrices: inputs.Matrices,
    settings: Settings,
    stacked: priority.PriorityModel | None,
) -> TriagePredictor:
    """Add the priority model and review thresholds to the best candidate.

    Review thresholds come from the candidate as fitted on the training part,
    scored on validation rows it has not seen. When the final rows
    (:func:`inputs.final_rows`) include the validation rows, the category
    model is then refitted on them.
    """
    config = {
        "routes": dict(settings.routes),
        "default_route": settings.default_route,
        "review_threshold": settings.review_threshold,
        "candidate": best.name,
        "priority_levels": list(settings.priority_levels),
    }
    thresholds = fit.review_thresholds(
        [str(c) for c in best.model.classes_],
        fit.validation_predictions(best),
        prepared.split.valid,
        0.9,
        settings.review_threshold,
    )
    rows, matrix = inputs.final_rows(prepared, matrices, settings.train)
    category = best.model
    if len(rows) > len(prepared.train):
        category = fit.refit(best.blueprint, matrix, inputs.labels(rows))
    return fit.assemble_predictor(
        matrices.features, category, stacked, {**config, "review_thresholds": thresholds}
    )


def metrics_on_test(
    predictions: pd.DataFrame, test: pd.DataFrame, levels: tuple[str, ...], predict_seconds: float
) -> dict[str, float]:
    """The challenger's metrics on the test rows, with its prediction speed."""
    figures = metrics.evaluate_predictions(predictions, test.reset_index(drop=True), levels)
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
