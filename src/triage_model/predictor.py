"""The production artifact: one pyfunc model that triages a frame of tickets.

The model is logged with MLflow's models-from-code (``pyfunc_entry.py``) and
carries this package in its ``code_paths``, so a scoring job loads it with
only MLflow and the declared requirements installed. The fitted pipelines
are stored in skops format and loaded with an allow-list of types, so no
pickle of a project class is ever written or read.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit, softmax
from sklearn import get_config
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from triage_model import blend, escalation, ngrams
from triage_model.features import input_columns, signal_setting
from triage_model.heads import head_answers
from triage_model.sentiment import no_score_reason

OUTPUT_COLUMNS: tuple[str, ...] = (
    "category",
    "category_proba",
    "top3",
    "subcategory",
    "subcategory_proba",
    "type",
    "type_proba",
    "team",
    "team_proba",
    "priority",
    "priority_proba",
    "priority_score",
    "priority_parts",
    "priority_review",
    "sentiment",
    "sentiment_reason",
    "language",
    "escalation",
    "route",
    "needs_review",
    "tier",
)
INPUT_COLUMNS: tuple[str, ...] = (
    "subject",
    "body",
    "channel",
    "customer_tier",
    "customer_ltv",
    "language",
    "repeat_contacts",
)
# The exact types, beyond skops' own defaults (scikit-learn estimators, numpy
# and scipy ufuncs and dtypes, plain containers), that the project's fitted
# pipelines contain; a skops file naming any other type or function refuses to
# load. Exact names, never module prefixes: a prefix such as "numpy." admitted
# numpy.testing._private.utils.runstring, which executes a string. Collected by
# fitting every candidate, the ensemble and the priority stack and listing
# skops.io.get_untrusted_types; tests/unit/test_model_integrity.py fails when a
# pipeline the project builds needs a type outside it.
TRUSTED_TYPES: tuple[str, ...] = (
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.utils._bunch.Bunch",
)


# The category of a ticket the model abstains on: unlike every class it knows
# (its top probability below ``abstain_threshold``, set at training time).
UNKNOWN = "unknown"


# Tiers of a prediction: applied without review, shown to the agent as a suggestion, or
# decided by a human (the same names as the platform's store).
AUTO, SUGGEST, REVIEW = "auto", "suggest", "review"
# Config key: per tier (auto, suggest), each class's lowest confidence for that tier, None
# where the class never reaches it. Models logged before tiers have only review thresholds.
TIER_THRESHOLDS = "tier_thresholds"


def class_thresholds(
    categories: np.ndarray, thresholds: Mapping[str, float | None], default: float
) -> np.ndarray:
    """Each row's threshold for its category: ``default`` where the class has none, inf for None.

    One comparison per class, not a lookup per row: a batch has far more rows than classes.
    """
    out = np.full(len(categories), default, dtype=float)
    for category, value in thresholds.items():
        out[categories == category] = np.inf if value is None else float(value)
    return out


def assign_tiers(
    categories: Sequence[Any] | np.ndarray,
    confidence: Sequence[float] | np.ndarray,
    abstained: Sequence[bool] | np.ndarray,
    thresholds: Mapping[str, Mapping[str, float | None]],
) -> list[str]:
    """The tier of each prediction from its category, confidence and per-class thresholds.

    ``auto`` where the confidence reaches the class's ``auto`` threshold, else
    ``suggest`` where it reaches the ``suggest`` one, else ``review``. A class
    without a threshold for a tier (absent or None) never reaches it, and an
    abstention is always ``review``.

    Args:
        categories: predicted category per row.
        confidence: the category's probability per row (NaN never reaches a tier).
        abstained: where the model abstained.
        thresholds: ``{"auto": {class: float | None}, "suggest": {class: float | None}}``.

    Returns:
        One of ``auto``, ``suggest``, ``review`` per row.
    """
    classes = np.asarray(categories, dtype=object)
    conf = np.asarray(confidence, dtype=float)
    auto = conf >= class_thresholds(classes, thresholds.get(AUTO, {}), np.inf)
    suggest = conf >= class_thresholds(classes, thresholds.get(SUGGEST, {}), np.inf)
    tiers = np.where(auto, AUTO, np.where(suggest, SUGGEST, REVIEW)).astype(object)
    tiers[np.asarray(abstained, dtype=bool)] = REVIEW
    return tiers.tolist()


class UntrustedModelError(ValueError):
    """A model file names a type or function outside the allow-list; nothing in it was run."""


def input_frame(tickets: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``tickets`` that the model's signature names.

    MLflow would drop the others itself, with a warning on every call.
    """
    return tickets[[c for c in INPUT_COLUMNS if c in tickets.columns]]


