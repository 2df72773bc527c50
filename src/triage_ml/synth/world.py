"""The hidden world: customers, creation times and per-ticket latent variables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from triage_ml.synth.schema import CATEGORIES, CHANNELS, LANGUAGES
from triage_ml.synth.templates import Topic

CATEGORY_WEIGHTS = np.array([0.22, 0.27, 0.15, 0.13, 0.10, 0.07, 0.06])

# Plausible confusions: who gets mixed up with whom (rows follow CATEGORIES).
CONFUSION = np.array(
    [
        # Bil  Tec  Acc  Shi  Ret  Sal  Fee
        [0.00, 0.15, 0.20, 0.00, 0.35, 0.30, 0.00],  # Billing
        [0.15, 0.00, 0.50, 0.00, 0.15, 0.00, 0.20],  # Technical
        [0.30, 0.50, 0.00, 0.00, 0.00, 0.20, 0.00],  # Account
        [0.25, 0.00, 0.00, 0.00, 0.60, 0.00, 0.15],  # Shipping
        [0.45, 0.15, 0.00, 0.40, 0.00, 0.00, 0.00],  # Returns
        [0.60, 0.15, 0.25, 0.00, 0.00, 0.00, 0.00],  # Sales
        [0.20, 0.40, 0.00, 0.20, 0.00, 0.20, 0.00],  # Feedback
    ]
)

# Priority model: fixed thresholds on a latent urgency score, calibrated so
# that roughly 7% / 23% / 50% / 20% of tickets fall in each level.
_PRIORITY_CUTS = (4.39, 2.89, 1.09)
_TIER_BONUS = np.array([0.0, 0.25, 0.55, 1.0])
_CHANNEL_BONUS = np.array([0.0, 0.15, 0.35, -0.1, 0.45])
# Urgency each escalation cue adds, in CUE_KINDS order.
_CUE_WEIGHTS = np.array([0.9, 0.7, 1.0, 0.5, 0.9])

_UNIVERSE_SEED = 20_260_101


def customer_universe(size: int) -> dict[str, np.ndarray]:
    """Attributes of customers ``0 .. size-1``; customer i never changes.

    Each attribute comes from its own fixed-seed stream, and numpy streams
    are prefix-stable, so a customer's tier and LTV do not depend on
    ``size`` or on the dataset seed.

    Args:
        size: number of customers.

    Returns:
        ``id``, ``tier`` (index into ``TIERS``), ``ltv`` and the sampling ``weight`` per customer.
    """
    tier_u = np.random.default_rng([_UNIVERSE_SEED, 1]).random(size)
    tier = np.searchsorted(np.cumsum([0.40, 0.32, 0.18, 0.10]), tier_u, side="right").clip(0, 3)
    medians = np.array([40.0, 600.0, 3_500.0, 40_000.0])[tier]
    ltv = medians * np.exp(0.8 * np.random.default_rng([_UNIVERSE_SEED, 2]).standard_normal(size))
    zero = (tier == 0) & (np.random.default_rng([_UNIVERSE_SEED, 3]).random(size) < 0.3)
    ltv = np.where(zero, 0.0, np.round(ltv, 2))
    activity = np.exp(1.1 * np.random.default_rng([_UNIVERSE_SEED, 4]).standard_normal(size))
    weight = activity * np.array([0.8, 1.0, 1.3, 2.0])[tier]
    idx = np.arange(size, dtype=np.int64)
    ids = np.array([f"CUST-{v:06d}" for v in (idx * 7_919 + 12_345) % 1_000_000], dtype=object)
    return {"id": ids, "tier": tier, "ltv": ltv, "weight": weight / weight.sum()}


def created_offsets(
    rng: np.random.Generator, n: int, start: pd.Timestamp, end: pd.Timestamp
) -> np.ndarray:
    """Sorted second offsets from ``start``: fewer tickets at night and on weekends, slow growth."""
    days = max(int((end - start) / pd.Timedelta(days=1)), 1)
    day = np.arange(days)
    weekday = (start.day_of_week + day) % 7
    day_w = np.where(weekday == 5, 0.6, np.where(weekday == 6, 0.5, 1.0)) * (
        1.0 + 0.15 * day / days
    )
    hour_w = np.array(
        [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 9, 8, 9, 10, 9, 8, 6, 5, 4, 3, 3, 2, 1], dtype=float
    )
    picked_day = rng.choice(days, size=n, p=day_w / day_w.sum())
    hour = rng.choice(24, size=n, p=hour_w / hour_w.sum())
    offsets = picked_day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, size=n)
    limit = int((end - start).total_seconds()) - 1
    return np.sort(np.minimum(offsets, limit))


def pick_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One draw per row index in ``rows`` from the matching row of ``probs``."""
    cdf = np.cumsum(probs[rows], axis=1)
    u = rng.random(len(rows))[:, None] * cdf[:, -1:]
    return (u > cdf).sum(axis=1)


