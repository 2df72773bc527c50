"""Fit category candidates and the priority model, and evaluate them.

Candidates are fitted on the training part and compared on the validation
part; the test part is used only once, for the final comparison with the
champion, so the choice of candidate never sees it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from triage_ml import candidates, metrics
from triage_ml.errors import TrainingDataError
from triage_ml.features import model_inputs
from triage_ml.model import TriagePredictor, category_proba_columns, priority_frame, priority_text_columns


@dataclass(frozen=True)
class FittedCandidate:
    """A fitted category pipeline with its validation figures."""

    name: str
    pipeline: Pipeline
    params: dict[str, Any]
    valid_metrics: dict[str, float]
    fit_seconds: float


def require_trainable(frame: pd.DataFrame, min_rows: int) -> None:
    """Refuse data that cannot train a classifier, with a one-line reason.

    Raises:
        TrainingDataError: too few labeled rows or a single category.
    """
    if len(frame) < min_rows:
        raise TrainingDataError(f"only {len(frame)} labeled tickets in the store; at least {min_rows} are needed to train")
    classes = frame["category"].dropna().unique()
    if len(classes) < 2:
        raise TrainingDataError(f"the labeled tickets have a single category ({', '.join(map(str, classes))}); a classifier needs at least two")


def labels(frame: pd.DataFrame, column: str = "category") -> np.ndarray:
    """Label column as a plain object array (pandas 3 strings break sklearn splits)."""
    return frame[column].to_numpy(dtype=object)


def fit_candidate(spec: candidates.CandidateSpec, train: pd.DataFrame, valid: pd.DataFrame, seed: int) -> FittedCandidate:
    """Fit one candidate on ``train`` (model inputs) and score it on ``valid``."""
    pipeline = spec.build(spec.params, seed)
    started = time.perf_counter()
    pipeline.fit(train, labels(train))
    elapsed = time.perf_counter() - started
    predicted = pipeline.predict(valid)
    truth = labels(valid)
    score = {
        "valid_category_macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "valid_category_accuracy": float(np.mean(predicted == truth)),
    }
    return FittedCandidate(spec.name, pipeline, candidates.describe(pipeline), score, elapsed)


def select_best(fitted: Sequence[FittedCandidate]) -> FittedCandidate:
    """The candidate with the highest validation macro-F1 (name breaks ties)."""
    return max(fitted, key=lambda c: (c.valid_metrics["valid_category_macro_f1"], c.name))


def refit(pipeline: Pipeline, rows: pd.DataFrame) -> Pipeline:
    """A fresh copy of ``pipeline`` (same hyperparameters) fitted on ``rows``."""
    return clone(pipeline).fit(rows, labels(rows))


def out_of_fold_proba(pipeline: Pipeline, inputs: pd.DataFrame, y: np.ndarray, seed: int, folds: int = 3) -> np.ndarray:
    """Category probabilities for the training rows from models that did not see them."""
    smallest = pd.Series(y).value_counts().min()
    cv = StratifiedKFold(n_splits=max(2, min(folds, int(smallest))), shuffle=True, random_state=seed)
    return cross_val_predict(clone(pipeline), inputs, y, cv=cv, method="predict_proba")


def fit_priority(category: Pipeline, train: pd.DataFrame, seed: int,
                 params: Mapping[str, Any] | None = None) -> tuple[Pipeline, Pipeline] | None:
    """Fit the stacked priority model: (text model, LightGBM), or None without priority labels.

    The LightGBM model learns from out-of-fold probabilities of the category
    and text models, so it never sees probabilities of rows they were fit on.
    """
    rows = train[train["priority"].notna()].reset_index(drop=True)
    if rows["priority"].nunique() < 2:
        return None
    y = labels(rows, "priority")
    text_model = candidates.build_priority_text(seed, params)
    text_proba = out_of_fold_proba(text_model, rows, y, seed)
    category_proba = out_of_fold_proba(category, rows, labels(rows), seed)
    classes = [str(c) for c in category.classes_]
    if category_proba.shape[1] != len(classes):
        # A category missing from every fold: fall back to in-sample probabilities.
        category_proba = category.predict_proba(rows)
    text_model.fit(rows, y)
    frame = priority_frame(rows, category_proba, classes, text_model, text_proba)
    stacked = category_proba_columns(classes) + priority_text_columns(list(text_model.classes_))
    return text_model, candidates.build_priority(stacked, seed, params).fit(frame, y)


def review_thresholds(predictor: TriagePredictor, valid: pd.DataFrame, target_precision: float, default: float) -> dict[str, float]:
    """Per-category confidence below which a prediction goes to a human.

    For each predicted category the threshold is the lowest confidence at
    which validation precision reaches ``target_precision``; categories with
    too few validation predictions keep ``default``.
    """
    predicted = predictor.predict(valid)
    truth = labels(valid)
    out: dict[str, float] = {}
    for category in predictor.classes:
        mask = predicted["category"].to_numpy() == category
        if mask.sum() < 20:
            out[category] = default
            continue
        conf = predicted.loc[mask, "category_proba"].to_numpy()
        correct = truth[mask] == category
        order = np.argsort(-conf)
        precision = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
        ok = np.where(precision >= target_precision)[0]
        out[category] = float(conf[order][ok.max()]) if len(ok) else 1.0
    return out


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Model inputs plus the label columns, row order kept."""
    inputs = model_inputs(frame.reset_index(drop=True))
    for column in ("category", "priority"):
        inputs[column] = frame[column].to_numpy(dtype=object) if column in frame.columns else None
    return inputs


def evaluate(predictor: Any, frame: pd.DataFrame, levels: Sequence[str]) -> tuple[dict[str, float], pd.DataFrame]:
    """Predict ``frame`` with any object that has ``predict`` and compute metrics."""
    predicted = predictor.predict(frame.reset_index(drop=True))
    return metrics.evaluate_predictions(predicted, frame.reset_index(drop=True), levels), predicted