def category_proba_columns(classes: list[str]) -> list[str]:
    """Column names under which category probabilities feed the priority model."""
    return [f"p_category_{i}" for i in range(len(classes))]


def priority_text_columns(levels: list[str]) -> list[str]:
    """Column names of the text-only priority probabilities (the stacked text signal)."""
    return [f"p_priority_text_{i}" for i in range(len(levels))]


# Config key: set, the priority booster's raw scores are added to the text
# model's log-probabilities (it was fitted with them as init_score). Models
# logged before it predict with the booster alone.
PRIORITY_STARTS_FROM_TEXT = "priority_starts_from_text"


def text_margin(proba: np.ndarray) -> np.ndarray:
    """The priority booster's starting scores: the text model's log-probabilities.

    For two levels, its log-odds (LightGBM's binary booster has one score per row).
    """
    logs = np.log(np.clip(proba, 1e-12, 1.0))
    return logs[:, 1] - logs[:, 0] if proba.shape[1] == 2 else logs


def margin_proba(raw: np.ndarray) -> np.ndarray:
    """Level probabilities from raw scores (the booster's plus the margin).

    LightGBM's own link: the sigmoid for two levels, the softmax for more.
    """
    if raw.ndim == 1:
        positive = expit(raw)
        return np.column_stack([1.0 - positive, positive])
    return softmax(raw, axis=1)


# Config key: the pretrained text encoder's settings (``weight``, ``max_chars``) when the
# model was trained with its vectors; absent, the model reads the n-grams alone.
ENCODER = "encoder"


def encoder_block(texts: Sequence[str], settings: Mapping[str, Any]) -> sparse.csr_matrix:
    """The encoder's sentence vectors of ``texts``, mapped from [-1, 1] to [0, ``weight``]."""
    from triage_model import encoder

    vectors = encoder.embed(list(texts), max_chars=int(settings["max_chars"]))
    weight = float(settings["weight"])
    return sparse.csr_matrix((vectors.astype(np.float64) + 1.0) * (weight / 2.0))


def with_encoder_block(grams: Any, texts: Sequence[str], settings: Mapping[str, Any] | None) -> Any:
    """``grams`` with the encoder's block appended, or as it is when ``settings`` is None."""
    if not settings:
        return grams
    return sparse.hstack([grams, encoder_block(texts, settings)]).tocsr()


PARTS: tuple[str, ...] = ("features", "category", "priority_text", "priority_category", "priority")
# Artifact names of the heads' fitted classifiers: ``head_<name>``.
HEAD_PREFIX = "head_"

# The priority scale (most urgent first) of a config without ``priority_levels``.
DEFAULT_PRIORITY_SCALE: tuple[str, ...] = ("critical", "urgent", "high", "medium", "normal", "low")


def level_probability(
    proba: np.ndarray | None, levels: Sequence[str], answered: Sequence[str | None]
) -> np.ndarray:
    """The model's probability of each row's answered level (NaN where none or not a model level).

    After escalation the answered level may not be the model's most probable one.
    """
    rows = len(answered)
    if proba is None or rows == 0:
        return np.full(rows, np.nan)
    column = {level: j for j, level in enumerate(levels)}
    index = np.array([column.get(level, -1) for level in answered], dtype=int)
    picked = proba[np.arange(rows), np.maximum(index, 0)]
    return np.where(index >= 0, picked, np.nan)


def sentiment_reasons(sentiment: np.ndarray, inputs: Mapping[str, Any]) -> list[str | None]:
    """Why a row has no sentiment (None where it has one), from its detected language."""
    return [
        None if np.isfinite(score) else no_score_reason(language)
        for score, language in zip(sentiment.tolist(), inputs["language"])
    ]


