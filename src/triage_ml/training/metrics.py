"""Evaluation metrics with names that stay the same across runs.

Every run logs the same keys, so the MLflow UI compares runs column by
column: ``category_macro_f1``, ``category_accuracy``, ``category_top2_accuracy``,
``category_ece``, ``category_abstained``, ``category_f1.<class>``,
``priority_macro_f1``, ``priority_accuracy``, ``priority_urgent_recall``,
``priority_level_error``, and for each further head the model answers and the
rows are labeled with (:data:`HEADS`): ``subcategory_macro_f1``,
``subcategory_accuracy``, ``subcategory_answered``, ``subcategory_inconsistent``,
``type_macro_f1``, ``type_accuracy``, ``team_macro_f1``, ``team_accuracy``.
An abstention (category ``unknown``) counts as a miss of the true class, and a
withheld head answer (None) as a miss of the head's true label.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, recall_score

from triage_model.heads import HEADS
from triage_model.predictor import UNKNOWN

# What a withheld head answer is scored as: a class no true label can be, so it is a miss.
_WITHHELD = "\x00withheld"


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


def _labeled(values: Sequence[object]) -> np.ndarray:
    return np.array([v is not None and not pd.isna(v) for v in values], dtype=bool)


def head_metrics(
    name: str, predicted: Sequence[object], truth: Sequence[object]
) -> dict[str, float]:
    """``<name>_macro_f1`` and ``<name>_accuracy`` on the rows with a true label.

    A withheld answer (None) is a miss. Macro-F1 averages over the true labels' classes.
    """
    labeled = _labeled(truth)
    if not labeled.any():
        return {}
    true = [str(t) for t, keep in zip(truth, labeled) if keep]
    pred = [
        str(p) if ok else _WITHHELD
        for p, ok, keep in zip(predicted, _labeled(predicted), labeled)
        if keep
    ]
    labels = sorted(set(true))
    return {
        f"{name}_macro_f1": float(
            f1_score(true, pred, labels=labels, average="macro", zero_division=0)
        ),
        f"{name}_accuracy": float(accuracy_score(true, pred)),
    }


def truth_parents(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Each subcategory's categories among a labeled frame's (category, subcategory) pairs."""
    pairs = frame[["category", "subcategory"]].dropna().astype(str).drop_duplicates()
    out: dict[str, list[str]] = {}
    for category, subcategory in sorted(pairs.itertuples(index=False, name=None)):
        out.setdefault(subcategory, []).append(category)
    return out


def subcategory_consistency(
    predicted: pd.DataFrame, parents: Mapping[str, str | Sequence[str]] | None, frame: pd.DataFrame
) -> dict[str, float]:
    """``subcategory_answered`` (share of rows answered) and ``subcategory_inconsistent``.

    A row is inconsistent when its answered subcategory's parent is not its predicted
    category. ``parents`` is the model's (config ``heads.subcategory.parents``): a
    subcategory it does not list is inconsistent. Without it the parents are the
    frame's true pairs, and a subcategory they do not list is not judged.
    """
    answers = predicted["subcategory"].tolist()
    answered = _labeled(answers)
    known = parents if parents is not None else truth_parents(frame)
    bad = 0
    for sub, category in zip(answers, predicted["category"].tolist()):
        if sub is None or pd.isna(sub) or (parents is None and str(sub) not in known):
            continue
        allowed = known.get(str(sub), [])
        allowed = [allowed] if isinstance(allowed, str) else list(allowed)
        bad += str(category) not in allowed
    return {
        "subcategory_answered": float(answered.mean()) if len(answers) else 0.0,
        "subcategory_inconsistent": float(bad),
    }


def answered_heads(predicted: pd.DataFrame, frame: pd.DataFrame) -> list[str]:
    """The heads with a column in both frames, a true label, and at least one answer.

    A model without a head answers None on every row, which is no head to measure.
    """
    return [
        name
        for name in HEADS
        if name in predicted.columns
        and name in frame.columns
        and _labeled(frame[name].tolist()).any()
        and _labeled(predicted[name].tolist()).any()
    ]


def evaluate_predictions(
    predicted: pd.DataFrame,
    frame: pd.DataFrame,
    levels: Sequence[str],
    parents: Mapping[str, str | Sequence[str]] | None = None,
    heads: Sequence[str] | None = None,
) -> dict[str, float]:
    """All metrics of predictions on a labeled frame (same row order).

    Args:
        predicted: the model's answers.
        frame: the rows' true labels (``category``, ``priority``, and any of :data:`HEADS`).
        levels: the configured priority scale, most urgent first.
        parents: the model's subcategory parents (config ``heads.subcategory.parents``);
            None judges consistency on the frame's own (category, subcategory) pairs.
        heads: the heads the model has (config ``heads``); None measures every head
            that answered at least one row (see :func:`answered_heads`).
    """
    out = category_metrics(predicted, frame["category"].tolist())
    if "priority" in frame.columns and frame["priority"].notna().any():
        out.update(priority_metrics(predicted, frame["priority"].tolist(), levels))
    measured = answered_heads(predicted, frame) if heads is None else heads
    for name in measured:
        if name in predicted.columns and name in frame.columns:
            out.update(head_metrics(name, predicted[name].tolist(), frame[name].tolist()))
    if "subcategory_macro_f1" in out:
        out.update(subcategory_consistency(predicted, parents, frame))
    out["n"] = float(len(frame))
    return out
