"""Evaluation metrics with names that stay the same across runs.

Every run logs the same keys, so the MLflow UI compares runs column by
column: ``category_macro_f1``, ``category_accuracy``, ``category_top2_accuracy``,
``category_ece``, ``category_abstained``, ``category_f1.<class>``,
``priority_macro_f1``, ``priority_urgent_recall``, ``priority_level_error``.
An abstention (category ``unknown``) counts as a miss of the true class.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, recall_score

from triage_model.predictor import UNKNOWN


def metric_key(name: str) -> str:
    """A label turned into a string MLflow accepts in a metric name."""
    # MLflow allows "/" but rejects names that change under path normalisation
    # ("a//b", "x/"), and file stores turn it into folders, so it is replaced too.
    return re.sub(r"[^0-9A-Za-z_\-. ]", "_", name)


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """Weighted gap between confidence and accuracy over equal-width bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(total)


def top_k_accuracy(top3: Sequence[str], truth: Sequence[str], k: int = 2) -> float:
    """Share of rows whose true label is among the first ``k`` of ``top3`` (JSON)."""
    hits = [t in [c["category"] for c in json.loads(row)[:k]] for row, t in zip(top3, truth)]
    return float(np.mean(hits)) if hits else float("nan")


def category_metrics(predicted: pd.DataFrame, truth: Sequence[str]) -> dict[str, float]:
    """Category quality of a prediction frame against true labels."""
    truth = list(truth)
    pred = predicted["category"].tolist()
    labels = sorted(set(truth))
    per_class = f1_score(truth, pred, labels=labels, average=None, zero_division=0)
    correct = np.array([p == t for p, t in zip(pred, truth)], dtype=float)
    out = {
        "category_macro_f1": float(
            f1_score(truth, pred, labels=labels, average="macro", zero_division=0)
        ),
        "category_accuracy": float(accuracy_score(truth, pred)),
        "category_top2_accuracy": top_k_accuracy(predicted["top3"].tolist(), truth, 2),
        "category_ece": expected_calibration_error(
            predicted["category_proba"].to_numpy(dtype=float), correct
        ),
        "category_abstained": float(np.mean([p == UNKNOWN for p in pred])) if pred else 0.0,
    }
    out.update({f"category_f1.{metric_key(c)}": float(f) for c, f in zip(labels, per_class)})
    return out


def priority_metrics(
    predicted: pd.DataFrame, truth: Sequence[str | None], levels: Sequence[str]
) -> dict[str, float]:
    """Priority macro-F1, recall of the most urgent level present, and the mean level error.

    Priority is ordered (``levels``, most urgent first): the level error is
    how many levels apart prediction and truth are, on average, so "low"
    for a "high" ticket costs more than "medium" does.
    """
    pairs = [
        (p, t)
        for p, t in zip(predicted["priority"].tolist(), truth)
        if t is not None and not pd.isna(t)
    ]
    if not pairs or pairs[0][0] is None:
        return {}
    pred, true = zip(*pairs)
    labels = sorted(set(true))
    urgent = next((level for level in levels if level in labels), labels[0])
    return {
        "priority_macro_f1": float(
            f1_score(true, pred, labels=labels, average="macro", zero_division=0)
        ),
        "priority_accuracy": float(accuracy_score(true, pred)),
        "priority_urgent_recall": float(
            recall_score(true, pred, labels=[urgent], average="macro", zero_division=0)
        ),
        **level_error(pred, true, levels),
    }


def level_error(
    predicted: Sequence[str], truth: Sequence[str], levels: Sequence[str]
) -> dict[str, float]:
    """``priority_level_error``: mean distance in ``levels`` (empty if a label is not a level)."""
    rank = {level: i for i, level in enumerate(levels)}
    if not all(p in rank and t in rank for p, t in zip(predicted, truth)):
        return {}
    gaps = [abs(rank[p] - rank[t]) for p, t in zip(predicted, truth)]
    return {"priority_level_error": float(np.mean(gaps))}


def evaluate_predictions(
    predicted: pd.DataFrame, frame: pd.DataFrame, levels: Sequence[str]
) -> dict[str, float]:
    """All metrics of predictions on a labeled frame (same row order)."""
    out = category_metrics(predicted, frame["category"].tolist())
    if "priority" in frame.columns and frame["priority"].notna().any():
        out.update(priority_metrics(predicted, frame["priority"].tolist(), levels))
    out["n"] = float(len(frame))
    return out