@dataclass
class TriagePredictor:
    """Fitted parts plus serving config.

    ``features`` turns raw tickets into the shared n-gram matrix, computed
    once per prediction. ``category`` reads that matrix. The priority model
    is a LightGBM ``priority`` pipeline on stacked probabilities: those of a
    linear text model of priority (``priority_text``, on the matrix's word
    block) and of a naive-Bayes category model of its own
    (``priority_category``, on the whole matrix), plus sentiment, escalation
    signals and customer metadata. (Where cross-validation preferred it, the
    priority model is instead a plain linear model on the whole matrix,
    ``priority_text`` alone.) With ``PRIORITY_STARTS_FROM_TEXT`` in
    the config its boosting starts from the text model's log-probabilities:
    the booster's rounds are corrections to the text model. ``heads`` are
    the subcategory, type and team classifiers, on the same matrix
    (:mod:`triage_model.heads`); a model without them answers None there.
    """

    features: Any
    category: Any
    priority: Any | None = None
    priority_text: Any | None = None
    priority_category: Any | None = None
    config: dict[str, Any] = field(default_factory=dict)
    # Head classifiers by name (any of triage_model.heads.HEADS) on the shared matrix.
    heads: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        """Category labels in the order of the probability columns."""
        return [str(c) for c in self.category.classes_]

    def predict(self, tickets: pd.DataFrame) -> pd.DataFrame:
        """Triage raw tickets: every column of :data:`OUTPUT_COLUMNS`, in that order.

        Category (with abstention), the heads, the priority raised by escalation
        signals and its blended score, sentiment, language, then tiers and routes.
        """
        if len(tickets) == 0:
            # scikit-learn refuses zero rows; an empty batch simply has no predictions.
            return pd.DataFrame({column: pd.Series(dtype=object) for column in OUTPUT_COLUMNS})
        # Columns, not frames, from here on: a one-ticket request spent most of its time in pandas.
        inputs = input_columns(tickets, self.config)
        matrix = self.matrix(inputs)
        out = self._category_outputs(self.category.predict_proba(matrix))
        abstained = self._abstained(out["category_proba"])
        out["category"] = np.where(abstained, UNKNOWN, out["category"])
        out.update(head_answers(self.heads, matrix, out["category"], self.config))
        signals = escalation.signals(
            inputs["text"],
            np.asarray(inputs["repeat_contacts"], dtype=float),
            signal_setting(self.config, "escalation_terms"),
            int(signal_setting(self.config, "repeat_contacts")),
        )
        out.update(self._priority_answers(inputs, matrix, signals))
        out.update(self._signal_answers(inputs, signals, out["raised"]))
        out["needs_review"], out["tier"] = self._tiers(
            out["category"], out["category_proba"], abstained
        )
        out["tier"] = blend.escalated_tiers(out["tier"], signals)
        out["route"], unsupported = self._routes(out["category"], out["team"], inputs["language"])
        out["needs_review"] = np.asarray(out["needs_review"], dtype=bool) | unsupported
        out["tier"] = np.where(unsupported, REVIEW, np.asarray(out["tier"], dtype=object)).tolist()
        return pd.DataFrame({column: out[column] for column in OUTPUT_COLUMNS})

    def _priority_answers(
        self, inputs: Mapping[str, Any], matrix: Any, signals: Sequence[Sequence[str]]
    ) -> dict[str, Any]:
        """Priority raised by the escalation rule, its model probability, score and parts.

        ``raised`` marks the rows whose priority a signal raised. Without a
        priority model the priority is None and the score NaN (its parts keep
        value and sentiment).
        """
        rows = len(inputs["text"])
        levels = self.priority_levels
        proba = self._priority_matrix(inputs, matrix)
        found: list[Any] = [None] * rows
        if proba is not None:
            found = np.asarray(levels, dtype=object)[proba.argmax(axis=1)].tolist()
        scale = list(self.config.get("priority_levels") or DEFAULT_PRIORITY_SCALE)
        rule = signal_setting(self.config, "escalation_priority")
        priority, raised = blend.escalated_priority(found, signals, rule, scale)
        score, parts = blend.priority_score(
            proba,
            levels,
            scale,
            np.asarray(inputs["customer_ltv"], dtype=float),
            np.asarray(inputs["sentiment"], dtype=float),
            signal_setting(self.config, "priority_weights"),
            signal_setting(self.config, "ltv_quantiles"),
        )
        if proba is None:  # the contract's score is the model's, blended: none without it
            score = np.full(rows, np.nan)
        return {
            "priority": priority,
            "priority_proba": level_probability(proba, levels, priority),
            "priority_score": np.asarray(score, dtype=float),
            "priority_parts": list(parts),
            "raised": np.asarray(raised, dtype=bool),
        }

    def _signal_answers(
        self, inputs: Mapping[str, Any], signals: Sequence[Sequence[str]], raised: np.ndarray
    ) -> dict[str, Any]:
        """Sentiment (and why it is missing), language, escalation JSON and the review flag."""
        sentiment = np.asarray(inputs["sentiment"], dtype=float)
        negative = float(signal_setting(self.config, "negative_sentiment"))
        with np.errstate(invalid="ignore"):
            review = (sentiment <= negative) | raised
        return {
            "sentiment": sentiment,
            "sentiment_reason": sentiment_reasons(sentiment, inputs),
            "language": list(inputs["language"]),
            "escalation": [json.dumps(list(names)) for names in signals],
            "priority_review": review,
        }

    def _routes(
        self, categories: np.ndarray, teams: Sequence[str | None], languages: Sequence[str]
    ) -> tuple[list[str], np.ndarray]:
        """The team where its head answered, else the category's route; languages override last.

        Returns the routes and where the language is unsupported.
        """
        routes = self.config.get("routes", {})
        default = self.config.get("default_route", "general-queue")
        by_category = [
            team if team is not None else routes.get(c, default)
            for c, team in zip(categories, teams)
        ]
        routed, unsupported = blend.language_routes(
            by_category,
            languages,
            signal_setting(self.config, "languages"),
            signal_setting(self.config, "language_routes"),
            signal_setting(self.config, "unsupported_route"),
        )
        return list(routed), np.asarray(unsupported, dtype=bool)

    def _tiers(
        self, categories: np.ndarray, confidence: np.ndarray, abstained: np.ndarray
    ) -> tuple[np.ndarray, list[str]]:
        """Review flags and tiers: from the tier thresholds, or the flat review ones before them."""
        configured = self.config.get(TIER_THRESHOLDS)
        if configured is not None:
            tiers = assign_tiers(categories, confidence, abstained, configured)
            return np.asarray(tiers, dtype=object) == REVIEW, tiers
        # A model trained before tiers automates nothing: what it does not flag is a suggestion.
        flat = class_thresholds(
            np.asarray(categories, dtype=object),
            self.config.get("review_thresholds", {}),
            float(self.config.get("review_threshold", 0.5)),
        )
        review = np.asarray(abstained, dtype=bool) | (np.asarray(confidence, dtype=float) < flat)
        return review, np.where(review, REVIEW, SUGGEST).astype(object).tolist()

    def matrix(self, inputs: Mapping[str, Any]) -> Any:
        """The shared matrix every model reads: the n-grams, then the encoder's block if any.

        A model trained with the pretrained encoder (config ``encoder``) reads its
        sentence vectors after the n-gram columns, scaled to [0, weight] so that
        every candidate, naive Bayes included, can read them.
        """
        grams = transform_columns(self.features, inputs)
        return with_encoder_block(grams, inputs["text"], self.config.get(ENCODER))

    def _abstained(self, confidence: np.ndarray) -> np.ndarray:
        """Where the model abstains: top probability below the trained threshold (if one)."""
        threshold = self.config.get("abstain_threshold")
        if threshold is None:
            return np.zeros(len(confidence), dtype=bool)
        return np.asarray(confidence) < float(threshold)

    @property
    def priority_levels(self) -> list[str]:
        """Priority levels in the order of the probability columns (empty without a model)."""
        model = self.priority if self.priority is not None else self.priority_text
        return [] if model is None else [str(c) for c in model.classes_]

    def priority_probabilities(self, tickets: pd.DataFrame) -> pd.DataFrame:
        """Probability of each priority level (columns) for raw tickets."""
        inputs = input_columns(tickets, self.config)
        proba = self.priority_proba(inputs, self.matrix(inputs))
        return pd.DataFrame(proba, columns=self.priority_levels)

    def priority_proba(self, inputs: Mapping[str, Any], matrix: Any) -> np.ndarray:
        """Priority probabilities from model-input columns and the shared matrix.

        A plain priority model (``priority_text`` alone, no booster) reads the
        whole matrix; the stack reads what :meth:`priority_inputs` gives it.
        """
        if self.priority is None:
            return self.priority_text.predict_proba(matrix)
        return self._priority_proba(self.priority_inputs(inputs, matrix))

    def priority_inputs(self, inputs: Mapping[str, Any], matrix: Any) -> dict[str, Any]:
        """The columns the LightGBM priority model reads, from model-input columns or a frame."""
        # The text model reads the leading columns it was fitted on, the word
        # block (models logged before it was sliced here read every column).
        words = matrix[:, : self.priority_text.n_features_in_]
        return priority_columns(
            inputs,
            self.priority_category.predict_proba(matrix),
            list(self.priority_category.classes_),
            self.priority_text.predict_proba(words),
            list(self.priority_text.classes_),
        )

    def _category_outputs(self, proba: np.ndarray) -> dict[str, Any]:
        classes = np.array(self.classes, dtype=object)
        order = np.argsort(-proba, axis=1)[:, :3]
        best = order[:, 0]
        return {
            "category": classes[best],
            "category_proba": proba[np.arange(len(proba)), best],
            "top3": top_json(classes.tolist(), proba, order),
        }

    def _priority_matrix(self, inputs: Mapping[str, Any], matrix: Any) -> np.ndarray | None:
        """Priority probabilities (columns :attr:`priority_levels`); None without a model."""
        if self.priority is None and self.priority_text is None:
            return None
        return self.priority_proba(inputs, matrix)

    def _priority_proba(self, columns: Mapping[str, Any]) -> np.ndarray:
        """The priority levels' probabilities for ``columns`` (see :meth:`priority_inputs`)."""
        *steps, (_, model) = self.priority.steps
        direct = len(steps) == 1 and type(model).__name__ == "LGBMClassifier"
        if not self.config.get(PRIORITY_STARTS_FROM_TEXT):
            if not direct or model.n_classes_ <= 2:
                return self.priority.predict_proba(pd.DataFrame(columns))
            # The booster itself, on one thread: LightGBM's scikit-learn wrapper
            # re-validates the matrix, and more threads only add start-up cost on
            # a few rows. For more than two classes it returns the probabilities.
            return model.booster_.predict(transform_columns(steps[0][1], columns), num_threads=1)
        raw = (
            model.booster_.predict(
                transform_columns(steps[0][1], columns), raw_score=True, num_threads=1
            )
            if direct
            else self.priority.predict(pd.DataFrame(columns), raw_score=True)
        )
        text = np.column_stack(
            [columns[c] for c in priority_text_columns(list(self.priority_text.classes_))]
        )
        return margin_proba(raw + text_margin(text))


