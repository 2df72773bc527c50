"""The heads beside category and priority: which ones the data has, their fits and their config.

A head (subcategory, type, team) is trained when its label column has at
least two classes and ``train.min_rows`` labeled rows in the fit part. Each
reads the shared matrix the category model reads, through one of the
category candidates' factories (:data:`HEAD_CANDIDATE`, its configured
``candidate_params``) on the matrix's word block, fitted on the rows that
carry the head's label. The
subcategory's parents are learned from the training pairs: the served model
decodes it under the predicted category (:mod:`triage_model.heads`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from triage_ml.settings import HeadSettings, TrainSettings
from triage_ml.training import candidates, priority
from triage_model.heads import HEADS, HEADS_KEY, MIN_CONFIDENCE_KEY

# Logistic regression (the ``logreg`` factory, C=10 unless configured) on the shared
# matrix's word block, the slice the priority text model reads. On the full matrix the
# heads took 49 s and 65 s of a demo retraining (fit part, every row), against well under
# 10% of it asked for; the word block cut the fits 3-6 times for 0.01-0.015 macro-F1 on
# the tickets sample (type 0.766 against 0.781, queue 0.369 against 0.377) and none on the
# synthetic team. The calibrated linear SVM lost 0.10 on queue (0.275), complement naive
# Bayes 0.21 on type (0.569). Measured as benchmarks/bench_heads.py splits (docs/benchmarks.md).
HEAD_CANDIDATE = "logreg"
# A (category, subcategory) pair on fewer of the subcategory's rows than this is label noise:
# on the synthetic history, agents' category corrections left 36 of 41 subcategories under
# two or three categories, each extra one on 10% of the rows seen or less (1 of 10, 4 of 40).
PAIR_MIN_SHARE = 0.2


@dataclass(frozen=True)
class Heads:
    """Fitted head classifiers by name and what the served model must know of them."""

    models: dict[str, Any]
    facts: dict[str, dict[str, Any]]


def labeled_mask(rows: pd.DataFrame, name: str) -> np.ndarray:
    """Rows that carry the head's label (for the subcategory, its category too)."""
    if name not in rows.columns:
        return np.zeros(len(rows), dtype=bool)
    mask = rows[name].notna().to_numpy()
    if name == "subcategory":
        mask = mask & rows["category"].notna().to_numpy()
    return mask


def trainable_heads(rows: pd.DataFrame, min_rows: int) -> list[str]:
    """The heads ``rows`` can train: at least two classes and ``min_rows`` labeled rows."""
    names = []
    for name in HEADS:
        mask = labeled_mask(rows, name)
        if mask.sum() >= min_rows and rows.loc[mask, name].nunique() >= 2:
            names.append(name)
    return names


def subcategory_pairs(rows: pd.DataFrame) -> list[list[str]]:
    """The (category, subcategory) pairs of the labeled rows the decoder allows, sorted.

    A subcategory keeps its most frequent category, and any other category it
    has on at least :data:`PAIR_MIN_SHARE` of its rows: rarer pairs are label
    noise (an agent corrected the category and left the subcategory), and
    allowing them would let the decoder answer across categories.
    """
    mask = labeled_mask(rows, "subcategory")
    labeled = rows.loc[mask, ["category", "subcategory"]].astype(str)
    counts = labeled.value_counts().rename("n").reset_index()
    share = counts["n"] / counts.groupby("subcategory")["n"].transform("sum")
    top = counts["n"] == counts.groupby("subcategory")["n"].transform("max")
    kept = counts.loc[top | (share >= PAIR_MIN_SHARE), ["category", "subcategory"]]
    return sorted(kept.to_numpy().tolist())


def parents(pairs: Sequence[Sequence[str]]) -> dict[str, str | list[str]]:
    """Each subcategory's category; a subcategory seen under several has them all, sorted."""
    seen: dict[str, list[str]] = {}
    for category, subcategory in pairs:
        seen.setdefault(subcategory, []).append(category)
    return {s: c[0] if len(c) == 1 else sorted(c) for s, c in sorted(seen.items())}


def head_facts(
    rows: pd.DataFrame, name: str, model: Any, candidate: str = HEAD_CANDIDATE
) -> dict[str, Any]:
    """What the served model and the model card know of a fitted head."""
    facts: dict[str, Any] = {
        "classes": [str(c) for c in model.classes_],
        "rows": int(labeled_mask(rows, name).sum()),
        "candidate": candidate,
    }
    if name == "subcategory":
        pairs = subcategory_pairs(rows)
        facts.update(pairs=pairs, parents=parents(pairs))
    return facts


def head_blueprint(train: TrainSettings, candidate: str = HEAD_CANDIDATE) -> Any:
    """An unfitted head classifier: the ``candidate`` factory with its configured params."""
    build = candidates.CATEGORY_CANDIDATES[candidate]
    return build(train.candidate_params.get(candidate, {}), train.seed)


def fit_heads(
    rows: pd.DataFrame,
    matrix: Any,
    features: Any,
    names: Sequence[str],
    train: TrainSettings,
    candidate: str = HEAD_CANDIDATE,
) -> Heads:
    """Fit each named head on the word block of ``matrix``, on the rows that carry its label.

    Args:
        rows: model inputs with label columns (``inputs.prepare``), in the matrix's row order.
        matrix: the shared matrix of ``rows``.
        features: the fitted shared features (where the word block ends).
        names: the heads to fit (:func:`trainable_heads` of the fit part).
        train: the training settings (seed, ``candidate_params``).
        candidate: the classifier's factory (``settings.heads.candidate``).

    Returns:
        The fitted heads and their facts.
    """
    words = matrix[:, : priority.word_columns(features)]
    models, facts = {}, {}
    for name in names:
        mask = labeled_mask(rows, name)
        labels = rows.loc[mask, name].astype(str).to_numpy(dtype=object)
        with candidates.single_blas_thread():
            blueprint = head_blueprint(train, candidate)
            models[name] = clone(blueprint).fit(words[np.flatnonzero(mask)], labels)
        facts[name] = head_facts(rows, name, models[name], candidate)
    return Heads(models, facts)


def heads_config(heads: Heads, settings: HeadSettings) -> dict[str, Any]:
    """The served model's config of its heads: their facts and the confidence bars."""
    return {
        HEADS_KEY: heads.facts,
        MIN_CONFIDENCE_KEY: {k: float(v) for k, v in settings.min_confidence.items()},
    }
