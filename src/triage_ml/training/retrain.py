"""The stages of a retraining run, as plain functions the flow composes.

snapshot -> split -> train candidates (one MLflow child run each) ->
assemble challenger -> evaluate on test. Registering, the gate and the alias
move are in ``promotion``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import mlflow
import pandas as pd
import scipy.sparse as sp
from mlflow.data.meta_dataset import MetaDataset
from threadpoolctl import threadpool_limits

from triage_ml.settings import Settings
from triage_ml.training import candidates, dataset, diagnostics, fit
from triage_model.predictor import TriagePredictor


@dataclass(frozen=True)
class Prepared:
    """A split with model inputs computed once per part."""

    split: dataset.Split
    train: pd.DataFrame
    valid: pd.DataFrame
    seconds: float = 0.0


@dataclass(frozen=True)
class Challenger:
    """The assembled candidate model and its test-set evaluation."""

    predictor: TriagePredictor
    candidate: str
    metrics: dict[str, float]
    predictions: pd.DataFrame
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0


def prepare_split(snapshot: dataset.Snapshot, settings: Settings) -> Prepared:
    """Split the snapshot and compute model inputs for training and validation."""
    cfg = settings.train
    fit.require_trainable(snapshot.frame, cfg.min_rows)
    split = dataset.split_snapshot(
        snapshot.frame, cfg.test_days, cfg.validation_fraction, cfg.test_fraction, cfg.seed
    )
    started = time.perf_counter()
    inputs = fit.prepare(split.train), fit.prepare(split.valid)
    return Prepared(split, *inputs, time.perf_counter() - started)


def lineage_dataset(part: pd.DataFrame, name: str, schema_rows: int = 1_000) -> MetaDataset:
    """What lineage records of one part of the split: its name, the digest of all its rows, its schema.

    The schema is inferred from the first ``schema_rows`` rows (text left
    out): a pandas dataset of the whole part inferred it value by value,
    ~4 s per retraining at 50,000 tickets. The row count goes in the input's tags.
    """
    digest = dataset.frame_digest(part)
    columns = part.drop(columns=["body", "subject"]).head(schema_rows).reset_index(drop=True)
    sample = mlflow.data.from_pandas(columns, digest=digest)
    return MetaDataset(sample.source, name=name, digest=digest, schema=sample.schema)


def log_lineage(snapshot: dataset.Snapshot, prepared: Prepared) -> None:
    """Record which data the run saw: datasets with digests, and ingest batches."""
    for context, part in (
        ("training", prepared.split.train),
        ("validation", prepared.split.valid),
        ("test", prepared.split.test),
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
            "split_strategy": prepared.split.strategy,
            "rows_train": len(prepared.split.train),
            "rows_valid": len(prepared.split.valid),
            "rows_test": len(prepared.split.test),
        }
    )


def single_blas_thread() -> threadpool_limits:
    """Fit with one BLAS thread.

    The linear models' BLAS calls are small; with two OpenBLAS threads on a
    2-core machine shared with the Prefect server they ran 2-20x slower
    (measured: priority stack 53 s vs 21 s).
    """
    return threadpool_limits(limits=1, user_api="blas")


def featurize(prepared: Prepared) -> fit.Matrices:
    """The shared n-gram matrix of the training and validation rows."""
    return fit.featurize(prepared.train, prepared.valid)


def candidate_specs(settings: Settings) -> list[candidates.CandidateSpec]:
    """The configured single-model candidates, with their search grids unless search is off."""
    cfg = settings.train
    return candidates.category_specs(
        cfg.candidates, cfg.candidate_params, None if cfg.search else {}
    )


def _log_candidate(fitted: fit.FittedCandidate, parent_run_id: str) -> None:
    with mlflow.start_run(
        run_name=f"candidate-{fitted.name}", nested=True, parent_run_id=parent_run_id
    ):
        mlflow.set_tag("candidate", fitted.name)
        mlflow.log_params(fitted.params)
        mlflow.log_metrics({**fitted.valid_metrics, "fit_seconds": fitted.fit_seconds})


def train_candidate(
    spec: candidates.CandidateSpec, matrices: fit.Matrices, settings: Settings, parent_run_id: str
) -> fit.FittedCandidate:
    """Search and fit one category candidate; log it as a child run of the retraining."""
    with single_blas_thread():
        fitted = fit.fit_candidate(spec, matrices, settings.train.seed)
    _log_candidate(fitted, parent_run_id)
    return fitted


def train_ensemble(
    fitted: list[fit.FittedCandidate],
    matrices: fit.Matrices,
    settings: Settings,
    parent_run_id: str,
) -> fit.FittedCandidate | None:
    """The soft-vote ensemble of the best candidates, when configured and there are two or more."""
    if candidates.ENSEMBLE not in settings.train.candidates or len(fitted) < 2:
        return None
    ensemble = fit.fit_ensemble(fitted, matrices, settings.train.ensemble_members)
    _log_candidate(ensemble, parent_run_id)
    return ensemble


def final_rows(
    prepared: Prepared, matrices: fit.Matrices, settings: Settings
) -> tuple[pd.DataFrame, Any]:
    """The rows the challenger's final models learn from, and their shared matrix.

    With ``refit_on_validation`` and at most ``refit_max_rows`` training rows,
    training and validation rows together (the choice of candidate is made;
    on small data the rows are worth more as training data). Above that size
    the refit costs tens of seconds for a few thousand extra rows, so the
    training rows alone.
    """
    if settings.train.refit_on_validation and len(prepared.train) <= settings.train.refit_max_rows:
        rows = pd.concat([prepared.train, prepared.valid], ignore_index=True)
        return rows, sp.vstack([matrices.train, matrices.valid], format="csr")
    return prepared.train, matrices.train


def train_priority(
    prepared: Prepared, matrices: fit.Matrices, settings: Settings
) -> fit.PriorityModel | None:
    """The stacked priority model, fitted on the final rows.

    It needs no category candidate (it has a category model of its own), so
    it can fit while the candidates do.
    """
    rows, matrix = final_rows(prepared, matrices, settings)
    with single_blas_thread():
        return fit.fit_priority(
            matrix, rows, settings.train.seed, fit.word_columns(matrices.features)
        )


def assemble_challenger(
    best: fit.FittedCandidate,
    prepared: Prepared,
    matrices: fit.Matrices,
    settings: Settings,
    priority: fit.PriorityModel | None,
) -> Challenger:
    """Add the priority model and review thresholds to the best candidate, then test it.

    Review thresholds come from the candidate as fitted on the training part,
    scored on validation rows it has not seen. When the final rows
    (:func:`final_rows`) include the validation rows, the category model is
    then refitted on them.
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
    started = time.perf_counter()
    rows, matrix = final_rows(prepared, matrices, settings)
    category = best.model
    if len(rows) > len(prepared.train):
        with single_blas_thread():
            category = fit.refit(best.blueprint, matrix, fit.labels(rows))
    fit_seconds = time.perf_counter() - started
    predictor = fit.assemble_predictor(
        matrices.features, category, priority, {**config, "review_thresholds": thresholds}
    )
    started = time.perf_counter()
    test_metrics, predictions = fit.evaluate(
        predictor, prepared.split.test, settings.priority_levels
    )
    predict_seconds = time.perf_counter() - started
    test_metrics["predict_tickets_per_second"] = len(predictions) / max(predict_seconds, 1e-9)
    return Challenger(predictor, best.name, test_metrics, predictions, fit_seconds, predict_seconds)