def top_json(classes: list[Any], proba: np.ndarray, order: np.ndarray) -> list[str]:
    """Per row, ``json.dumps([{"category": c, "proba": round(p, 4)}, ...])`` of the classes picked.

    Written from each class's JSON once and each probability's repr, which
    is how ``json`` writes a float, because one ``json.dumps`` per row cost
    most of the time. When a picked probability is not finite (which
    ``json`` spells differently), every row takes ``json.dumps``.
    """
    picked = np.take_along_axis(proba, order, axis=1)
    if not np.isfinite(picked).all():
        return [
            json.dumps(
                [{"category": classes[j], "proba": round(float(p), 4)} for p, j in zip(row, idx)]
            )
            for row, idx in zip(picked.tolist(), order.tolist())
        ]
    names = [json.dumps(c) for c in classes]
    return [
        "["
        + ", ".join(
            f'{{"category": {names[j]}, "proba": {round(p, 4)!r}}}' for p, j in zip(row, idx)
        )
        + "]"
        for row, idx in zip(picked.tolist(), order.tolist())
    ]


def transform_columns(transformer: Any, columns: Mapping[str, Any]) -> Any:
    """``transformer.transform`` of a frame of ``columns`` (names to values, row order), no frame.

    For the fitted ``ColumnTransformer`` shapes this package builds: parts
    that read one text column (the vectorisers), one-hot encoders that ignore
    unknown values, and passed-through numbers, stacked as the library stacks
    them (char n-gram values to their last bits: see :mod:`triage_model.ngrams`).
    Anything else, or any transformer set to return other containers, is
    handed to the library with the frame built.

    Args:
        transformer: A fitted transformer, usually a ``ColumnTransformer``.
        columns: Column names to values, each in row order.

    Returns:
        What ``transformer.transform(pd.DataFrame(columns))`` returns.
    """
    fitted = getattr(transformer, "transformers_", None)
    parts = [(part, used) for _, part, used in fitted or [] if not _is_dropped(part, used)]
    if (
        fitted is None
        or not default_containers(transformer)
        or not all(_reads_directly(p, u) for p, u in parts)
    ):
        return transformer.transform(pd.DataFrame(columns))
    blocks = [_transform_part(part, used, columns) for part, used in parts]
    if transformer.sparse_output_:
        return sparse.hstack(blocks).tocsr()
    return np.hstack([block.toarray() if sparse.issparse(block) else block for block in blocks])


