"""Fit category candidates and the priority model, and evaluate them.

Candidates are fitted on the training part and compared on the validation
part; the test part is used only once, for the final comparison with the
champion, so the choice of candidate never sees it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import (
    ParameterGrid,
    StratifiedKFold,
    cross_val_predict,
    train_test_split,
)
from sklearn.utils.class_weight import compute_sample_weight

from triage_ml.errors import TrainingDataError
from triage_ml.training import candidates, metrics
from triage_model.features import model_inputs
from triage_model.predictor import (
    PRIORITY_STARTS_FROM_TEXT,
    TriagePredictor,
    category_proba_columns,
    priority_frame,
    priority_text_columns,
    text_margin,
)


@dataclass(frozen=True)
class Matrices:
    """The shared feature matrix of the training and validation rows, with the fitted vectorizer."""

    features: Any
    train: Any
    valid: Any
    y_train: np.ndarray
    y_valid: np.ndarray
    seconds: float


@dataclass(frozen=True)
class FittedCandidate:
    """A category model fitted on the training matrix, with its validation figures.

    ``blueprint`` is the unfitted estimator with the chosen hyperparameters,
    for refits on more rows.
    """

    name: str
    model: Any
    blueprint: Any
    params: dict[str, Any]
    valid_metrics: dict[str, float]
    fit_seconds: float
    valid_proba: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


def require_trainable(frame: pd.DataFrame, min_rows: int) -> None:
    """Refuse data that cannot train a classifier, with a one-line reason.

    Raises:
        TrainingDataError: too few labeled rows or a single category.
    """
    if len(frame) < min_rows:
        raise TrainingDataError(
            f"only {len(frame)} labeled tickets in the store; at least {min_rows} are needed to train"
        )
    classes = frame["category"].dropna().unique()
    if len(classes) < 2:
        raise TrainingDataError(
            f"the labeled tickets have a single category ({', '.join(map(str, classes))}); a classifier needs at least two"
        )


def labels(frame: pd.DataFrame, column: str = "category") -> np.ndarray:
    """Label column as a plain object array (pandas 3 strings break sklearn splits)."""
    return frame[column].to_numpy(dtype=object)


def featurize(
    train: pd.DataFrame, valid: pd.DataFrame, params: Mapping[str, Any] | None = None
) -> Matrices:
    """Fit the shared text features on the training rows and transform both parts."""
    started = time.perf_counter()
    features = candidates.text_features(params or {})
    x_train = features.fit_transform(train)
    x_valid = features.transform(valid)
    return Matrices(
        features, x_train, x_valid, labels(train), labels(valid), time.perf_counter() - started
    )


def _validation_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "valid_category_macro_f1": float(
            f1_score(truth, predicted, average="macro", zero_division=0)
        ),
        "valid_category_accuracy": float(np.mean(predicted == truth)),
    }


def search_sample(y: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Row positions of a stratified sample of at most ``limit`` training rows (all rows when fewer)."""
    if len(y) <= limit:
        return np.arange(len(y))
    keep, _ = train_test_split(np.arange(len(y)), train_size=limit, random_state=seed, stratify=y)
    return np.sort(keep)


def fit_candidate(
    spec: candidates.CandidateSpec, matrices: Matrices, seed: int, search_rows: int = 5_000
) -> FittedCandidate:
    """Search ``spec.grid`` on the validation rows, then fit the best setting on every training row.

    The search fits each setting on a stratified sample of at most
    ``search_rows`` training rows: at 50,000 tickets a full-size search cost
    more than everything else in a retraining. A loop over scikit-learn's
    ParameterGrid rather than GridSearchCV with a PredefinedSplit, because
    GridSearchCV keeps no fitted model per setting.
    """
    started = time.perf_counter()
    settings = list(ParameterGrid(dict(spec.grid) or [{}]))
    sample = (
        search_sample(matrices.y_train, search_rows, seed)
        if len(settings) > 1
        else np.arange(len(matrices.y_train))
    )
    best: tuple[float, dict[str, Any], Any] | None = None
    for setting in settings:
        model = spec.build({**spec.params, **setting}, seed).fit(
            matrices.train[sample], matrices.y_train[sample]
        )
        score = _validation_scores(matrices.y_valid, model.predict(matrices.valid))[
            "valid_category_macro_f1"
        ]
        if best is None or score > best[0]:
            best = (score, setting, model)
    assert best is not None  # ParameterGrid yields at least one setting
    _, setting, model = best
    params = {**spec.params, **setting}
    if len(sample) < len(matrices.y_train):
        model = spec.build(params, seed).fit(matrices.train, matrices.y_train)
    proba = model.predict_proba(matrices.valid)
    scores = _validation_scores(matrices.y_valid, model.classes_[proba.argmax(axis=1)])
    scores["search_settings"] = float(len(settings))
    return FittedCandidate(
        spec.name,
        model,
        spec.build(params, seed),
        {**candidates.describe(model), **setting},
        scores,
        time.perf_counter() - started,
        proba,
    )


