"""Fit the chosen category model, set its review and abstention thresholds, assemble predictors.

The choice itself is made by cross-validation inside the fit part
(``selection``). The winner is then fitted twice: on the fit part, to be
measured on the held-out test part (the figures the gate and the model's
run report), and on every labeled row, to be shipped. What the models learn
from is in ``inputs``; the stacked priority model is in ``priority``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from triage_ml.errors import TrainingDataError
from triage_ml.settings import Settings
from triage_ml.training import candidates, heads, inputs, metrics, priority
from triage_model.predictor import PRIORITY_STARTS_FROM_TEXT, TriagePredictor


def require_trainable(frame: pd.DataFrame, min_rows: int) -> None:
    """Refuse data that cannot train a classifier, with a one-line reason.

    Raises:
        TrainingDataError: too few labeled rows or a single category.
    """
    if len(frame) < min_rows:
        raise TrainingDataError(
            f"only {len(frame)} labeled tickets in the store;"
            f" at least {min_rows} are needed to train"
        )
    classes = frame["category"].dropna().unique()
    if len(classes) < 2:
        raise TrainingDataError(
            f"the labeled tickets have a single category ({', '.join(map(str, classes))});"
            " a classifier needs at least two"
        )


def refit(blueprint: Any, matrix: Any, y: np.ndarray) -> Any:
    """A copy of ``blueprint`` (same hyperparameters) fitted on ``matrix`` (one BLAS thread)."""
    with candidates.single_blas_thread():
        return clone(blueprint).fit(matrix, y)


def assemble_predictor(
    features: Any,
    category: Any,
    stacked: priority.PriorityModel | None,
    config: dict[str, Any],
    fitted_heads: heads.Heads | None = None,
) -> TriagePredictor:
    """Predictor of the shared features, a category model, the priority stack and heads (if fitted).

    ``config`` should already hold the heads' config (:func:`heads.heads_config`).
    """
    models = {} if fitted_heads is None else dict(fitted_heads.models)
    if stacked is None:
        return TriagePredictor(features, category, config=config, heads=models)
    if stacked.model is None:  # the plain priority baseline
        return TriagePredictor(
            features, category, priority_text=stacked.text, config=config, heads=models
        )
    return TriagePredictor(
        features,
        category,
        stacked.model,
        stacked.text,
        stacked.category,
        {**config, PRIORITY_STARTS_FROM_TEXT: True},
        heads=models,
    )


def fit_predictor(
    rows: pd.DataFrame,
    spec: candidates.CandidateSpec,
    config: dict[str, Any],
    seed: int,
    feature_params: Mapping[str, Any] | None = None,
    priority_params: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> TriagePredictor:
    """One candidate (its configured setting, no search) plus the priority model (tests, tools).

    ``rows`` are model inputs with labels (``inputs.prepare``). With ``settings``,
    the heads ``rows`` can train are fitted too (``train.min_rows``,
    ``heads.min_confidence``), on the same matrix.
    """
    features = candidates.text_features(feature_params or {})
    matrix = features.fit_transform(rows)
    category = refit(spec.build(spec.params, seed), matrix, inputs.labels(rows))
    with candidates.single_blas_thread():
        stacked = priority.fit_priority(
            matrix, rows, seed, priority.word_columns(features), priority_params
        )
    config = {**config, "candidate": spec.name}
    fitted = None
    if settings is not None:
        names = heads.trainable_heads(rows, settings.train.min_rows)
        fitted = heads.fit_heads(
            rows, matrix, features, names, settings.train, settings.heads.candidate
        )
        config.update(heads.heads_config(fitted, settings.heads))
    return assemble_predictor(features, category, stacked, config, fitted)


def review_thresholds(
    classes: Sequence[str],
    truth: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    target_precision: float,
    default: float,
) -> dict[str, float]:
    """Per-category confidence below which a prediction goes to a human.

    ``predicted`` and ``confidence`` are out-of-fold predictions of rows
    labeled ``truth``. For each of ``classes`` the threshold is the lowest
    confidence at which their precision reaches ``target_precision``;
    categories with fewer than 20 such predictions keep ``default``.
    """
    out: dict[str, float] = {}
    for category in classes:
        mask = predicted == category
        if mask.sum() < 20:
            out[category] = default
            continue
        conf = confidence[mask]
        correct = truth[mask] == category
        order = np.argsort(-conf)
        precision = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
        ok = np.where(precision >= target_precision)[0]
        out[category] = float(conf[order][ok.max()]) if len(ok) else 1.0
    return out


def abstain_threshold(confidence: np.ndarray, rate: float) -> float | None:
    """The top probability below which the model abstains on a ``rate`` share of known tickets.

    Read off out-of-fold confidences of labeled rows: a ticket the model
    would be this unsure of, were it one of its own classes, is more likely
    one of none. None (never abstain) when ``rate`` is 0.
    """
    if rate <= 0 or len(confidence) == 0:
        return None
    return float(np.quantile(confidence, rate))


def evaluate(
    predictor: Any, frame: pd.DataFrame, levels: Sequence[str]
) -> tuple[dict[str, float], pd.DataFrame]:
    """Predict ``frame`` with any object that has ``predict`` and compute metrics."""
    predicted = predictor.predict(frame.reset_index(drop=True))
    return metrics.evaluate_predictions(predicted, frame.reset_index(drop=True), levels), predicted