def log_test_diagnostics(challenger: Challenger, test: pd.DataFrame) -> None:
    """Confusion matrices, per-class F1 and masked misclassified examples, as run artifacts."""
    import matplotlib.pyplot as plt

    truth = test["category"].astype(str).tolist()
    predicted = challenger.predictions["category"].astype(str).tolist()
    figures = {
        "evaluation/category_confusion_matrix.png": diagnostics.confusion_matrix_figure(
            truth, predicted, "Category (test)"
        ),
        "evaluation/category_f1_per_class.png": diagnostics.per_class_f1_figure(
            truth, predicted, "Category F1 (test)"
        ),
    }
    labeled = (
        test["priority"].notna().to_numpy() & challenger.predictions["priority"].notna().to_numpy()
    )
    if labeled.any():
        figures["evaluation/priority_confusion_matrix.png"] = diagnostics.confusion_matrix_figure(
            test["priority"].to_numpy(dtype=object)[labeled].astype(str).tolist(),
            challenger.predictions["priority"].to_numpy(dtype=object)[labeled].astype(str).tolist(),
            "Priority (test)",
        )
    for path, figure in figures.items():
        mlflow.log_figure(figure, path)
        plt.close(figure)
    mlflow.log_table(
        diagnostics.misclassified_examples(test.reset_index(drop=True), challenger.predictions),
        "evaluation/misclassified_examples.json",
    )


def timing_metrics(
    prepared: Prepared,
    matrices: fit.Matrices,
    candidates_seconds: float,
    ensemble: fit.FittedCandidate | None,
    challenger: Challenger,
    flow_seconds: float,
) -> dict[str, float]:
    """Where a retraining's time went; ``candidates_seconds`` is the wall time of the overlapping candidate and priority fits."""
    fitting = (
        matrices.seconds
        + candidates_seconds
        + (ensemble.fit_seconds if ensemble else 0.0)
        + challenger.fit_seconds
    )
    return {
        "fit_seconds_total": fitting,
        "predict_seconds": challenger.predict_seconds,
        "prepare_seconds": prepared.seconds,
        "flow_seconds": flow_seconds,
    }
