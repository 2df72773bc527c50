"""Automation at a target precision, per class: tier thresholds, measured precision, coverage.

A prediction's tier is ``auto`` (applied without review), ``suggest`` (shown
to the agent) or ``review`` (a human decides). For each class, a tier's
threshold is the lowest confidence at which the precision of that class's
predictions from that confidence up still reaches the tier's target, judged
by a one-sided lower confidence bound of that precision (Clopper-Pearson), so
a small class cannot reach ``auto`` by luck: six right answers out of six
show a precision of at least 0.61 at 95 %, not 0.95. Thresholds are set on
out-of-fold predictions at training (``retrain.serving_config``) and
re-estimated on live labeled rows (:func:`live_estimate`); the model runtime
applies them (``triage_model.predictor.assign_tiers``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from triage_ml.settings import AutomationSettings
from triage_ml.store.tables import AUTO, AUTO_APPLIED, REVIEW, SUGGEST
from triage_model import blend
from triage_model.features import signal_setting
from triage_model.predictor import UNKNOWN, assign_tiers, class_thresholds

Thresholds = dict[str, dict[str, float | None]]
# The tiers a threshold is estimated for (review is what reaches neither).
TARGET_TIERS: tuple[str, ...] = (AUTO, SUGGEST)
# Surest first: a tier's target bounds its rows together with those of the surer tiers.
TIER_RANK: dict[str, int] = {AUTO: 0, SUGGEST: 1, REVIEW: 2}
MEASURED_COLUMNS: tuple[str, ...] = (
    "category",
    "tier",
    "predictions",
    "correct",
    "precision",
    "coverage",
    "precision_at_or_above",
)


@dataclass(frozen=True)
class Estimate:
    """Tier thresholds with what they rest on, in the shape the store keeps.

    Attributes:
        thresholds: ``{tier: {class: threshold or None}}`` (None: the class never reaches it).
        precision_low: ``{tier: {class: lower bound of precision at the threshold or None}}``.
        rows: labeled predictions of each class the estimate read.
    """

    thresholds: Thresholds
    precision_low: Thresholds
    rows: dict[str, int]


def targets(automation: AutomationSettings) -> dict[str, float]:
    """The precision each tier must keep."""
    return {AUTO: automation.auto_precision, SUGGEST: automation.suggest_precision}


def precision_lower_bounds(correct: np.ndarray, confidence_level: float) -> np.ndarray:
    """One-sided lower Clopper-Pearson bound of the precision of the first k rows, for every k.

    ``beta.ppf(1 - level, k, n - k + 1)`` is the exact (Clopper-Pearson) lower
    bound that ``scipy.stats.binomtest(k, n).proportion_ci(2 * level - 1,
    "exact")`` gives one row at a time; as a vectorised ufunc it bounds every
    prefix of a class's predictions in one call (tests/unit/test_tiers.py checks
    the two agree). No right answer at all bounds the precision at 0.
    """
    hits = np.cumsum(np.asarray(correct, dtype=float))
    seen = np.arange(1, len(hits) + 1, dtype=float)
    with np.errstate(invalid="ignore"):
        low = stats.beta.ppf(1.0 - confidence_level, hits, seen - hits + 1.0)
    return np.where(hits > 0, low, 0.0)


def class_threshold(
    confidence: np.ndarray, correct: np.ndarray, target: float, confidence_level: float
) -> tuple[float | None, float | None]:
    """The lowest confidence whose predictions (it and above) show ``target`` precision.

    Args:
        confidence: one class's predictions' confidences.
        correct: whether each of those predictions was right.
        target: the precision the tier must keep.
        confidence_level: how sure the lower bound must be (one-sided).

    Returns:
        The threshold and the precision bound there, or (None, None) when no
        threshold reaches ``target``.
    """
    conf = np.asarray(confidence, dtype=float)
    finite = np.isfinite(conf)
    order = np.argsort(-conf[finite], kind="stable")
    conf, hits = conf[finite][order], np.asarray(correct, dtype=bool)[finite][order]
    low = precision_lower_bounds(hits, confidence_level)
    # A cut between equal confidences is no threshold: tied rows are in or out together.
    cuts = np.append(conf[1:] < conf[:-1], True) if len(conf) else np.zeros(0, dtype=bool)
    reached = np.flatnonzero(cuts & (low >= target))
    if not len(reached):
        return None, None
    last = reached[-1]
    return float(conf[last]), float(low[last])


def estimate(
    classes: Sequence[str],
    truth: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    automation: AutomationSettings,
) -> Estimate:
    """Per-class ``auto`` and ``suggest`` thresholds of labeled predictions, with their bounds.

    Args:
        classes: the classes to set thresholds for (a class never predicted gets None).
        truth: each row's true class.
        predicted: each row's predicted class.
        confidence: each row's confidence in its predicted class.
        automation: the precision targets and the bound's confidence level.
    """
    truth, predicted = np.asarray(truth, dtype=object), np.asarray(predicted, dtype=object)
    confidence = np.asarray(confidence, dtype=float)
    thresholds: Thresholds = {tier: {} for tier in TARGET_TIERS}
    lows: Thresholds = {tier: {} for tier in TARGET_TIERS}
    rows: dict[str, int] = {}
    for category in classes:
        mine = predicted == category
        rows[category] = int(mine.sum())
        correct = truth[mine] == category
        for tier, target in targets(automation).items():
            thresholds[tier][category], lows[tier][category] = class_threshold(
                confidence[mine], correct, target, automation.confidence
            )
    return Estimate(thresholds, lows, rows)


def thresholds_for(
    classes: Sequence[str],
    truth: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    automation: AutomationSettings,
) -> Thresholds:
    """``{"auto": {class: float | None}, "suggest": {...}}``: see :func:`estimate`."""
    return estimate(classes, truth, predicted, confidence, automation).thresholds


def labeled(frame: pd.DataFrame) -> pd.DataFrame:
    """Served predictions with a final category an agent or the source gave.

    Auto-applied labels are left out: they equal the prediction by construction.
    """
    known = frame["final_category"].notna()
    if "final_category_source" in frame:
        known &= frame["final_category_source"] != AUTO_APPLIED
    return frame[known]


def live_rows(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth, predicted class and confidence of the labeled rows of a joined frame.

    Args:
        frame: served predictions joined to final labels (``monitoring.live.joined``):
            ``category``, ``category_proba``, ``final_category`` and, if known,
            ``final_category_source``.
    """
    rows = labeled(frame)
    return (
        rows["final_category"].astype(str).to_numpy(dtype=object),
        rows["category"].astype(str).to_numpy(dtype=object),
        rows["category_proba"].to_numpy(dtype=float),
    )