def _is_dropped(part: Any, used: Any) -> bool:
    return (isinstance(part, str) and part == "drop") or (isinstance(used, list) and not used)


def default_containers(estimator: Any) -> bool:
    """Whether ``estimator.transform`` returns scikit-learn's default containers.

    The default is arrays and sparse matrices; ``set_output`` (on the estimator
    or globally) and the global ``sparse_interface`` change it. scikit-learn
    has no public way to read what ``set_output`` stored on one estimator, so
    this is the one place that reads it (``_sklearn_output_config``);
    ``tests/unit/test_runtime.py`` fails if the library stops keeping it there.

    Args:
        estimator: A fitted scikit-learn transformer.

    Returns:
        True when neither the global config nor the estimator asks for other containers.
    """
    config = get_config()
    if config["transform_output"] != "default":
        return False
    if config.get("sparse_interface", "spmatrix") != "spmatrix":
        return False
    stored = getattr(estimator, "_sklearn_output_config", {})
    return stored.get("transform", "default") == "default"


def _is_passthrough(part: Any) -> bool:
    # A fitted ColumnTransformer holds "passthrough" as an identity FunctionTransformer.
    identity = isinstance(part, FunctionTransformer) and part.func is None and not part.validate
    return identity or (isinstance(part, str) and part == "passthrough")


