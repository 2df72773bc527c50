"""Fit the category candidates, choose one, and assemble and evaluate a predictor.

Candidates are fitted on the training part and compared on the validation
part; the test part is used only once, for the final comparison with the
champion, so the choice of candidate never sees it. What the models learn
from is in ``inputs``; the stacked priority model is in ``priority``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import ParameterGrid, train_test_split

from triage_ml.errors import TrainingDataError
from triage_ml.training import candidates, inputs, metrics, priority
from triage_ml.training.inputs import Matrices, labels
from triage_model.predictor import PRIORITY_STARTS_FROM_TEXT, TriagePredictor


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
    valid_proba: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


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


def _validation_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "valid_category_macro_f1": float(
            f1_score(truth, predicted, average="macro", zero_division=0)
        ),
        "valid_category_accuracy": float(np.mean(predicted == truth)),
    }


def search_sample(y: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Row positions of a stratified sample of at most ``limit`` training rows (all when fewer)."""
    if len(y) <= limit:
        return np.arange(len(y))
    keep, _ = train_test_split(np.arange(len(y)), train_size=limit, random_state=seed, stratify=y)
    return np.sort(keep)


def best_setting(
    spec: candidates.CandidateSpec,
    matrices: Matrices,
    seed: int,
    settings: Sequence[dict[str, Any]],
    sample: np.ndarray,
) -> tuple[dict[str, Any], Any]:
    """The setting of ``spec`` with the best validation macro-F1, and its model.

    Each setting is fitted on the ``sample`` rows of the training matrix.
    """
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
    return best[1], best[2]


def fit_candidate(
    spec: candidates.CandidateSpec, matrices: Matrices, seed: int, search_rows: int = 5_000
) -> FittedCandidate:
    """Search ``spec.grid`` on the validation rows, then fit the best setting on every training row.

    The search fits each setting on a stratified sample of at most
    ``search_rows`` training rows: on large data a full-size search cost
    more than everything else in a retraining. A loop over scikit-learn's
    ParameterGrid rather than GridSearchCV with a PredefinedSplit, because
    GridSearchCV keeps no fitted model per setting. Fits with one BLAS thread.
    """
    settings = list(ParameterGrid(dict(spec.grid) or [{}]))
    sample = (
        search_sample(matrices.y_train, search_rows, seed)
        if len(settings) > 1
        else np.arange(len(matrices.y_train))
    )
    with candidates.single_blas_thread():
        setting, model = best_setting(spec, matrices, seed, settings, sample)
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
        proba,
    )


def fit_ensemble(
    fitted: Sequence[FittedCandidate], matrices: Matrices, members: int = 3
) -> FittedCandidate:
    """Soft vote of the ``members`` best candidates on validation (fitted already: no new fit)."""
    chosen = sorted(fitted, key=lambda c: -c.valid_metrics["valid_category_macro_f1"])[:members]
    # Fitting frozen members fits nothing; the vote learns the class order from the training labels.
    model = candidates.soft_vote([(c.name, c.model) for c in chosen], frozen=True).fit(
        matrices.train, matrices.y_train
    )
    proba = np.mean([c.valid_proba for c in chosen], axis=0)
    blueprint = candidates.soft_vote([(c.name, clone(c.blueprint)) for c in chosen], frozen=False)
    scores = _validation_scores(matrices.y_valid, model.classes_[proba.argmax(axis=1)])
    params = {"members": ",".join(c.name for c in chosen)}
    return FittedCandidate(candidates.ENSEMBLE, model, blueprint, params, scores, proba)


def select_best(fitted: Sequence[FittedCandidate]) -> FittedCandidate:
    """The candidate with the highest validation macro-F1 (name breaks ties)."""
    return max(fitted, key=lambda c: (c.valid_metrics["valid_category_macro_f1"], c.name))


def refit(blueprint: Any, matrix: Any, y: np.ndarray) -> Any:
    """A copy of ``blueprint`` (same hyperparameters) fitted on ``matrix`` (one BLAS thread)."""
    with candidates.single_blas_thread():
        return clone(blueprint).fit(matrix, y)


def assemble_predictor(
    features: Any,
    category: Any,
    stacked: priority.PriorityModel | None,
    config: dict[str, Any],
) -> TriagePredictor:
    """Predictor of the shared features, a category model and the priority stack (if fitted)."""
    if stacked is None:
        return TriagePredictor(features, category, config=config)
    return TriagePredictor(
        features,
        category,
        stacked.model,
        stacked.text,
        stacked.category,
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
    """One candidate plus the stacked priority model, without logging or refits (tests, tools)."""
    matrices = inputs.featurize(train, valid, feature_params)
    fitted = fit_candidate(spec, matrices, seed)
    stacked = priority.fit_priority(
        matrices.train, train, seed, priority.word_columns(matrices.features), priority_params
    )
    return assemble_predictor(
        matrices.features, fitted.model, stacked, {**config, "candidate": fitted.name}
    )


def validation_predictions(fitted: FittedCandidate) -> pd.DataFrame:
    """The candidate's most likely category and its probability for each validation row.

    Read from the probabilities kept at fit time: predicting the validation
    rows again would vectorise their text a second time.
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


def evaluate(
    predictor: Any, frame: pd.DataFrame, levels: Sequence[str]
) -> tuple[dict[str, float], pd.DataFrame]:
    """Predict ``frame`` with any object that has ``predict`` and compute metrics."""
    predicted = predictor.predict(frame.reset_index(drop=True))
    return metrics.evaluate_predictions(predicted, frame.reset_index(drop=True), levels), predicted