def live_estimate(frame: pd.DataFrame, automation: AutomationSettings) -> Estimate:
    """Thresholds re-estimated from live labeled rows, for the classes that have enough.

    A class with fewer than ``automation.min_live_rows`` labeled predictions is
    left out, so it keeps the thresholds it had (see :func:`apply_thresholds`).
    """
    truth, predicted, confidence = live_rows(frame)
    counts = pd.Series(predicted, dtype=object).value_counts()
    enough = sorted(
        str(c) for c, n in counts.items() if n >= automation.min_live_rows and c != UNKNOWN
    )
    return estimate(enough, truth, predicted, confidence, automation)


def measured_precision(frame: pd.DataFrame) -> pd.DataFrame:
    """Precision of each class's served predictions in each tier, on the labeled rows.

    Args:
        frame: predicted ``category``, served ``tier`` and ``final_category``
            (NaN when not known yet), optionally ``final_category_source``.

    Returns:
        One row per (category, tier) served, auto first: ``predictions``
        (labeled ones), ``correct``, ``precision``; ``coverage``, the share of
        the class's labeled predictions that got that tier; and
        ``precision_at_or_above``, the precision of the class's predictions in
        this tier or a surer one, which is what a tier's target bounds (the
        ``suggest`` threshold keeps 0.80 over suggest and auto rows together).
    """
    rows = labeled(frame)
    columns = list(MEASURED_COLUMNS)
    if rows.empty:
        return pd.DataFrame(columns=columns)
    counted = pd.DataFrame(
        {
            "category": rows["category"].astype(str),
            "tier": rows["tier"].astype(str),
            "rank": rows["tier"].map(TIER_RANK).fillna(len(TIER_RANK)).astype(int),
            "correct": (rows["category"] == rows["final_category"]).astype(int),
        }
    )
    out = counted.groupby(["category", "rank", "tier"], sort=True).agg(
        predictions=("correct", "size"), correct=("correct", "sum")
    )
    out = out.reset_index()
    out["precision"] = out["correct"] / out["predictions"]
    by_class = out.groupby("category")
    out["coverage"] = out["predictions"] / by_class["predictions"].transform("sum")
    out["precision_at_or_above"] = by_class["correct"].cumsum() / by_class["predictions"].cumsum()
    return out[columns].reset_index(drop=True)


