"""Label noise, agent corrections and CSAT surveys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from triage_ml.synth.schema import CATEGORIES, PRIORITIES
from triage_ml.synth.templates import Templates
from triage_ml.synth.text import Stream
from triage_ml.synth.world import CONFUSION, pick_rows

_AGENTS = tuple(f"agent-{i:02d}" for i in range(1, 25))
# How much each true category shifts the latent CSAT (rows follow CATEGORIES).
_CATEGORY_CSAT = np.array([-0.2, -0.1, -0.1, -0.3, -0.2, 0.2, 0.1])
_NS_PER_SECOND = 1_000_000_000


class Labels(NamedTuple):
    """True and original labels (indices into CATEGORIES / PRIORITIES)."""

    true_cat: np.ndarray
    orig_cat: np.ndarray
    true_pri: np.ndarray
    orig_pri: np.ndarray


def _noisy_category(rng: np.random.Generator, world: dict[str, np.ndarray]) -> np.ndarray:
    """Original (help-desk) categories: ~6-7% wrong, mostly plausible confusions."""
    category, style = world["category"], world["style"]
    p_flip = np.where(style == 1, 0.15, np.where(style >= 2, 0.10, 0.035))
    flip = rng.random(len(category)) < p_flip
    confused = pick_rows(rng, CONFUSION, category)
    target = np.where(style == 1, world["second"], confused)
    return np.where(flip, target, category)


def _noisy_priority(rng: np.random.Generator, priority: np.ndarray) -> np.ndarray:
    """Original priorities: a few percent off by one level."""
    flip = rng.random(len(priority)) < 0.035
    shift = np.where(rng.random(len(priority)) < 0.5, -1, 1)
    moved = priority + shift
    moved = np.where((moved < 0) | (moved > 3), priority - shift, moved)
    return np.where(flip, moved, priority)


def degrade(rng: np.random.Generator, world: dict[str, np.ndarray], priority: np.ndarray) -> Labels:
    """The true labels and the help desk's original ones, a few percent wrong.

    Args:
        rng: the label generator; its state advances.
        world: the hidden per-ticket variables.
        priority: the true priority indices.

    Returns:
        True and original category and priority indices.
    """
    category = world["category"]
    return Labels(category, _noisy_category(rng, world), priority, _noisy_priority(rng, priority))


def _reason(s: Stream, options: Sequence[str], category: str) -> str:
    """A short free-text reason, sometimes empty."""
    return s.pick(options).format(cat=category)


def correction_rows(
    rng: np.random.Generator, s: Stream, tpl: Templates, labels: Labels, created_ns: np.ndarray
) -> list[tuple]:
    """Rows (ticket index, category, priority, agent, time ns, reason) of agent corrections."""
    n = len(created_ns)
    fix_cat = (labels.orig_cat != labels.true_cat) & (rng.random(n) < 0.62)
    fix_pri = (labels.orig_pri != labels.true_pri) & (rng.random(n) < 0.55)
    conflict = rng.random(n) < 0.006
    first_delay = (600 + rng.exponential(8 * 3_600, n)).astype(np.int64) * _NS_PER_SECOND
    second_delay = (3_600 + rng.exponential(24 * 3_600, n)).astype(np.int64) * _NS_PER_SECOND
    wrong = pick_rows(rng, CONFUSION, labels.true_cat)
    rows: list[tuple] = []
    for i in np.flatnonzero(fix_cat | fix_pri | conflict).tolist():
        when = int(created_ns[i] + first_delay[i])
        true_cat = CATEGORIES[labels.true_cat[i]]
        if conflict[i]:
            # A first, wrong correction that the row below overrides.
            wrong_cat = CATEGORIES[wrong[i]]
            agent = s.pick(_AGENTS)
            rows.append(
                (i, wrong_cat, None, agent, when, _reason(s, tpl.category_reasons, wrong_cat))
            )
            when += int(second_delay[i])
        category = true_cat if fix_cat[i] or conflict[i] else None
        priority = PRIORITIES[labels.true_pri[i]] if fix_pri[i] else None
        if conflict[i]:
            reasons = tpl.conflict_reasons
        else:
            reasons = tpl.category_reasons if category else tpl.priority_reasons
        rows.append((i, category, priority, s.pick(_AGENTS), when, _reason(s, reasons, true_cat)))
    return rows


def final_categories(original: np.ndarray, rows: list[tuple]) -> np.ndarray:
    """Each ticket's category once its corrections are applied: the latest one, else the original.

    Args:
        original: the original category index per ticket.
        rows: :func:`correction_rows`'s rows (ticket index, category, ..., time ns, reason).

    Returns:
        Category indices (``CATEGORIES``), as the store resolves the labels.
    """
    final = original.copy()
    # In time order, ties in row order, as the feedback frame and the store resolve them.
    for row in sorted(rows, key=lambda r: (r[4], r[0])):
        if row[1] is not None:
            final[row[0]] = CATEGORIES.index(row[1])
    return final


def feedback_frame(rows: list[tuple], ticket_ids: list[str]) -> pd.DataFrame:
    """Agent corrections as a frame sorted by ``corrected_at``."""
    rows = sorted(rows, key=lambda r: (r[4], r[0]))
    columns = list(zip(*rows)) if rows else [()] * 6
    return pd.DataFrame(
        {
            "ticket_id": pd.Series([ticket_ids[i] for i in columns[0]], dtype="str"),
            "corrected_category": pd.Series(list(columns[1]), dtype="str"),
            "corrected_priority": pd.Series(list(columns[2]), dtype="str"),
            "agent_id": pd.Series(list(columns[3]), dtype="str"),
            "corrected_at": pd.to_datetime(
                np.array(columns[4], dtype=np.int64), unit="ns", utc=True
            ),
            "reason": pd.Series(list(columns[5]), dtype="str"),
        }
    )


def survey_frame(
    rng: np.random.Generator,
    s: Stream,
    tpl: Templates,
    world: dict[str, np.ndarray],
    labels: Labels,
    created_ns: np.ndarray,
    ticket_ids: list[str],
) -> pd.DataFrame:
    """CSAT surveys for ~30% of tickets; angry, urgent or misrouted customers score lower."""
    n = len(created_ns)
    answered = rng.random(n) < 0.27 + 0.05 * (world["anger"] > 0)
    misrouted = labels.orig_cat != labels.true_cat
    latent = (
        4.3
        - 0.5 * world["anger"]
        - 0.3 * (labels.true_pri <= 1)
        + _CATEGORY_CSAT[labels.true_cat]
        - 0.5 * misrouted
        + rng.normal(0.0, 0.9, n)
    )
    csat = np.clip(np.rint(latent), 1, 5).astype(np.int64)
    delay = (6 * 3_600 + rng.exponential(40 * 3_600, n)).astype(np.int64) * _NS_PER_SECOND
    idx = np.flatnonzero(answered)
    buckets = np.where(csat[idx] <= 2, 0, np.where(csat[idx] == 3, 1, 2)).tolist()
    names = tpl.vocabulary.first_names
    comments = [
        "" if s.chance(0.45) else s.pick(tpl.survey_comments[b]).format(agent=s.pick(names))
        for b in buckets
    ]
    return pd.DataFrame(
        {
            "ticket_id": pd.Series([ticket_ids[i] for i in idx.tolist()], dtype="str"),
            "csat": csat[idx],
            "comment": pd.Series(comments, dtype="str"),
            "answered_at": pd.to_datetime(created_ns[idx] + delay[idx], unit="ns", utc=True),
        }
    )