def _reads_directly(part: Any, used: Any) -> bool:
    if _is_passthrough(part):
        return (
            isinstance(used, list)
            and all(isinstance(c, str) for c in used)
            and default_containers(part)
        )
    if isinstance(part, OneHotEncoder):
        # Either parameter set groups infrequent categories, which one_hot does not.
        return (
            isinstance(used, list)
            and part.handle_unknown == "ignore"
            and part.drop is None
            and part.min_frequency is None
            and part.max_categories is None
            and default_containers(part)
        )
    return isinstance(used, str) and hasattr(part, "vocabulary_") and default_containers(part)


def _transform_part(part: Any, used: Any, columns: Mapping[str, Any]) -> Any:
    if _is_passthrough(part):
        return np.column_stack([np.asarray(columns[c], dtype=float) for c in used])
    if isinstance(part, OneHotEncoder):
        return one_hot(part, [columns[c] for c in used])
    return ngrams.transform(part, list(columns[used]))


def one_hot(encoder: OneHotEncoder, values: Sequence[Sequence[Any]]) -> np.ndarray:
    """A fitted one-hot encoder's output for one sequence of values per input column.

    Unknown values are all zero, as with ``handle_unknown="ignore"``.
    """
    rows = len(values[0]) if values else 0
    blocks = []
    for categories, column in zip(encoder.categories_, values):
        block = np.zeros((rows, len(categories)), dtype=encoder.dtype)
        index = {category: i for i, category in enumerate(categories.tolist())}
        for row, value in enumerate(column):
            if value in index:
                block[row, index[value]] = 1
        blocks.append(block)
    return np.hstack(blocks) if blocks else np.zeros((rows, 0), dtype=encoder.dtype)


def priority_columns(
    inputs: Mapping[str, Any],
    category_proba: np.ndarray,
    categories: list[Any],
    text_proba: np.ndarray,
    levels: list[Any],
) -> dict[str, Any]:
    """Model-input columns plus the stacked category and text-priority probabilities."""
    stacked = {
        **dict(zip(category_proba_columns([str(c) for c in categories]), category_proba.T)),
        **dict(zip(priority_text_columns([str(c) for c in levels]), text_proba.T)),
    }
    return {**dict(inputs.items()), **stacked}


def priority_frame(
    inputs: pd.DataFrame,
    category_proba: np.ndarray,
    categories: list[Any],
    text_proba: np.ndarray,
    levels: list[Any],
) -> pd.DataFrame:
    """:func:`priority_columns` as a frame, for training.

    The served model passes the columns as they are.
    """
    return pd.DataFrame(
        priority_columns(
            inputs.reset_index(drop=True), category_proba, categories, text_proba, levels
        )
    )