def topic_table(topics: tuple[tuple[Topic, ...], ...], field: str) -> np.ndarray:
    """``field`` of every topic as a (category, topic) matrix padded with zeros."""
    table = np.zeros((len(topics), max(len(t) for t in topics)))
    for c, category_topics in enumerate(topics):
        table[c, : len(category_topics)] = [getattr(t, field) for t in category_topics]
    return table


def draw_world(
    rng: np.random.Generator, n: int, topics: tuple[tuple[Topic, ...], ...]
) -> dict[str, np.ndarray]:
    """Hidden per-ticket variables: what it is about and how it is written.

    Args:
        rng: the world generator; its state advances.
        n: number of tickets.
        topics: the topics per category, in ``CATEGORIES`` order.

    Returns:
        One array of length ``n`` per variable.
    """
    category = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_WEIGHTS)
    topic = pick_rows(rng, topic_table(topics, "weight"), category)
    severity = topic_table(topics, "severity")[category, topic]
    style = rng.choice(4, size=n, p=[0.73, 0.18, 0.05, 0.04])  # plain, mixed, generic, short
    second = pick_rows(rng, CONFUSION, category)
    second_topic = (rng.random(n) * np.array([len(t) for t in topics])[second]).astype(int)
    channel = rng.choice(len(CHANNELS), size=n, p=[0.38, 0.22, 0.10, 0.22, 0.08])
    language = rng.choice(len(LANGUAGES), size=n, p=[0.88, 0.05, 0.04, 0.03])
    u = rng.random(n)
    anger = np.where(u < 0.06 + 0.05 * severity, 2, np.where(u < 0.30 + 0.07 * severity, 1, 0))
    # Complaints (Feedback's third topic) are never written calmly.
    anger = np.where((category == 6) & (topic == 2), np.maximum(anger, 1), anger)
    return {
        "category": category,
        "topic": topic,
        "severity": severity,
        "style": style,
        "second": second,
        "second_topic": second_topic,
        "channel": channel,
        "language": language,
        "anger": anger,
        "long": rng.random(n) < 0.12,
    }


def draw_cues(
    rng: np.random.Generator, world: dict[str, np.ndarray], tier: np.ndarray
) -> np.ndarray:
    """Boolean (n, 5) matrix of escalation cues: legal, social, exec, cancel, impact."""
    anger, sev = world["anger"], world["severity"]
    social = world["channel"] == 4
    probs = np.stack(
        [
            0.005 + 0.04 * anger,
            0.005 + 0.03 * anger + 0.08 * social,
            0.003 + 0.06 * (tier == 3) + 0.02 * (tier == 2) + 0.015 * anger,
            0.01 + 0.03 * anger,
            0.01 + 0.07 * (sev >= 2.5) + 0.05 * (tier >= 2) * (sev >= 1.5),
        ],
        axis=1,
    )
    cues = rng.random(probs.shape) < probs
    quiet = world["style"] == 3
    cues[quiet] = False
    return cues


def true_priority(
    rng: np.random.Generator,
    world: dict[str, np.ndarray],
    cues: np.ndarray,
    tier: np.ndarray,
    ltv: np.ndarray,
) -> np.ndarray:
    """True priority index (0 = critical) from severity, mood, cues, customer and channel."""
    sev = world["severity"]
    score = (
        1.1 * sev
        + 0.65 * world["anger"]
        + cues @ _CUE_WEIGHTS
        + _TIER_BONUS[tier]
        + 0.3 * np.clip(np.log10(ltv + 1.0) - 3.0, -1.0, 2.0)
        + _CHANNEL_BONUS[world["channel"]]
        + 0.7 * ((tier == 3) & (sev >= 2.5))
        + rng.normal(0.0, 0.4, size=len(sev))
    )
    cuts = np.array(_PRIORITY_CUTS)
    return (score < cuts[:, None]).sum(axis=0)
