"""Factories of unfitted scikit-learn / LightGBM estimators.

All category candidates read one shared feature matrix: word 1-2 grams and
char_wb 2-5 grams of the ticket text (:func:`text_features`). The text is
vectorised once per retraining and once per prediction, whatever the number
of candidates; at 50,000 tickets the vectorising costs more than most fits.
Hyperparameters come from ``CandidateSpec.params``, never from flows, and
each candidate has a small grid searched on the validation rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from lightgbm import LGBMClassifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import VotingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import LinearSVC

from triage_model.features import ESCALATION_COLUMNS, META_CATEGORICAL, META_NUMERIC

Builder = Callable[[Mapping[str, Any], int], Any]
ENSEMBLE = "ensemble"


@dataclass(frozen=True)
class CandidateSpec:
    """A named category model on the shared features: how to build it, its settings, its search grid."""

    name: str
    build: Builder
    params: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)


def text_features(params: Mapping[str, Any]) -> ColumnTransformer:
    """Word 1-2 grams and char_wb 2-5 grams of the ticket text, TF-IDF weighted."""
    word = TfidfVectorizer(
        ngram_range=(1, 2),
        min_df=2,
        sublinear_tf=True,
        max_features=params.get("word_features", 200_000),
        dtype=np.float64,
    )
    char = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(2, 5),
        min_df=2,
        sublinear_tf=True,
        max_features=params.get("char_features", 300_000),
        dtype=np.float64,
    )
    return ColumnTransformer([("word", word, "text"), ("char", char, "text")])


def build_logreg(params: Mapping[str, Any], seed: int) -> LogisticRegression:
    """Regularized (L2) logistic regression, classes weighted against imbalance."""
    # Keep lbfgs's default tol (1e-4): at 1e-3 it stopped after zero
    # iterations on the 3,200-ticket sample and predicted a single class.
    return LogisticRegression(
        C=params.get("C", 10.0),
        class_weight="balanced",
        max_iter=params.get("max_iter", 300),
        tol=params.get("tol", 1e-4),
        random_state=seed,
    )


def build_linear_svc(params: Mapping[str, Any], seed: int) -> CalibratedClassifierCV:
    """Margin-based linear SVM with sigmoid-calibrated probabilities."""
    svc = LinearSVC(C=params.get("C", 0.5), class_weight="balanced", random_state=seed)
    return CalibratedClassifierCV(svc, method="sigmoid", cv=3)


def build_complement_nb(params: Mapping[str, Any], seed: int) -> ComplementNB:
    """Complement naive Bayes, robust to class imbalance."""
    return ComplementNB(alpha=params.get("alpha", 0.3))


def build_lightgbm(params: Mapping[str, Any], seed: int) -> Pipeline:
    """Gradient-boosted trees on a latent-semantic (SVD) projection of the n-grams.

    LightGBM on the raw sparse n-grams was several times slower here for a
    lower macro-F1, so the text is compressed first. 50 components, 3 power
    iterations, 100 rounds at rate 0.2 and 63 bins: a third of the time of
    100 / 5 / 200 / 255 at 50,000 tickets, for 0.015 less validation macro-F1.
    """
    model = LGBMClassifier(
        n_estimators=params.get("n_estimators", 100),
        learning_rate=params.get("learning_rate", 0.2),
        num_leaves=params.get("num_leaves", 15),
        max_bin=params.get("max_bin", 63),
        colsample_bytree=0.5,
        class_weight="balanced",
        random_state=seed,
        n_jobs=params.get("n_jobs", 1),
        verbose=-1,
    )
    svd = TruncatedSVD(
        n_components=params.get("svd_components", 50),
        n_iter=params.get("svd_iterations", 3),
        random_state=seed,
    )
    return Pipeline([("svd", svd), ("model", model)])


CATEGORY_CANDIDATES: dict[str, Builder] = {
    "logreg": build_logreg,
    "linear_svc": build_linear_svc,
    "complement_nb": build_complement_nb,
    "lightgbm": build_lightgbm,
}

# Bounded searches, each a handful of fits on the shared matrix. logreg's
# C=30 never won on validation (tickets sample queue and type, 50,000
# synthetic tickets) and was its slowest setting (~10 s at 50,000 tickets).
CATEGORY_GRIDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "logreg": {"C": (3.0, 10.0)},
    "linear_svc": {"C": (0.1, 0.5)},
    "complement_nb": {"alpha": (0.1, 0.3, 1.0)},
    "lightgbm": {},
}


def category_specs(
    names: Sequence[str],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
) -> list[CandidateSpec]:
    """Specs for the configured single-model candidate names (the ensemble is built from them).

    Raises:
        ValueError: a name is not a known candidate.
    """
    unknown = [n for n in names if n not in CATEGORY_CANDIDATES and n != ENSEMBLE]
    if unknown:
        raise ValueError(
            f"unknown candidate(s) {unknown}; known: {sorted([*CATEGORY_CANDIDATES, ENSEMBLE])}"
        )
    overrides, grids = overrides or {}, grids if grids is not None else CATEGORY_GRIDS
    return [
        CandidateSpec(n, CATEGORY_CANDIDATES[n], dict(overrides.get(n, {})), dict(grids.get(n, {})))
        for n in names
        if n != ENSEMBLE
    ]


def soft_vote(members: Sequence[tuple[str, Any]], frozen: bool) -> VotingClassifier:
    """Average of the members' probabilities; ``frozen`` keeps already-fitted members as they are."""
    estimators = [(name, FrozenEstimator(model) if frozen else model) for name, model in members]
    return VotingClassifier(estimators, voting="soft")


