"""Where a category candidate is defined: factories of unfitted scikit-learn / LightGBM estimators.

All category candidates read one shared feature matrix: word 1-2 grams and
char_wb 2-5 grams of the ticket text (:func:`text_features`). The text is
vectorised once per retraining and once per prediction, whatever the number
of candidates, because on large data the vectorising costs more than most
fits. Hyperparameters come from ``CandidateSpec.params`` (configured in
``TrainSettings.candidate_params``), never from flows, and each candidate has
a small grid searched by cross-validation (``selection``). A new candidate is
one factory added to ``CATEGORY_CANDIDATES`` (its grid to ``CATEGORY_GRIDS``,
its rank to ``COMPLEXITY``). The plain baseline (``baseline``: logistic
regression, C=10, balanced, on these features) is always a candidate, so a
champion can lose to it only by chance. The stacked priority model has its
own factories, in ``priority``.
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
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from triage_ml.settings import TrainSettings

Builder = Callable[[Mapping[str, Any], int], Any]
ENSEMBLE = "ensemble"
BASELINE = "baseline"


@dataclass(frozen=True)
class CandidateSpec:
    """A named category model on the shared features: its factory, settings and search grid."""

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
    # Keep lbfgs's default tol (1e-4): a looser one stopped after zero
    # iterations on small data and predicted a single class.
    return LogisticRegression(
        C=params.get("C", 10.0),
        class_weight="balanced",
        max_iter=params.get("max_iter", 300),
        tol=params.get("tol", 1e-4),
        random_state=seed,
    )


def build_baseline(params: Mapping[str, Any], seed: int) -> LogisticRegression:
    """The plain baseline every claim is compared with: logistic regression, C=10, balanced.

    Not searched and not configurable (``candidate_params`` cannot change
    it), so it stays the yardstick. More iterations than ``logreg``: lbfgs
    at C=10 on many classes needed them to converge.
    """
    return LogisticRegression(C=10.0, class_weight="balanced", max_iter=1000, random_state=seed)


def build_linear_svc(params: Mapping[str, Any], seed: int) -> CalibratedClassifierCV:
    """Margin-based linear SVM with sigmoid-calibrated probabilities."""
    svc = LinearSVC(C=params.get("C", 0.5), class_weight="balanced", random_state=seed)
    return CalibratedClassifierCV(svc, method="sigmoid", cv=3)


def build_complement_nb(params: Mapping[str, Any], seed: int) -> ComplementNB:
    """Complement naive Bayes, robust to class imbalance."""
    return ComplementNB(alpha=params.get("alpha", 0.3))


def build_lightgbm(params: Mapping[str, Any], seed: int) -> Pipeline:
    """Gradient-boosted trees on a latent-semantic (SVD) projection of the n-grams.

    LightGBM on the raw sparse n-grams was slower for a lower macro-F1, so
    the text is compressed first. The small defaults (50 components, 3 power
    iterations, 100 rounds at rate 0.2, 63 bins) trade a little validation
    macro-F1 for most of the time (docs/benchmarks.md).
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
    BASELINE: build_baseline,
    "logreg": build_logreg,
    "linear_svc": build_linear_svc,
    "complement_nb": build_complement_nb,
    "lightgbm": build_lightgbm,
}

# Bounded searches, each a handful of fits per fold; settings that never won
# were dropped (docs/benchmarks.md). logreg searches below the baseline's C=10
# (C=30 was the slowest setting and within noise of C=10 on every data set).
CATEGORY_GRIDS: dict[str, dict[str, tuple[Any, ...]]] = {
    BASELINE: {},
    "logreg": {"C": (1.0, 3.0)},
    "linear_svc": {"C": (0.1, 0.5)},
    "complement_nb": {"alpha": (0.1, 0.3, 1.0)},
    "lightgbm": {},
}


# Simpler first: when candidates' cross-validated scores are within one
# standard error of the best, the simplest among them wins (selection.choose).
COMPLEXITY: dict[str, int] = {
    BASELINE: 0,
    "logreg": 1,
    "complement_nb": 1,
    "linear_svc": 2,
    "lightgbm": 3,
    ENSEMBLE: 4,
}


def category_specs(
    names: Sequence[str],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
) -> list[CandidateSpec]:
    """Specs for the configured single-model candidates, the baseline always first.

    The ensemble is built from them.

    Raises:
        ValueError: a name is not a known candidate.
    """
    unknown = [n for n in names if n not in CATEGORY_CANDIDATES and n != ENSEMBLE]
    if unknown:
        raise ValueError(
            f"unknown candidate(s) {unknown}; known: {sorted([*CATEGORY_CANDIDATES, ENSEMBLE])}"
        )
    overrides, grids = overrides or {}, grids if grids is not None else CATEGORY_GRIDS
    singles = [BASELINE, *(n for n in names if n not in (ENSEMBLE, BASELINE))]
    return [
        CandidateSpec(
            n,
            CATEGORY_CANDIDATES[n],
            {} if n == BASELINE else dict(overrides.get(n, {})),
            dict(grids.get(n, {})),
        )
        for n in singles
    ]


# Candidates left out when the encoder's 512 dense columns join the n-grams: the
# calibrated linear SVM was still in its CV after 32 minutes on CLINC150, and
# LightGBM's SVD of the mixed matrix scored 0.14 (docs/benchmarks.md).
NOT_WITH_ENCODER: tuple[str, ...] = ("linear_svc", "lightgbm")


def configured_names(train: TrainSettings) -> tuple[str, ...]:
    """The configured candidate names, less those that cannot read the encoder's block."""
    if not train.encoder:
        return train.candidates
    return tuple(n for n in train.candidates if n not in NOT_WITH_ENCODER)


def configured_specs(train: TrainSettings) -> list[CandidateSpec]:
    """The configured single-model candidates, with their search grids unless search is off."""
    grids = None if train.search else {}
    return category_specs(configured_names(train), train.candidate_params, grids)


def soft_vote(members: Sequence[tuple[str, Any]], frozen: bool) -> VotingClassifier:
    """Average of the members' probabilities; ``frozen`` keeps fitted members as they are."""
    estimators = [(name, FrozenEstimator(model) if frozen else model) for name, model in members]
    return VotingClassifier(estimators, voting="soft")


def describe(estimator: Any) -> dict[str, Any]:
    """Loggable hyperparameters of an estimator and everything inside it."""
    params = estimator.get_params(deep=True)
    keep = (int, float, str, bool, type(None), tuple)
    return {k: v for k, v in params.items() if isinstance(v, keep) and len(str(v)) < 250}


def single_blas_thread() -> threadpool_limits:
    """A context in which estimators fit with one BLAS thread.

    The linear models' BLAS calls are small; with two OpenBLAS threads on a
    2-core machine shared with the Prefect server they ran several times
    slower, and the retraining fits two models at once anyway.
    """
    return threadpool_limits(limits=1, user_api="blas")