def fit_ensemble(
    fitted: Sequence[FittedCandidate], matrices: Matrices, members: int = 3
) -> FittedCandidate:
    """Soft vote of the ``members`` best candidates on validation (already fitted, so no new fit)."""
    chosen = sorted(fitted, key=lambda c: -c.valid_metrics["valid_category_macro_f1"])[:members]
    started = time.perf_counter()
    # Fitting frozen members fits nothing; the vote learns the class order from the training labels.
    model = candidates.soft_vote([(c.name, c.model) for c in chosen], frozen=True).fit(
        matrices.train, matrices.y_train
    )
    proba = np.mean([c.valid_proba for c in chosen], axis=0)
    blueprint = candidates.soft_vote([(c.name, clone(c.blueprint)) for c in chosen], frozen=False)
    scores = _validation_scores(matrices.y_valid, model.classes_[proba.argmax(axis=1)])
    params = {"members": ",".join(c.name for c in chosen)}
    return FittedCandidate(
        candidates.ENSEMBLE, model, blueprint, params, scores, time.perf_counter() - started, proba
    )


def select_best(fitted: Sequence[FittedCandidate]) -> FittedCandidate:
    """The candidate with the highest validation macro-F1 (name breaks ties)."""
    return max(fitted, key=lambda c: (c.valid_metrics["valid_category_macro_f1"], c.name))


def refit(blueprint: Any, matrix: Any, y: np.ndarray) -> Any:
    """A fresh copy of ``blueprint`` (same hyperparameters) fitted on ``matrix``."""
    return clone(blueprint).fit(matrix, y)


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


@dataclass(frozen=True)
class PriorityModel:
    """The stacked priority parts of a :class:`TriagePredictor`."""

    text: Any
    category: Any
    model: Any


def word_columns(features: Any) -> int:
    """How many leading columns of the shared matrix are word n-grams."""
    return len(features.named_transformers_["word"].vocabulary_)


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
    text = candidates.build_priority_text(params, seed)
    category = candidates.build_priority_category(params, seed)
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
    priority = candidates.build_priority(stacked, seed, params)
    inputs, booster = (
        priority.named_steps["features"].fit_transform(frame, y),
        priority.named_steps["model"],
    )
    margin = text_margin(text_proba)
    rounds = boosting_rounds(
        booster, inputs, y, margin, candidates.priority_booster_settings(seed, params), seed
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
    """Rounds after which ``booster``'s cross-validated log-loss, starting from ``margin``, stopped improving.

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


def assemble_predictor(
    features: Any, category: Any, priority: PriorityModel | None, config: dict[str, Any]
) -> TriagePredictor:
    """The predictor made of the shared features, a category model and (when fitted) the priority stack."""
    if priority is None:
        return TriagePredictor(features, category, config=config)
    return TriagePredictor(
        features,
        category,
        priority.model,
        priority.text,
        priority.category,
        {**config, PRIORITY_STARTS_FROM_TEXT: True},
    )


def fit_predictor(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    spec: candidates.CandidateSpec,
    config: dict[str, Any],
    seed: int,
    feature_params: Mapping[str, Any] | None = None,
    priority_params: Mapping[str, Any] | None = None,
) -> TriagePredictor:
    """One candidate plus the stacked priority model, without search logging or refits (tests, tools)."""
    matrices = featurize(train, valid, feature_params)
    fitted = fit_candidate(spec, matrices, seed)
    priority = fit_priority(
        matrices.train, train, seed, word_columns(matrices.features), priority_params
    )
    return assemble_predictor(
        matrices.features, fitted.model, priority, {**config, "candidate": fitted.name}
    )


def validation_predictions(fitted: FittedCandidate) -> pd.DataFrame:
    """The candidate's most likely category and its probability for each validation row.

    Read from the probabilities kept at fit time: predicting the validation
    rows again would vectorise their text a second time (~5 s at 50,000 tickets).
    """
    classes = np.asarray([str(c) for c in fitted.model.classes_], dtype=object)
    return pd.DataFrame(
        {
            "category": classes[fitted.valid_proba.argmax(axis=1)],
            "category_proba": fitted.valid_proba.max(axis=1),
        }
    )


def review_thresholds(
    classes: Sequence[str],
    predicted: pd.DataFrame,
    valid: pd.DataFrame,
    target_precision: float,
    default: float,
) -> dict[str, float]:
    """Per-category confidence below which a prediction goes to a human.

    ``predicted`` holds the ``category`` and ``category_proba`` predicted for
    the ``valid`` rows. For each of ``classes`` the threshold is the lowest
    confidence at which validation precision reaches ``target_precision``;
    categories with too few validation predictions keep ``default``.
    """
    truth = labels(valid)
    out: dict[str, float] = {}
    for category in classes:
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


def evaluate(
    predictor: Any, frame: pd.DataFrame, levels: Sequence[str]
) -> tuple[dict[str, float], pd.DataFrame]:
    """Predict ``frame`` with any object that has ``predict`` and compute metrics."""
    predicted = predictor.predict(frame.reset_index(drop=True))
    return metrics.evaluate_predictions(predicted, frame.reset_index(drop=True), levels), predicted
