"""Deterministic synthetic customer-support tickets for demos and tests.

The generator draws a hidden "true" world (category, topic, severity,
sentiment, escalation cues, customer) for every ticket, renders realistic
text from it, and then degrades the labels the way a real help desk does:
some original categories and priorities are wrong, agents fix a good share
of them later (with the occasional conflicting correction), and a third of
the customers answer a CSAT survey.

Everything is driven by ``numpy.random.default_rng`` generators derived from
the seed; there is no global random state, so the same arguments always give
byte-identical CSV files. The clock is read for one thing only: nothing is
dated in the future. A history that would run past ``now`` is moved back (or,
with a given start, cut at ``now``); one that ends in the past is not touched.
The text material lives in ``templates.json`` (see :mod:`triage_ml.synth.templates`).

Example:
    >>> data = generate(1_000, months=3, seed=7)
    >>> len(data.tickets), list(data.tickets.columns[-2:])
    (1000, ['category', 'priority'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from triage_ml.synth import labels as label_noise
from triage_ml.synth import world as hidden
from triage_ml.synth.schema import (
    CATEGORIES,
    CHANNELS,
    DEFAULT_START,
    DEFAULT_UNLABELED_START,
    LANGUAGES,
    PRIORITIES,
    TIERS,
)
from triage_ml.synth.templates import load_templates
from triage_ml.synth.text import Stream, render_all

# A history moved back to end before now leaves this much room for the new tickets to score.
NEW_TICKET_ROOM = pd.Timedelta(days=7)


@dataclass(frozen=True)
class SyntheticData:
    """One synthetic help-desk history.

    Attributes:
        tickets: labeled tickets (original, partly wrong labels), sorted by time.
        feedback: agent corrections; the latest one per field is the truth.
        surveys: CSAT surveys answered by customers.
    """

    tickets: pd.DataFrame
    feedback: pd.DataFrame
    surveys: pd.DataFrame


class _Simulation(NamedTuple):
    """Tickets without labels plus the hidden state needed to label them."""

    frame: pd.DataFrame
    world: dict[str, np.ndarray]
    priority: np.ndarray
    created_ns: np.ndarray


def _names(values: Sequence[str], index: np.ndarray) -> pd.Series:
    """``values[index]`` as a string column."""
    return pd.Series(np.array(values, dtype=object)[index], dtype="str")


def _utc(moment: datetime | None, default: datetime) -> pd.Timestamp:
    """``moment`` (naive means UTC) or ``default`` as a UTC timestamp."""
    stamp = pd.Timestamp(moment if moment is not None else default)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _now(now: datetime | None) -> pd.Timestamp:
    """``now`` (naive means UTC), or the clock's current time, as a UTC timestamp."""
    return _utc(now, datetime.now(UTC))


