"""The stacked priority model, whole: its estimators, its fit, and its stage in a retraining.

Three models, one on top of the others:

1. a linear text model of priority on the word n-grams (:func:`build_priority_text`);
2. a category model of its own, whatever category candidate wins
   (:func:`build_priority_category`);
3. LightGBM on their out-of-fold probabilities, sentiment, escalation
   signals and metadata (:func:`build_priority`), its boosting starting from
   the text model's log-probabilities.

:func:`fit_priority` fits the stack; :func:`fit_on_final_rows` is the
retraining's stage. The served model's predict side of the stack is
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
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.class_weight import compute_sample_weight

from triage_ml.settings import TrainSettings
from triage_ml.training import candidates
from triage_ml.training.inputs import Matrices, Prepared, final_rows, labels
from triage_model.features import ESCALATION_COLUMNS, META_CATEGORICAL, META_NUMERIC
from triage_model.predictor import (
    category_proba_columns,
    priority_frame,
    priority_text_columns,
    text_margin,
)


@dataclass(frozen=True)
class PriorityModel:
    """The stacked priority parts of a :class:`~triage_model.predictor.TriagePredictor`."""

    text: Any
    category: Any
    model: Any


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


def fit_on_final_rows(
    prepared: Prepared, matrices: Matrices, train: TrainSettings
) -> PriorityModel | None:
    """The retraining's stage: the stacked priority model, fitted on the final rows.

    It needs no category candidate (it has a category model of its own), so
    it can fit while the candidates do.
    """
    rows, matrix = final_rows(prepared, matrices, train)
    with candidates.single_blas_thread():
        return fit_priority(matrix, rows, train.seed, word_columns(matrices.features))


def kept_rounds(model: PriorityModel) -> int:
    """How many boosting rounds the booster kept (``lightgbm.cv``'s choice)."""
    return int(model.model.named_steps["model"].n_estimators)