def build_priority_text(params: Mapping[str, Any], seed: int) -> LogisticRegression:
    """Linear text model of priority, fitted on the word block of the shared features.

    Its out-of-fold probabilities feed LightGBM. It reads the word n-grams
    only (the leading columns of the shared matrix): leaving out the char
    n-grams made its four fits (three folds and the final) 6x cheaper. The
    caller slices the block; a ColumnTransformer selecting it stored every
    column index as a Python int, which skops took seconds to write.
    """
    return LogisticRegression(
        C=params.get("text_C", 4.0), class_weight="balanced", max_iter=300, random_state=seed
    )


def build_priority_category(params: Mapping[str, Any], seed: int) -> ComplementNB:
    """The priority model's own category signal: fitted out of fold in a second, whatever category model wins."""
    return ComplementNB(alpha=params.get("category_alpha", 0.3))


def priority_booster_settings(seed: int, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The priority booster's LightGBM settings, under names both LGBMClassifier and ``lightgbm.cv`` accept.

    Small, regularised trees: the booster starts from the text model's
    log-probabilities (:func:`triage_ml.train.fit_priority`) and corrects
    them. Its rows are weighted to balance the levels (``class_weight`` in
    :func:`build_priority`), as the text model's are. Compared by 5-fold CV
    inside the training part of the tickets sample and on a 12,000-ticket
    synthetic split (README, "Priority"): without the weights macro-F1 rose
    on the synthetic split, but the most urgent level's recall fell from
    0.82 to 0.63. Learning rates 0.06 and 0.1 scored alike with a third of
    the rounds, but there two retrainings differing only in category labels
    differed by 0.013-0.015 in priority F1 on the model tests' data (0.0007
    at 0.03), enough to trip the gate's priority guard.
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
    with ``lightgbm.cv`` (:func:`triage_ml.train.fit_priority`).
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


def describe(estimator: Any) -> dict[str, Any]:
    """Loggable hyperparameters of an estimator and everything inside it."""
    params = estimator.get_params(deep=True)
    keep = (int, float, str, bool, type(None), tuple)
    return {k: v for k, v in params.items() if isinstance(v, keep) and len(str(v)) < 250}
