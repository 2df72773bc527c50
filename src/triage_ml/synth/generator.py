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

Beside category and priority, every labeled ticket carries the ``subcategory``,
ITIL ``type`` and ``team`` the help desk recorded (:mod:`triage_ml.synth.heads`).
Part of the German customers write in German (``GERMAN_TEXT_SHARE``), and about
2% of the tickets re-send an earlier open ticket of the same customer, with
``duplicate_of`` naming it (:mod:`triage_ml.synth.duplicates`). Both draw from
generators of their own, so a ticket that is neither keeps the columns the same
seed gave before they existed (surveys and corrections shift where a re-send's
copied state changes a draw's outcome; their distributions do not).

Example:
    >>> data = generate(1_000, months=3, seed=7)
    >>> len(data.tickets), list(data.tickets.columns[-6:])
    (1000, ['category', 'priority', 'subcategory', 'type', 'team', 'duplicate_of'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from triage_ml.synth import duplicates as resends
from triage_ml.synth import heads as recorded
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
from triage_ml.synth.templates import load_german_templates, load_templates
from triage_ml.synth.text import Stream, render_all

# A history moved back to end before now leaves this much room for the new tickets to score.
NEW_TICKET_ROOM = pd.Timedelta(days=7)
# Share of the German customers' tickets written in German (the others write English).
GERMAN_TEXT_SHARE = 0.6
_GERMAN = LANGUAGES.index("de")
# Generators per purpose, in spawn order: the first four are the ones the generator had
# before German text, re-sends and further labels, so their draws stay as they were.
_WORLD, _TEXT, _LABELS, _SIDE, _GERMAN_TEXT, _RESENDS, _HEADS = range(7)


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
    cues: np.ndarray
    tier: np.ndarray
    duplicate_of: pd.Series


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


class _Hidden(NamedTuple):
    """Per-ticket state drawn before the text: world, customer, cues and true priority."""

    world: dict[str, np.ndarray]
    customer: np.ndarray
    tier: np.ndarray
    ltv: np.ndarray
    cues: np.ndarray
    priority: np.ndarray

    def copied(self, originals: np.ndarray) -> _Hidden:
        """The same state with every re-send's row copied from its original."""
        return _Hidden(
            world={k: resends.copy_rows(v, originals) for k, v in self.world.items()},
            customer=resends.copy_rows(self.customer, originals),
            tier=resends.copy_rows(self.tier, originals),
            ltv=resends.copy_rows(self.ltv, originals),
            cues=resends.copy_rows(self.cues, originals),
            priority=resends.copy_rows(self.priority, originals),
        )


def _draw_hidden(rng: np.random.Generator, n: int, universe: dict[str, np.ndarray]) -> _Hidden:
    """World, customer, cues and true priority of ``n`` tickets, from the world generator."""
    customer = rng.choice(len(universe["id"]), size=n, p=universe["weight"])
    tier, ltv = universe["tier"][customer], universe["ltv"][customer]
    world = hidden.draw_world(rng, n, load_templates().topics)
    cues = hidden.draw_cues(rng, world, tier)
    priority = hidden.true_priority(rng, world, cues, tier, ltv)
    return _Hidden(world, customer, tier, ltv, cues, priority)


def _texts(
    rngs: Sequence[np.random.Generator], state: _Hidden, originals: np.ndarray
) -> tuple[list[str], list[str]]:
    """Subjects and bodies: English, then German for some, then the re-sends rewritten.

    Every ticket is first written as before; the German rows are then rewritten
    from their own stream, so the English stream's draws never shift.
    """
    subjects, bodies = render_all(Stream(rngs[_TEXT]), load_templates(), state.world, state.cues)
    german = (state.world["language"] == _GERMAN) & (
        rngs[_GERMAN_TEXT].random(len(subjects)) < GERMAN_TEXT_SHARE
    )
    rows = np.flatnonzero(german)
    if len(rows):
        part = {k: v[rows] for k, v in state.world.items()}
        de = render_all(Stream(rngs[_GERMAN_TEXT]), load_german_templates(), part, state.cues[rows])
        for row, subject, body in zip(rows.tolist(), *de, strict=True):
            subjects[row], bodies[row] = subject, body
    languages = np.where(german, "de", "en").tolist()
    duplicates = load_templates().duplicates
    if duplicates is None:
        return subjects, bodies
    return resends.resend_texts(
        Stream(rngs[_RESENDS]), duplicates, (subjects, bodies), originals, languages
    )


def _simulate(
    rngs: Sequence[np.random.Generator],
    n: int,
    start: pd.Timestamp,
    end: pd.Timestamp,
    prefix: str,
    min_offset: int = 0,
) -> _Simulation:
    """Draw ``n`` tickets between ``start`` and ``end`` (labels not attached yet)."""
    world_rng = rngs[_WORLD]
    offsets = np.maximum(hidden.created_offsets(world_rng, n, start, end), min_offset)
    universe = hidden.customer_universe(max(50, n // 3))
    drawn = _draw_hidden(world_rng, n, universe)
    created_ns = start.value + offsets.astype(np.int64) * 1_000_000_000
    originals = resends.pick_originals(rngs[_RESENDS], created_ns)
    subjects, bodies = _texts(rngs, drawn, originals)
    state = drawn.copied(originals)
    ids = np.array([f"{prefix}-{i:07d}" for i in range(1, n + 1)], dtype=object)
    frame = pd.DataFrame(
        {
            "ticket_id": pd.Series(ids, dtype="str"),
            "created_at": pd.to_datetime(created_ns, unit="ns", utc=True),
            "channel": _names(CHANNELS, state.world["channel"]),
            "customer_id": pd.Series(universe["id"][state.customer], dtype="str"),
            "customer_tier": _names(TIERS, state.tier),
            "customer_ltv": state.ltv.astype(np.float64),
            "language": _names(LANGUAGES, state.world["language"]),
            "subject": pd.Series(subjects, dtype="str"),
            "body": pd.Series(bodies, dtype="str"),
        }
    )
    duplicate_of = pd.Series(np.where(originals >= 0, ids[originals], None), dtype="str")
    return _Simulation(
        frame, state.world, state.priority, created_ns, state.cues, state.tier, duplicate_of
    )


def _with_labels(
    rng: np.random.Generator, sim: _Simulation, labels: label_noise.Labels, rows: list[tuple]
) -> pd.DataFrame:
    """The tickets with their original labels, the further labels and ``duplicate_of``.

    Subcategory, type and team are recorded under the category the corrections
    (``rows``) leave, so they agree with the labels the store resolves.
    """
    final = label_noise.final_categories(labels.orig_cat, rows)
    heads = recorded.record(rng, sim.world, final, sim.cues, sim.tier, load_templates().topics)
    return sim.frame.assign(
        category=_names(CATEGORIES, labels.orig_cat),
        priority=_names(PRIORITIES, labels.orig_pri),
        subcategory=pd.Series(heads.subcategory, dtype="str"),
        type=pd.Series(heads.ticket_type, dtype="str"),
        team=pd.Series(heads.team, dtype="str"),
        duplicate_of=sim.duplicate_of,
    )


def _rngs(seed: int, purpose: int) -> list[np.random.Generator]:
    """Independent generators for world, text, labels, side tables, German text, re-sends
    and further labels (spawned children: the first ones do not depend on how many follow)."""
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    children = np.random.SeedSequence([seed, purpose]).spawn(7)
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
        Tickets (original labels, a few percent wrong; subcategory, type and team
        recorded under the ticket's final category, the one its corrections leave;
        ``duplicate_of`` the original of a re-send, else missing), the agent
        corrections (latest correction per field is the truth) and the surveys.

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
    label_rng, side_rng = rngs[_LABELS], rngs[_SIDE]
    labels = label_noise.degrade(label_rng, sim.world, sim.priority)
    ids = sim.frame["ticket_id"].tolist()
    side_stream, templates = Stream(side_rng), load_templates()
    rows = label_noise.correction_rows(side_rng, side_stream, templates, labels, sim.created_ns)
    tickets = _with_labels(rngs[_HEADS], sim, labels, rows)
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
        The ticket columns without labels, then ``duplicate_of`` (re-sends among
        the new tickets); ids look like ``NEW-0000001`` so they never collide with
        :func:`generate`'s. Customers come from the same fixed customer base as
        :func:`generate`.

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
    return sim.frame.assign(duplicate_of=sim.duplicate_of)


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
