"""The stacked priority model, whole: its estimators, its fit, and its stage in a retraining.

Three models, one on top of the others:

1. a linear text model of priority on the word n-grams (:func:`build_priority_text`);
2. a category model of its own, whatever category candidate wins
   (:func:`build_priority_category`);
3. LightGBM on their out-of-fold probabilities, sentiment, escalation
   signals and metadata (:func:`build_priority`), its boosting starting from
   the text model's log-probabilities.

:func:`fit_priority` fits the stack; :func:`fit_stage` is the retraining's
stage, run once on the fit part (to be measured) and once on every labeled
row (to ship). The served model's predict side of the stack is
``triage_model.predictor``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.class_weight import compute_sample_weight

from triage_ml.settings import TrainSettings
from triage_ml.training import candidates, selection
from triage_ml.training.inputs import labels
from triage_model.features import ESCALATION_COLUMNS, META_CATEGORICAL, META_NUMERIC
from triage_model.predictor import (
    PRIORITY_STARTS_FROM_TEXT,
    TriagePredictor,
    category_proba_columns,
    priority_frame,
    priority_text_columns,
    text_margin,
)

STACKED, PLAIN = "stacked", "baseline"
KINDS = (PLAIN, STACKED)


@dataclass(frozen=True)
class PriorityModel:
    """The priority parts of a :class:`~triage_model.predictor.TriagePredictor`.

    The stack (``kind`` ``stacked``) has all three; the plain baseline has
    only ``text``, a linear model on the whole shared matrix.
    """

    text: Any
    category: Any
    model: Any
    kind: str = STACKED


def build_priority_text(params: Mapping[str, Any], seed: int) -> LogisticRegression:
    """Linear text model of priority, fitted on the word block of the shared features.

    Its out-of-fold probabilities feed LightGBM. It reads the word n-grams
    only (the leading columns of the shared matrix), which makes its four
    fits (three folds and the final) much cheaper than on the char n-grams
    too. The caller slices the block: a ColumnTransformer selecting it
    stored every column index as a Python int, which skops was slow to write.
    """
    return LogisticRegression(
        C=params.get("text_C", 4.0), class_weight="balanced", max_iter=300, random_state=seed
    )


def build_priority_baseline(seed: int) -> LogisticRegression:
    """The plain priority baseline: the category baseline's estimator, on the whole matrix."""
    return candidates.build_baseline({}, seed)


def build_priority_category(params: Mapping[str, Any], seed: int) -> ComplementNB:
    """The priority model's own category signal: cheap out of fold, whatever category model wins."""
    return ComplementNB(alpha=params.get("category_alpha", 0.3))


