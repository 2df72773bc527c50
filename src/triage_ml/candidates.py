"""Factories of unfitted scikit-learn / LightGBM pipelines.

Every pipeline reads the frame built by :func:`triage_ml.features.model_inputs`,
so feature steps and model are one object that skops can save and load.
Hyperparameters come from ``CandidateSpec.params``, never from flows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lightgbm import LGBMClassifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import LinearSVC

from triage_ml.features import ESCALATION_COLUMNS, META_CATEGORICAL, META_NUMERIC

Builder = Callable[[Mapping[str, Any], int], Pipeline]


@dataclass(frozen=True)
class CandidateSpec:
    """A named category model: how to build it and its hyperparameters."""

    name: str
    build: Builder
    params: Mapping[str, Any] = field(default_factory=dict)


def word_char_tfidf(params: Mapping[str, Any]) -> ColumnTransformer:
    """Word 1-2 grams and char_wb 2-5 grams of the ticket text."""
    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=params.get("word_features", 200_000))
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                           max_features=params.get("char_features", 300_000))
    return ColumnTransformer([("word", word, "text"), ("char", char, "text")])


def word_tfidf(params: Mapping[str, Any], max_features: int | None = None) -> ColumnTransformer:
    """Word 1-2 grams of the ticket text only."""
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                 max_features=max_features or params.get("word_features", 100_000))
    return ColumnTransformer([("word", vectorizer, "text")])


def build_logreg(params: Mapping[str, Any], seed: int) -> Pipeline:
    """Regularized logistic regression on word and char n-grams."""
    model = LogisticRegression(C=params.get("C", 10.0), class_weight="balanced", max_iter=2000, random_state=seed)
    return Pipeline([("features", word_char_tfidf(params)), ("model", model)])


def build_linear_svc(params: Mapping[str, Any], seed: int) -> Pipeline:
    """Margin-based linear SVM with sigmoid-calibrated probabilities."""
    svc = LinearSVC(C=params.get("C", 0.5), class_weight="balanced", random_state=seed)
    model = CalibratedClassifierCV(svc, method="sigmoid", cv=3)
    return Pipeline([("features", word_char_tfidf(params)), ("model", model)])


def build_complement_nb(params: Mapping[str, Any], seed: int) -> Pipeline:
    """Complement naive Bayes, robust to class imbalance."""
    return Pipeline([("features", word_tfidf(params)), ("model", ComplementNB(alpha=params.get("alpha", 0.3)))])


def build_lightgbm(params: Mapping[str, Any], seed: int) -> Pipeline:
    """Gradient-boosted trees on a 100-dimensional SVD of the n-grams.

    LightGBM on the raw sparse n-grams was several times slower here for a
    lower macro-F1, so the text is compressed first (latent semantic analysis).
    """
    model = LGBMClassifier(
        n_estimators=params.get("n_estimators", 200), learning_rate=params.get("learning_rate", 0.1),
        num_leaves=params.get("num_leaves", 15), colsample_bytree=0.5, class_weight="balanced",
        random_state=seed, n_jobs=params.get("n_jobs", 1), verbose=-1,
    )
    svd = TruncatedSVD(n_components=params.get("svd_components", 100), random_state=seed)
    return Pipeline([("features", word_char_tfidf(params)), ("svd", svd), ("model", model)])


CATEGORY_CANDIDATES: dict[str, Builder] = {
    "logreg": build_logreg,
    "linear_svc": build_linear_svc,
    "complement_nb": build_complement_nb,
    "lightgbm": build_lightgbm,
}


def category_specs(names: tuple[str, ...], overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[CandidateSpec]:
    """Specs for the configured candidate names.

    Raises:
        ValueError: a name is not a known candidate.
    """
    unknown = [n for n in names if n not in CATEGORY_CANDIDATES]
    if unknown:
        raise ValueError(f"unknown candidate(s) {unknown}; known: {sorted(CATEGORY_CANDIDATES)}")
    overrides = overrides or {}
    return [CandidateSpec(n, CATEGORY_CANDIDATES[n], dict(overrides.get(n, {}))) for n in names]


def build_priority_text(seed: int, params: Mapping[str, Any] | None = None) -> Pipeline:
    """Linear text model of priority; its out-of-fold probabilities feed LightGBM."""
    params = params or {}
    model = LogisticRegression(C=params.get("text_C", 4.0), class_weight="balanced", max_iter=1000, random_state=seed)
    return Pipeline([("features", word_tfidf(params, max_features=params.get("word_features", 50_000))), ("model", model)])


def build_priority(stacked_columns: list[str], seed: int, params: Mapping[str, Any] | None = None) -> Pipeline:
    """LightGBM priority model on stacked text/category probabilities, sentiment and metadata."""
    params = params or {}
    features = ColumnTransformer([
        ("meta", OneHotEncoder(handle_unknown="ignore"), list(META_CATEGORICAL)),
        ("numeric", "passthrough", [*META_NUMERIC, "sentiment", *ESCALATION_COLUMNS, *stacked_columns]),
    ])
    model = LGBMClassifier(
        n_estimators=params.get("n_estimators", 300), learning_rate=params.get("learning_rate", 0.05),
        num_leaves=params.get("num_leaves", 15), colsample_bytree=0.7, class_weight="balanced",
        random_state=seed, n_jobs=params.get("n_jobs", 1), verbose=-1,
    )
    return Pipeline([("features", features), ("model", model)])


def describe(pipeline: Pipeline) -> dict[str, Any]:
    """Loggable hyperparameters of a pipeline's final estimator and features."""
    params = pipeline.get_params(deep=True)
    keep = (int, float, str, bool, type(None), tuple)
    return {k: v for k, v in params.items() if isinstance(v, keep) and "__" in k and len(str(v)) < 250}