def _history_window(
    start: datetime | None, months: int, now: pd.Timestamp
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last moment of a history of ``months``, never past ``now``.

    Raises:
        ValueError: ``start`` is not before ``now``.
    """
    begin = _utc(start, DEFAULT_START)
    end = begin + pd.DateOffset(months=months)
    if end <= now:
        return begin, end
    if start is None:
        end = (now - NEW_TICKET_ROOM).floor("D")
        return end - pd.DateOffset(months=months), end
    if begin >= now:
        raise ValueError(f"start {begin.isoformat()} is not in the past")
    return begin, now


def _not_after(column: pd.Series, now: pd.Timestamp) -> pd.Series:
    """``column`` with times past ``now`` set to ``now`` (late corrections, surveys)."""
    return column.where(column <= now, now) if (column > now).any() else column


def _simulate(
    rngs: Sequence[np.random.Generator],
    n: int,
    start: pd.Timestamp,
    end: pd.Timestamp,
    prefix: str,
    min_offset: int = 0,
) -> _Simulation:
    """Draw ``n`` tickets between ``start`` and ``end`` (labels not attached yet)."""
    world_rng, text_rng = rngs[0], rngs[1]
    templates = load_templates()
    offsets = np.maximum(hidden.created_offsets(world_rng, n, start, end), min_offset)
    universe = hidden.customer_universe(max(50, n // 3))
    customer = world_rng.choice(len(universe["id"]), size=n, p=universe["weight"])
    tier, ltv = universe["tier"][customer], universe["ltv"][customer]
    world = hidden.draw_world(world_rng, n, templates.topics)
    cues = hidden.draw_cues(world_rng, world, tier)
    priority = hidden.true_priority(world_rng, world, cues, tier, ltv)
    subjects, bodies = render_all(Stream(text_rng), templates, world, cues)
    created_ns = start.value + offsets.astype(np.int64) * 1_000_000_000
    frame = pd.DataFrame(
        {
            "ticket_id": pd.Series([f"{prefix}-{i:07d}" for i in range(1, n + 1)], dtype="str"),
            "created_at": pd.to_datetime(created_ns, unit="ns", utc=True),
            "channel": _names(CHANNELS, world["channel"]),
            "customer_id": pd.Series(universe["id"][customer], dtype="str"),
            "customer_tier": _names(TIERS, tier),
            "customer_ltv": ltv.astype(np.float64),
            "language": _names(LANGUAGES, world["language"]),
            "subject": pd.Series(subjects, dtype="str"),
            "body": pd.Series(bodies, dtype="str"),
        }
    )
    return _Simulation(frame, world, priority, created_ns)


def _rngs(seed: int, purpose: int) -> list[np.random.Generator]:
    """Independent generators for world, text, labels and side tables."""
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    children = np.random.SeedSequence([seed, purpose]).spawn(4)
    return [np.random.default_rng(child) for child in children]


def generate(
    n_tickets: int,
    months: int = 6,
    seed: int = 0,
    start: datetime | None = None,
    now: datetime | None = None,
) -> SyntheticData:
    """Generate a labeled ticket history with agent corrections and CSAT surveys.

    Args:
        n_tickets: number of tickets (at least 1).
        months: length of the history in calendar months (at least 1).
        seed: non-negative seed; the same arguments give identical data.
        start: first moment of the history (naive means UTC); 2026-01-01 UTC by default,
            moved back when the history would run past ``now``.
        now: the latest moment any row may carry (naive means UTC); the clock's by default.

    Returns:
        Tickets (original labels, a few percent wrong), the agent corrections
        (latest correction per field is the truth) and the surveys.

    Raises:
        ValueError: if ``n_tickets`` or ``months`` is below 1, ``seed`` is negative,
            or ``start`` is not in the past.
    """
    if n_tickets < 1 or months < 1:
        raise ValueError("n_tickets and months must be at least 1")
    rngs = _rngs(seed, 0)
    latest = _now(now)
    begin, end = _history_window(start, months, latest)
    sim = _simulate(rngs, n_tickets, begin, end, "TCK")
    label_rng, side_rng = rngs[2], rngs[3]
    labels = label_noise.degrade(label_rng, sim.world, sim.priority)
    tickets = sim.frame.assign(
        category=_names(CATEGORIES, labels.orig_cat), priority=_names(PRIORITIES, labels.orig_pri)
    )
    ids = tickets["ticket_id"].tolist()
    side_stream, templates = Stream(side_rng), load_templates()
    rows = label_noise.correction_rows(side_rng, side_stream, templates, labels, sim.created_ns)
    feedback = label_noise.feedback_frame(rows, ids)
    surveys = label_noise.survey_frame(
        side_rng, side_stream, templates, sim.world, labels, sim.created_ns, ids
    )
    return SyntheticData(
        tickets=tickets,
        feedback=feedback.assign(corrected_at=_not_after(feedback["corrected_at"], latest)),
        surveys=surveys.assign(answered_at=_not_after(surveys["answered_at"], latest)),
    )


def generate_unlabeled(
    n_tickets: int,
    seed: int = 0,
    start: datetime | None = None,
    days: int = 7,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Generate new, unlabeled tickets to score.

    Args:
        n_tickets: number of tickets (at least 1).
        seed: non-negative seed; the same arguments give identical data.
        start: tickets are created strictly after this moment (naive means
            UTC); 2026-07-01 UTC by default, right after a default 6-month history.
        days: length of the window after ``start``, cut at ``now``.
        now: the latest moment a ticket may carry (naive means UTC); the clock's by default.

    Returns:
        The ticket columns without ``category`` and ``priority``; ids look
        like ``NEW-0000001`` so they never collide with :func:`generate`'s.
        Customers come from the same fixed customer base as :func:`generate`.

    Raises:
        ValueError: if ``n_tickets`` or ``days`` is below 1, ``seed`` is negative, or
            ``start`` is not in the past.
    """
    if n_tickets < 1 or days < 1:
        raise ValueError("n_tickets and days must be at least 1")
    begin, latest = _utc(start, DEFAULT_UNLABELED_START), _now(now)
    if begin >= latest:
        raise ValueError(f"start {begin.isoformat()} is not in the past")
    end = min(begin + pd.Timedelta(days=days), latest)
    sim = _simulate(_rngs(seed, 1), n_tickets, begin, end, "NEW", min_offset=1)
    return sim.frame


def write(data: SyntheticData, out_dir: Path) -> dict[str, Path]:
    """Write the three tables as UTF-8 CSV files (header, no index).

    Args:
        data: what :func:`generate` returned.
        out_dir: target folder, created if missing.

    Returns:
        ``{"tickets": path, "feedback": path, "surveys": path}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, frame in (
        ("tickets", data.tickets),
        ("feedback", data.feedback),
        ("surveys", data.surveys),
    ):
        paths[name] = out_dir / f"{name}.csv"
        frame.to_csv(paths[name], index=False, encoding="utf-8", lineterminator="\n")
    return paths
