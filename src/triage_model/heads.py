"""The heads beside category and priority: subcategory, type and team, and their answers.

Each head is a classifier fitted on the leading (word n-gram) columns of the
shared matrix the category model reads (no features of its own), so a head
costs one sparse product per prediction.
The subcategory is decoded under the predicted category: among the
subcategories seen under that category in training, the most probable, with
its probability renormalised within the category. Below a head's minimum
confidence (config ``head_min_confidence``) the answer is withheld (None/NaN):
the ticket then has its category alone, or the category's route.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

HEADS: tuple[str, ...] = ("subcategory", "type", "team")
# Config keys: each head's facts from training ({"classes": [...], ...}; for the subcategory
# also "parents" {subcategory: category} and "pairs" [[category, subcategory], ...]), and the
# confidence below which a head's answer is withheld.
HEADS_KEY = "heads"
MIN_CONFIDENCE_KEY = "head_min_confidence"


def pair_mask(
    pairs: Sequence[Sequence[str]], categories: Sequence[str], classes: Sequence[str]
) -> np.ndarray:
    """A 0/1 matrix, one row per category and one column per subcategory class, of allowed pairs.

    Args:
        pairs: the (category, subcategory) pairs seen in training.
        categories: the categories, in the order of the mask's rows.
        classes: the subcategory head's classes, in the order of its probability columns.

    Returns:
        ``mask[i, j] == 1`` where ``classes[j]`` was seen under ``categories[i]``.
    """
    row = {c: i for i, c in enumerate(categories)}
    column = {s: j for j, s in enumerate(classes)}
    mask = np.zeros((len(categories), len(classes)), dtype=float)
    for category, subcategory in pairs:
        if category in row and subcategory in column:
            mask[row[category], column[subcategory]] = 1.0
    return mask


def decode_subcategory(
    proba: np.ndarray,
    classes: Sequence[str],
    categories: Sequence[Any],
    pairs: Sequence[Sequence[str]],
    min_confidence: float,
) -> tuple[list[str | None], np.ndarray]:
    """The most probable subcategory under each row's predicted category, or None.

    The head's probabilities are restricted to the subcategories seen under
    the row's category and renormalised within it, so the answer is never
    inconsistent with the category. None (probability NaN) where the category
    has no known subcategory (``unknown`` included), or where the renormalised
    probability is below ``min_confidence``.

    Args:
        proba: the subcategory head's probabilities, one column per class.
        classes: the head's classes, in column order.
        categories: the predicted category of each row.
        pairs: the (category, subcategory) pairs seen in training.
        min_confidence: the renormalised probability below which the answer is withheld.

    Returns:
        The subcategory per row (None where withheld) and its renormalised probability.
    """
    known = sorted({str(c) for c, _ in pairs})
    index = {c: i for i, c in enumerate(known)}
    mask = np.vstack([pair_mask(pairs, known, classes), np.zeros((1, len(classes)))])
    # Rows whose category has no pairs read the all-zero last row: nothing allowed.
    rows = np.array([index.get(str(c), len(known)) for c in categories], dtype=int)
    allowed = proba * mask[rows]
    total = allowed.sum(axis=1)
    best = allowed.argmax(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = allowed[np.arange(len(allowed)), best] / total
    answered = (total > 0) & (share >= min_confidence)
    names = np.asarray(classes, dtype=object)[best]
    labels = np.where(answered, names, None).tolist()
    return labels, np.where(answered, share, np.nan)


def flat_answers(
    proba: np.ndarray, classes: Sequence[str], min_confidence: float
) -> tuple[list[str | None], np.ndarray]:
    """Each row's most probable class and its probability, None/NaN below ``min_confidence``."""
    best = proba.argmax(axis=1)
    top = proba[np.arange(len(proba)), best]
    answered = top >= min_confidence
    names = np.asarray(classes, dtype=object)[best]
    return np.where(answered, names, None).tolist(), np.where(answered, top, np.nan)


def consistent(
    categories: Sequence[Any], subcategories: Sequence[Any], pairs: Sequence[Sequence[str]]
) -> np.ndarray:
    """Per row, whether its subcategory was seen under its category (True where no subcategory).

    Args:
        categories: the category of each row.
        subcategories: the subcategory of each row (None where withheld).
        pairs: the (category, subcategory) pairs seen in training.

    Returns:
        A bool array; False marks an inconsistent pair.
    """
    allowed = {(str(c), str(s)) for c, s in pairs}
    return np.array(
        [s is None or (str(c), str(s)) in allowed for c, s in zip(categories, subcategories)],
        dtype=bool,
    )


def head_answers(
    heads: Mapping[str, Any],
    matrix: Any,
    categories: Sequence[Any],
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """Every head's answer and probability columns, None/NaN for a head the model lacks.

    Args:
        heads: fitted head classifiers by name (any of :data:`HEADS`).
        matrix: the shared matrix of the rows (each head reads its leading columns).
        categories: the predicted category of each row (after abstention).
        config: the model's config (``heads``, ``head_min_confidence``).

    Returns:
        ``{head: labels, f"{head}_proba": probabilities}`` for each of :data:`HEADS`.
    """
    rows = len(categories)
    facts, bars = config.get(HEADS_KEY, {}), config.get(MIN_CONFIDENCE_KEY, {})
    blocks: dict[int, Any] = {}
    out: dict[str, Any] = {}
    for name in HEADS:
        model = heads.get(name)
        if model is None:
            out[name], out[f"{name}_proba"] = [None] * rows, np.full(rows, np.nan)
            continue
        # A head reads the matrix's leading columns it was fitted on (the word block).
        width = int(model.n_features_in_)
        if width not in blocks:
            blocks[width] = matrix[:, :width]
        proba = model.predict_proba(blocks[width])
        classes, bar = [str(c) for c in model.classes_], float(bars.get(name, 0.0))
        if name == "subcategory":
            pairs = facts.get(name, {}).get("pairs", [])
            answer = decode_subcategory(proba, classes, categories, pairs, bar)
        else:
            answer = flat_answers(proba, classes, bar)
        out[name], out[f"{name}_proba"] = answer
    return out
