"""Answers blended from the model's and the signals': priority score, escalation, routes.

Pure functions on arrays and lists, so a team can read, test and tune each rule
apart from the model. The priority score is a weighted mean of three parts, each
0-100, shown beside it (``priority_parts``) so an agent sees why a ticket ranks
where it does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

PARTS: tuple[str, ...] = ("model", "value", "sentiment")
AUTO, SUGGEST = "auto", "suggest"


def severities(levels: Sequence[str], scale: Sequence[str]) -> np.ndarray:
    """Severity of each of the model's levels: 0 for its least urgent, 1 for its most urgent.

    Levels are ordered by ``scale`` (most urgent first); levels not on it count
    as the least urgent. A model of one level gives it 0.5.
    """
    rank = {level: i for i, level in enumerate(scale)}
    order = sorted(range(len(levels)), key=lambda j: rank.get(levels[j], len(scale)))
    out = np.full(len(levels), 0.5)
    if len(levels) > 1:
        out[order] = np.linspace(1.0, 0.0, len(levels))
    return out


def value_percentiles(ltv: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Each customer value's percentile (0-1) among the training rows' quantiles (NaN if unknown).

    Interpolated between the quantiles; a value that several quantiles share
    (many customers with the same value) gets the middle of their levels.
    """
    values = np.asarray(ltv, dtype=float)
    if len(quantiles) == 0:
        return np.full(values.shape, np.nan)
    levels = np.linspace(0.0, 1.0, len(quantiles))
    points, inverse = np.unique(np.asarray(quantiles, dtype=float), return_inverse=True)
    middles = np.bincount(inverse, weights=levels) / np.bincount(inverse)
    return np.where(np.isnan(values), np.nan, np.interp(values, points, middles))


def priority_score(
    proba: np.ndarray | None,
    levels: Sequence[str],
    scale: Sequence[str],
    ltv: np.ndarray,
    sentiment: np.ndarray,
    weights: Mapping[str, float],
    ltv_quantiles: Sequence[float],
) -> tuple[np.ndarray, list[str]]:
    """The 0-100 priority score of each ticket and its parts as a JSON object string.

    Args:
        proba: The priority model's probabilities (rows x ``levels``), or None without a model.
        levels: The model's levels, in the order of ``proba``'s columns.
        scale: The configured priority levels, most urgent first.
        ltv: Customer value of each ticket (NaN where unknown).
        sentiment: Sentiment in [-1, 1] (NaN where no analyzer covers the language).
        weights: Weight of each part (``model``, ``value``, ``sentiment``).
        ltv_quantiles: The training rows' customer-value quantiles (empty: no value part).

    Returns:
        The score (the weighted mean of the parts present, weights renormalised,
        rounded to 1 decimal; NaN where no part is present) and per ticket
        ``{"model": m, "value": v, "sentiment": s, "weights": {...}}`` (null parts absent).
    """
    sentiment = np.asarray(sentiment, dtype=float)
    rows = len(sentiment)
    model = (
        np.full(rows, np.nan)
        if proba is None or len(levels) == 0
        else 100.0 * np.asarray(proba, dtype=float) @ severities(levels, scale)
    )
    parts = np.column_stack(
        [
            model,
            100.0 * value_percentiles(ltv, ltv_quantiles),
            100.0 * np.maximum(0.0, -sentiment),
        ]
    )
    weight = np.array([float(weights.get(part, 0.0)) for part in PARTS])
    present = ~np.isnan(parts) & (weight > 0)
    total = (present * weight).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.round(np.where(present, parts, 0.0) @ weight / total, 1)
    score[total == 0] = np.nan
    shown = np.round(parts, 1)
    return score, _parts_json(
        shown, {part: float(w) for part, w in zip(PARTS, weight, strict=True)}
    )


def _parts_json(parts: np.ndarray, weights: dict[str, float]) -> list[str]:
    # Formatted by hand: json.dumps per row costs as much as the rest of the blend.
    tail = ', "weights": ' + json.dumps(weights) + "}"
    return [
        f'{{"model": {_number(m)}, "value": {_number(v)}, "sentiment": {_number(s)}' + tail
        for m, v, s in parts.tolist()
    ]


def _number(x: float) -> str:
    return "null" if math.isnan(x) else repr(x)


def escalated_priority(
    priority: Sequence[str | None],
    signals: Sequence[Sequence[str]],
    rule: Mapping[str, str],
    scale: Sequence[str],
) -> tuple[list[str | None], np.ndarray]:
    """Each priority raised to at least the rule's level of any signal present.

    Args:
        priority: The model's priority per ticket (None where there is none).
        signals: The escalation signals of each ticket.
        rule: Signal -> the level it raises the priority to at least.
        scale: The model's priority levels, most urgent first; rule levels not on it are ignored.

    Returns:
        The priorities (never lowered; None stays None) and whether each was raised.
    """
    rank = {level: i for i, level in enumerate(scale)}
    out: list[str | None] = []
    raised = np.zeros(len(priority), dtype=bool)
    for row, (level, found) in enumerate(zip(priority, signals, strict=True)):
        targets = [rank[rule[s]] for s in found if rule.get(s) in rank]
        if level in rank and targets and min(targets) < rank[level]:
            level, raised[row] = scale[min(targets)], True
        out.append(level)
    return out, raised


def escalated_tiers(tiers: Sequence[str], signals: Sequence[Sequence[str]]) -> list[str]:
    """Tiers with "auto" lowered to "suggest" wherever an escalation signal is present."""
    return [
        SUGGEST if tier == AUTO and found else tier
        for tier, found in zip(tiers, signals, strict=True)
    ]


def unsupported_languages(languages: Sequence[str], supported: Sequence[str]) -> np.ndarray:
    """True where a ticket's language is not ``supported``.

    An undetermined language ("und": too short to tell) is not called unsupported.
    """
    known = {*supported, "und"}
    return np.array([code not in known for code in languages], dtype=bool)


def language_routes(
    routes: Sequence[str],
    languages: Sequence[str],
    supported: Sequence[str],
    language_routes: Mapping[str, str],
    unsupported_route: str,
) -> tuple[list[str], np.ndarray]:
    """Routes overridden by language, and which tickets are in an unsupported language.

    Args:
        routes: The route of each ticket from its category or team.
        languages: The detected language of each ticket.
        supported: Languages the model and its sentiment analyzers cover.
        language_routes: Language -> route, overriding the category's route.
        unsupported_route: Where a ticket in an unsupported language without a
            route of its own goes.

    Returns:
        The routes and a bool array, True where the language is unsupported
        (such a ticket goes to review, never silently guessed); an undetermined
        one ("und") is neither flagged nor rerouted.
    """
    unsupported = unsupported_languages(languages, supported)
    out = [
        language_routes.get(code, unsupported_route if missing else route)
        for route, code, missing in zip(routes, languages, unsupported.tolist(), strict=True)
    ]
    return out, unsupported