def coverage_at(
    classes: Sequence[str],
    truth: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    precision: float,
    automation: AutomationSettings,
) -> dict[str, float | None]:
    """Automation coverage per class at a target precision.

    Thresholds for ``precision`` are set on these rows (with the bound of
    ``automation.confidence``); a class's coverage is the share of its true
    rows whose prediction reaches its class's threshold.

    Returns:
        ``{class: share}``, None for a class with no true row.
    """
    truth, predicted = np.asarray(truth, dtype=object), np.asarray(predicted, dtype=object)
    confidence = np.asarray(confidence, dtype=float)
    reached: dict[str, float | None] = {}
    for category in set(predicted.tolist()) - {UNKNOWN}:
        mine = predicted == category
        correct = truth[mine] == category
        reached[category] = class_threshold(
            confidence[mine], correct, precision, automation.confidence
        )[0]
    covered = confidence >= class_thresholds(predicted, reached, np.inf)
    return {c: float(covered[truth == c].mean()) if (truth == c).any() else None for c in classes}


def with_tier(predictions: pd.DataFrame) -> pd.DataFrame:
    """``predictions`` with a ``tier`` after ``needs_review``, derived when the model gave none.

    A model registered before tiers ships a runtime without them: what it
    flags is ``review``, the rest ``suggest`` (it never automates).
    """
    if "tier" in predictions:
        return predictions
    out = predictions.copy()
    flagged = out["needs_review"].to_numpy(dtype=bool)
    out.insert(out.columns.get_loc("needs_review") + 1, "tier", np.where(flagged, REVIEW, SUGGEST))
    return out


def model_rules(
    predictions: pd.DataFrame, tiers: np.ndarray, supported_languages: Sequence[str] | None
) -> np.ndarray:
    """``tiers`` with the served model's rules beyond confidence applied again.

    An escalation signal caps a tier at ``suggest``, and a language outside
    ``supported_languages`` (the model's config; the runtime's default when None)
    sends the row to ``review``: the runtime's own functions, so the rules cannot
    drift apart. Columns a model logged before them lacks are skipped.
    """
    out = np.asarray(tiers, dtype=object).copy()
    if "escalation" in predictions:
        signals = [json.loads(v) if isinstance(v, str) else [] for v in predictions["escalation"]]
        out = np.asarray(blend.escalated_tiers(out.tolist(), signals), dtype=object)
    if "language" in predictions:
        supported = supported_languages or signal_setting({}, "languages")
        languages = predictions["language"].astype(str).tolist()
        out[blend.unsupported_languages(languages, supported)] = REVIEW
    return out


def apply_thresholds(
    predictions: pd.DataFrame,
    thresholds: Mapping[str, Any],
    supported_languages: Sequence[str] | None = None,
) -> pd.DataFrame:
    """``predictions`` with ``tier`` and ``needs_review`` recomputed from ``thresholds``.

    Only rows whose category ``thresholds`` names (in either tier) change:
    the others keep the tier the model gave them, so a partial set (live
    estimates for the classes with enough labels) overrides just those.
    Abstentions stay ``review``, and so do the model's own rules beyond
    confidence (:func:`model_rules`): live thresholds never automate an
    escalated ticket or one in a language the model does not cover.
    """
    named = {str(c) for tier in TARGET_TIERS for c in thresholds.get(tier, {})}
    out = with_tier(predictions).copy()
    categories = out["category"].astype(str).to_numpy(dtype=object)
    rows = np.isin(categories, list(named))
    if not rows.any():
        return out
    tiers = out["tier"].to_numpy(dtype=object, copy=True)
    tiers[rows] = assign_tiers(
        categories[rows],
        out["category_proba"].to_numpy(dtype=float)[rows],
        categories[rows] == UNKNOWN,
        thresholds,
    )
    out["tier"] = model_rules(out, tiers, supported_languages)
    out["needs_review"] = out["tier"].to_numpy(dtype=object) == REVIEW
    return out