def trusted_types(path: Path) -> list[str]:
    """The types of a skops file beyond skops' defaults, provided every one is allow-listed.

    Only the file's schema is read (skops builds its tree without importing
    or calling anything), so a refused file has run nothing.

    Raises:
        UntrustedModelError: the file names a type or function outside ``TRUSTED_TYPES``,
            or is not a skops file.
    """
    import skops.io as sio

    try:
        found = sio.get_untrusted_types(file=path)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise UntrustedModelError(f"{path.name} is not a readable skops file: {exc}") from exc
    refused = sorted(set(found) - set(TRUSTED_TYPES))
    if refused:
        raise UntrustedModelError(f"{path.name} contains types outside the allow-list: {refused}")
    return found


def load_pipeline(path: Path) -> Any:
    """Load a skops pipeline, its types checked against the allow-list, vocabularies unpacked.

    Raises:
        UntrustedModelError: see :func:`trusted_types`.
    """
    import skops.io as sio

    trusted_types(path)
    # skops audits the tree again against the same exact list before it constructs anything.
    pipeline = sio.load(path, trusted=list(TRUSTED_TYPES))
    unpack_vocabularies(pipeline)
    return pipeline


def _fitted_parts(estimator: Any) -> Iterator[Any]:
    """The estimator and every fitted step or column transformer inside it."""
    yield estimator
    for child in getattr(estimator, "named_steps", {}).values():
        yield from _fitted_parts(child)
    for _, child, _ in getattr(estimator, "transformers_", []):
        yield from _fitted_parts(child)


def _vocabulary_parts(pipeline: Any) -> list[Any]:
    """Fitted vectorizers inside ``pipeline`` whose vocabulary maps each term to its column."""
    return [
        part
        for part in _fitted_parts(pipeline)
        if isinstance(getattr(part, "vocabulary_", None), dict)
    ]


def pack_vocabularies(pipeline: Any) -> None:
    """Replace fitted vectorizers' vocabularies by arrays of their terms in column order, in place.

    skops writes a dict as one indented JSON node per entry, encoded in pure
    Python, which made the n-gram vocabularies of a large retraining slow to
    save and to load (and MLflow loads the model once more to check the
    input example). One array of terms is a single ``.npy`` member.
    :func:`unpack_vocabularies` restores the mappings.
    """
    for part in _vocabulary_parts(pipeline):
        terms = sorted(part.vocabulary_, key=part.vocabulary_.__getitem__)
        part.vocabulary_ = np.array(terms, dtype=str)


def unpack_vocabularies(pipeline: Any) -> None:
    """Turn vocabularies packed by :func:`pack_vocabularies` back into term-to-column maps."""
    for part in _fitted_parts(pipeline):
        terms = getattr(part, "vocabulary_", None)
        if isinstance(terms, np.ndarray):
            part.vocabulary_ = {term: index for index, term in enumerate(terms.tolist())}


def save_pipeline(pipeline: Any, path: Path) -> None:
    """Write one fitted pipeline as a skops file; ``pipeline`` is left as it was."""
    import skops.io as sio

    pack_vocabularies(pipeline)
    try:
        sio.dump(pipeline, path)
    finally:
        unpack_vocabularies(pipeline)


def save_predictor(predictor: TriagePredictor, directory: Path) -> dict[str, str]:
    """Write the predictor's parts as skops + JSON files; returns MLflow artifacts."""
    directory.mkdir(parents=True, exist_ok=True)
    artifacts = {"config": directory / "config.json"}
    for part in PARTS:
        if getattr(predictor, part) is not None:
            artifacts[part] = directory / f"{part}.skops"
            save_pipeline(getattr(predictor, part), artifacts[part])
    for name, model in predictor.heads.items():
        artifacts[HEAD_PREFIX + name] = directory / f"{HEAD_PREFIX}{name}.skops"
        save_pipeline(model, artifacts[HEAD_PREFIX + name])
    artifacts["config"].write_text(json.dumps(predictor.config, indent=2, sort_keys=True))
    return {name: str(path) for name, path in artifacts.items()}


def load_predictor(artifacts: dict[str, str]) -> TriagePredictor:
    """Rebuild a predictor from the files :func:`save_predictor` wrote."""
    parts = {p: load_pipeline(Path(artifacts[p])) for p in PARTS if p in artifacts}
    heads = {
        name.removeprefix(HEAD_PREFIX): load_pipeline(Path(path))
        for name, path in artifacts.items()
        if name.startswith(HEAD_PREFIX)
    }
    config = json.loads(Path(artifacts["config"]).read_text())
    return TriagePredictor(**parts, config=config, heads=heads)