def priority_booster_settings(seed: int, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The priority booster's LightGBM settings, in names LGBMClassifier and ``lightgbm.cv`` share.

    Small, regularised trees: the booster starts from the text model's
    log-probabilities (:func:`fit_priority`) and corrects them. Its rows are
    weighted to balance the levels (``class_weight`` in :func:`build_priority`),
    as the text model's are: without the weights the most urgent level's
    recall fell. The low learning rate keeps two retrainings that differ only
    in category labels close in priority F1, so the gate's priority guard
    does not trip on noise (the comparisons are in docs/benchmarks.md).
    """
    params = params or {}
    return {
        "learning_rate": params.get("learning_rate", 0.03),
        "num_leaves": params.get("num_leaves", 7),
        "min_child_samples": params.get("min_child_samples", 40),
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.5,
        "reg_lambda": params.get("reg_lambda", 5.0),
        "random_state": seed,
        "n_jobs": params.get("n_jobs", 1),
        "verbose": -1,
    }


def build_priority(
    stacked_columns: list[str], seed: int, params: Mapping[str, Any] | None = None
) -> Pipeline:
    """LightGBM priority model on stacked text/category probabilities, sentiment and metadata.

    ``n_estimators`` is the most rounds it may take; the fit picks fewer
    with ``lightgbm.cv`` (:func:`fit_priority`).
    """
    params = params or {}
    features = ColumnTransformer(
        [
            ("meta", OneHotEncoder(handle_unknown="ignore"), list(META_CATEGORICAL)),
            (
                "numeric",
                "passthrough",
                [*META_NUMERIC, "sentiment", *ESCALATION_COLUMNS, *stacked_columns],
            ),
        ]
    )
    model = LGBMClassifier(
        n_estimators=params.get("n_estimators", 600),
        class_weight="balanced",
        **priority_booster_settings(seed, params),
    )
    return Pipeline([("features", features), ("model", model)])


def word_columns(features: Any) -> int:
    """How many leading columns of the shared matrix are word n-grams."""
    return len(features.named_transformers_["word"].vocabulary_)


def out_of_fold_proba(
    estimator: Any, matrix: Any, y: np.ndarray, seed: int, folds: int = 3
) -> np.ndarray:
    """Probabilities for the training rows from models that did not see them.

    The features were fitted on all these rows (vocabulary and IDF, no
    labels): refitting the vectorizer per fold would triple its cost.
    """
    smallest = pd.Series(y).value_counts().min()
    cv = StratifiedKFold(
        n_splits=max(2, min(folds, int(smallest))), shuffle=True, random_state=seed
    )
    return cross_val_predict(clone(estimator), matrix, y, cv=cv, method="predict_proba")


def fit_priority(
    matrix: Any,
    rows: pd.DataFrame,
    seed: int,
    word_count: int,
    params: Mapping[str, Any] | None = None,
) -> PriorityModel | None:
    """Fit the stacked priority model, or None without two priority levels.

    ``matrix`` holds the shared features of ``rows`` (model inputs with
    labels), its first ``word_count`` columns the word n-grams. LightGBM
    learns from out-of-fold probabilities of the text and category models,
    so it never sees probabilities of rows they were fit on. Its boosting
    starts from the text model's out-of-fold log-probabilities
    (``init_score``): with no rounds it decides as the text model does, and
    each round corrects that with sentiment, escalation signals, metadata
    and the stacked probabilities. ``lightgbm.cv`` picks the rounds.
    """
    params = params or {}
    labeled = rows["priority"].notna().to_numpy()
    if pd.Series(rows["priority"][labeled]).nunique() < 2:
        return None
    part, x = rows[labeled].reset_index(drop=True), matrix[np.flatnonzero(labeled)]
    y, y_category, words = labels(part, "priority"), labels(part), x[:, :word_count]
    text, category = build_priority_text(params, seed), build_priority_category(params, seed)
    text_proba = out_of_fold_proba(text, words, y, seed)
    category_proba = out_of_fold_proba(category, x, y_category, seed)
    text.fit(words, y)
    category.fit(x, y_category)
    frame = priority_frame(
        part, category_proba, list(category.classes_), text_proba, list(text.classes_)
    )
    stacked = category_proba_columns(list(category.classes_)) + priority_text_columns(
        list(text.classes_)
    )
    priority = build_priority(stacked, seed, params)
    inputs, booster = (
        priority.named_steps["features"].fit_transform(frame, y),
        priority.named_steps["model"],
    )
    margin = text_margin(text_proba)
    rounds = boosting_rounds(
        booster, inputs, y, margin, priority_booster_settings(seed, params), seed
    )
    booster.set_params(n_estimators=rounds).fit(inputs, y, init_score=margin)
    return PriorityModel(text, category, priority)


def boosting_rounds(
    booster: Any,
    inputs: Any,
    y: np.ndarray,
    margin: np.ndarray,
    settings: Mapping[str, Any],
    seed: int,
    folds: int = 3,
    patience: int = 30,
) -> int:
    """Rounds after which ``booster``'s cross-validated log-loss stopped improving.

    Boosting starts from ``margin``.

    ``lightgbm.cv`` with early stopping, over ``folds`` stratified folds of
    the rows, weighted as the booster's ``class_weight`` weights its own fit;
    ``settings`` are the booster's, its ``n_estimators`` the cap.
    """
    levels = np.unique(y)
    objective = (
        {"objective": "binary"}
        if len(levels) == 2
        else {"objective": "multiclass", "num_class": len(levels)}
    )
    smallest = int(pd.Series(y).value_counts().min())
    data = lightgbm.Dataset(
        inputs,
        label=np.searchsorted(levels, y),
        init_score=margin,
        weight=compute_sample_weight(booster.class_weight, y),
    )
    history = lightgbm.cv(
        {**settings, **objective},
        data,
        num_boost_round=booster.n_estimators,
        nfold=max(2, min(folds, smallest)),
        stratified=True,
        seed=seed,
        callbacks=[lightgbm.early_stopping(patience, verbose=False)],
    )
    return len(next(iter(history.values())))


def fit_plain(matrix: Any, rows: pd.DataFrame, seed: int) -> PriorityModel | None:
    """The plain priority baseline fitted on the priority-labeled ``rows``, or None."""
    labeled = rows["priority"].notna().to_numpy()
    if pd.Series(rows["priority"][labeled]).nunique() < 2:
        return None
    y = labels(rows[labeled], "priority")
    text = build_priority_baseline(seed).fit(matrix[np.flatnonzero(labeled)], y)
    return PriorityModel(text, None, None, PLAIN)


def fit_kind(
    kind: str, matrix: Any, rows: pd.DataFrame, seed: int, word_count: int
) -> PriorityModel | None:
    """The priority model of ``kind`` (``stacked`` or ``baseline``) fitted on ``rows``."""
    if kind == PLAIN:
        return fit_plain(matrix, rows, seed)
    return fit_priority(matrix, rows, seed, word_count)


def predicted_levels(model: PriorityModel, matrix: Any, rows: pd.DataFrame) -> np.ndarray:
    """The most likely level of each of ``rows`` (model inputs) under ``model``."""
    predictor = TriagePredictor(None, None, model.model, model.text, model.category)
    if model.kind == STACKED:
        predictor.config[PRIORITY_STARTS_FROM_TEXT] = True
    inputs = {column: rows[column].tolist() for column in rows.columns}
    proba = predictor.priority_proba(inputs, matrix)
    return np.array(predictor.priority_levels, dtype=object)[proba.argmax(axis=1)]


def fold_scores(
    kind: str, matrix: Any, rows: pd.DataFrame, folds: selection.Folds, seed: int, word_count: int
) -> tuple[float, ...]:
    """Macro-F1 of priority model ``kind`` on each fold (priority-labeled rows only)."""
    sample, x = rows.iloc[folds.rows].reset_index(drop=True), matrix[folds.rows]
    scores = []
    for train, valid in folds.splits:
        model = fit_kind(kind, x[train], sample.iloc[train], seed, word_count)
        held = sample.iloc[valid]
        labeled = held["priority"].notna().to_numpy()
        if model is None or not labeled.any():
            continue
        predicted = predicted_levels(model, x[valid][labeled], held[labeled])
        truth = labels(held[labeled], "priority")
        scores.append(float(f1_score(truth, predicted, average="macro", zero_division=0)))
    return tuple(scores)


def choose_kind(
    rows: pd.DataFrame, matrix: Any, features: Any, folds: selection.Folds, train: TrainSettings
) -> tuple[str, dict[str, float]]:
    """The stack or the plain baseline, by CV macro-F1 and the one-standard-error rule.

    The baseline is the simpler: the stack must beat it by more than the
    folds' noise. Returns the kind and the figures to log (none when
    ``train.priority_model`` pins the kind).
    """
    if train.priority_model != "auto":
        return train.priority_model, {}
    words = word_columns(features)
    with candidates.single_blas_thread():
        scores = {k: fold_scores(k, matrix, rows, folds, train.seed, words) for k in KINDS}
    figures = {f"priority_cv_{k}_macro_f1_mean": float(np.mean(v)) for k, v in scores.items() if v}
    if not scores[STACKED] or not scores[PLAIN]:
        return (PLAIN if scores[PLAIN] else STACKED), figures
    noise = selection.standard_error(scores[STACKED]) if train.one_standard_error else 0.0
    better = np.mean(scores[STACKED]) - noise > np.mean(scores[PLAIN])
    return (STACKED if better else PLAIN), figures


def fit_stage(
    rows: pd.DataFrame, matrix: Any, features: Any, train: TrainSettings, kind: str = STACKED
) -> PriorityModel | None:
    """The retraining's stage: the priority model of ``kind`` on ``rows`` (one BLAS thread).

    It needs no category candidate (it has a category model of its own), so
    it can fit while the candidates do.
    """
    with candidates.single_blas_thread():
        return fit_kind(kind, matrix, rows, train.seed, word_columns(features))


def kept_rounds(model: PriorityModel) -> int:
    """How many boosting rounds the booster kept (``lightgbm.cv``'s choice; 0 for the baseline)."""
    if model.model is None:
        return 0
    return int(model.model.named_steps["model"].n_estimators)
