"""Drift, before labels arrive: recent tickets compared with the champion's training tickets.

Six figures are compared: the predicted category, the model's confidence, the share of a
ticket's tokens outside the reference vocabulary, body length, language and channel. Each
gets a population stability index (PSI) and a p-value from scipy's tests (chi-squared on the
counts for categories, two-sample Kolmogorov-Smirnov for numbers); a figure has drifted when
both say so on enough rows. Every figure is also broken down by segment (channel, language,
customer tier, campaign), and labels agents gave that the champion does not know are listed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from scipy import stats
from sklearn.feature_extraction.text import CountVectorizer
from sqlalchemy.engine import Engine

from triage_ml.registry.lineage import trained_on
from triage_ml.settings import MonitorSettings, Settings
from triage_ml.store import drift as drift_queries
from triage_ml.store import utcnow
from triage_model import features
from triage_model.predictor import UNKNOWN, input_frame

logger = logging.getLogger(__name__)

REFERENCE_ROWS = 5_000
REFERENCE_SEED = 0
# A figure drifts only when its difference is also unlikely to be chance.
P_VALUE = 0.01
NUMERIC_BINS = 10
# PSI's floor for an empty bin: the index is infinite without one (the usual 1e-4).
EMPTY_SHARE = 1e-4
CATEGORICAL_FIGURES: tuple[str, ...] = ("prediction", "language", "channel")
NUMERIC_FIGURES: tuple[str, ...] = ("confidence", "oov_share", "length")
FIGURES: tuple[str, ...] = (
    "prediction",
    "confidence",
    "oov_share",
    "length",
    "language",
    "channel",
)
SEGMENTS: tuple[str, ...] = ("channel", "language", "customer_tier", "campaign_id")


@dataclass(frozen=True)
class DriftReport:
    """Recent tickets against the champion's training tickets.

    ``figures``: one dict per figure (name, psi, p_value, drifted, reference_rows,
    current_rows); ``segments``: per segment column, one dict per segment value and figure
    (value, basis "segment" or "all", and the figure's keys); ``campaigns``: per campaign,
    tickets, share, top_categories and mean_sentiment; ``message`` says why nothing was
    compared (then ``figures`` and ``segments`` are empty and ``drifted`` is False).
    """

    figures: list[dict[str, Any]] = field(default_factory=list)
    new_labels: list[str] = field(default_factory=list)
    segments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    drifted: bool = False
    message: str | None = None
    reference_rows: int = 0
    current_rows: int = 0


# --- reading: the reference sample and the recent tickets ---------------------------------


def reference(
    engine: Engine, client: MlflowClient, settings: Settings, champion_version: str
) -> pd.DataFrame:
    """The champion's training tickets (its run's lineage), sampled to ``REFERENCE_ROWS``.

    Args:
        engine: The ticket store.
        client: The MLflow client of the workspace's registry.
        settings: The workspace settings (its model name).
        champion_version: The champion's version.

    Returns:
        The tickets with the model's inputs (``repeat_contacts`` counted as scoring counts it),
        their labels, ``campaign_id`` and ``created_at``; empty when the lineage is unknown.
    """
    lineage = trained_on(client, settings.model_name, str(champion_version))
    with engine.connect() as conn:
        if lineage.ticket_ids is not None:
            ids = sorted(lineage.ticket_ids)
        elif lineage.batch_ids is not None:
            ids = drift_queries.labeled_ids_in_batches(conn, sorted(lineage.batch_ids))
        else:
            ids = []
        frame = drift_queries.tickets_by_ids(
            conn, sample_ids(ids), repeat_window_days=features.REPEAT_WINDOW_DAYS
        )
    logger.info(
        "drift reference: %d of version %s's %d training tickets",
        len(frame),
        champion_version,
        len(ids),
    )
    return frame


def sample_ids(ids: list[str], rows: int | None = None, seed: int = REFERENCE_SEED) -> list[str]:
    """At most ``rows`` (default: ``REFERENCE_ROWS``) of ``ids``, fixed-seed drawn, in order."""
    rows = REFERENCE_ROWS if rows is None else rows
    ordered = sorted(ids)
    if len(ordered) <= rows:
        return ordered
    chosen = np.random.default_rng(seed).choice(len(ordered), size=rows, replace=False)
    return [ordered[i] for i in sorted(chosen)]


def recent(
    engine: Engine, champion_version: str, monitor: MonitorSettings, now: datetime | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Tickets of the last ``monitor.drift_days`` with the champion's answers, and feedback labels.

    Args:
        engine: The ticket store.
        champion_version: Whose served answers to read.
        monitor: The monitor settings (``drift_days``).
        now: The end of the window (default: the current time, UTC).

    Returns:
        The recent tickets (see :func:`triage_ml.store.drift.recent_tickets`) and the count
        of each category label agents gave in the same window.
    """
    end = pd.Timestamp(now or utcnow())
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    since = end - pd.Timedelta(days=monitor.drift_days)
    with engine.connect() as conn:
        current = drift_queries.recent_tickets(conn, since, str(champion_version))
        labels = drift_queries.feedback_categories(conn, since)
    # A run as of a past day sees no ticket created after it.
    later = pd.to_datetime(current["created_at"], utc=True) > end
    return current[~later].reset_index(drop=True), labels


def production_reference(
    engine: Engine,
    champion_version: str,
    monitor: MonitorSettings,
    reference: pd.DataFrame,
    now: datetime | None = None,
) -> pd.DataFrame | None:
    """The champion's answers in its first ``drift_days`` in production, once they are over.

    Production starts after the newest ticket of its training sample (``reference``): the
    answers of the shipped model itself to tickets it never learned from, the reference of
    the prediction and confidence figures when there is one, cut where the recent window
    starts. None without a training sample, or with fewer than ``drift_min_rows`` answers
    before the recent window.
    """
    if reference.empty or reference["created_at"].dropna().empty:
        return None
    end = pd.Timestamp(now or utcnow())
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    trained_until = pd.to_datetime(reference["created_at"], utc=True).max()
    with engine.connect() as conn:
        served = drift_queries.first_served(
            conn, str(champion_version), monitor.drift_days, trained_until
        )
    # Only what precedes the recent window: the first week may end minutes into it.
    served = served[served["created_at"] < end - pd.Timedelta(days=monitor.drift_days)]
    return served if len(served) >= monitor.drift_min_rows else None


# --- measuring ------------------------------------------------------------------------------


def measure(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    model: Any,
    classes: Iterable[str],
    feedback_labels: Iterable[str] | Mapping[str, int],
    monitor: MonitorSettings,
    held_out: pd.DataFrame | None = None,
    production: pd.DataFrame | None = None,
) -> DriftReport:
    """Compare recent tickets with the reference sample.

    Args:
        reference: The champion's training tickets (:func:`reference`).
        current: Recent tickets with the answers served to them: ``category`` (the served
            prediction), ``category_proba``, ``sentiment`` (optional), ``subject``/``body``
            (or ``body_length`` alone: then no out-of-vocabulary figure), and the segments.
        model: The loaded champion (pyfunc or predictor): it predicts the reference sample.
        classes: The champion's categories.
        feedback_labels: Category labels agents gave recently (a mapping: label to count).
        monitor: ``drift_min_rows`` and ``drift_threshold``.
        held_out: The champion's answers to its held-out test rows (ticket_id, category,
            category_proba; :func:`triage_ml.registry.lineage.held_out_answers`). When given,
            they are the reference of the prediction and confidence figures; otherwise the
            model predicts its own training tickets, on which it is more confident than on new
            ones (a false confidence drift on small histories).
        production: The champion's answers in its first week in production
            (:func:`production_reference`). When given, they are the reference of the
            prediction and confidence figures instead: the held-out answers come from a model
            fitted without the newest rows, which after a drift misses its new classes.

    Returns:
        The report; with too few rows on either side, only its message, new labels and campaigns.
    """
    new = new_labels(feedback_labels, classes)
    campaigns = campaign_summary(current)
    short = _too_few(len(reference), len(current), monitor.drift_min_rows)
    if short is not None:
        logger.info("drift: %s", short)
        return DriftReport(
            new_labels=new,
            campaigns=campaigns,
            message=short,
            reference_rows=len(reference),
            current_rows=len(current),
        )
    ref, cur = sides(reference, current, model, held_out)
    figures = with_basis(compare(ref, cur, monitor), answer_basis(held_out))
    if production is not None:
        first = production_side(production)
        served = compare(first, cur, monitor, ANSWER_FIGURES)
        figures = _replaced(figures, with_basis(served, "first production week"))
    segments = {column: segment_figures(ref, cur, column, monitor) for column in SEGMENTS}
    drifted = any(f["drifted"] for f in figures)
    logger.info(
        "drift: %d of %d figures drifted (%d recent vs %d reference tickets); %d new label(s)",
        sum(f["drifted"] for f in figures),
        len(figures),
        len(cur),
        len(ref),
        len(new),
    )
    return DriftReport(figures, new, segments, campaigns, drifted, None, len(ref), len(cur))


ANSWER_FIGURES: tuple[str, ...] = ("prediction", "confidence")


def answer_basis(held_out: pd.DataFrame | None) -> str:
    """What the prediction and confidence figures are compared with, short of production's."""
    return "held-out answers" if held_out is not None and len(held_out) else "training tickets"


def with_basis(figures: list[dict[str, Any]], answers: str) -> list[dict[str, Any]]:
    """Each figure with its ``basis``: ``answers`` for the two answer figures, else the tickets."""
    return [
        {**f, "basis": answers if f["name"] in ANSWER_FIGURES else "training tickets"}
        for f in figures
    ]


def production_side(production: pd.DataFrame) -> pd.DataFrame:
    """The production reference as a side of :func:`compare` (the answer figures only)."""
    return pd.DataFrame(
        {
            "prediction": production["category"].astype(object).to_numpy(),
            "confidence": pd.to_numeric(production["category_proba"]).to_numpy(dtype=float),
        }
    )


def _replaced(figures: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name = {f["name"]: f for f in new}
    return [by_name.get(f["name"], f) for f in figures]


def _too_few(reference_rows: int, current_rows: int, min_rows: int) -> str | None:
    if current_rows < min_rows:
        return f"not enough recent tickets ({current_rows} < {min_rows})"
    if reference_rows < min_rows:
        return f"not enough reference tickets ({reference_rows} < {min_rows})"
    return None


def new_labels(
    feedback_labels: Iterable[str] | Mapping[str, int], classes: Iterable[str]
) -> list[str]:
    """Category labels agents gave that the champion cannot predict, sorted."""
    known = {str(c) for c in classes} | {UNKNOWN}
    given = {str(label) for label in feedback_labels if label is not None and label == label}
    return sorted(given - known)


def sides(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    model: Any,
    held_out: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two sides as comparable frames: one column per figure and per segment.

    The reference's answers are the held-out ones where given (rows outside the test part
    get none), else ``model``'s. Its vocabulary is learned from one half of the reference,
    whose other half gives the reference's own out-of-vocabulary shares: learned from the
    whole, every reference token would be known by construction.
    """
    reference = reference.reset_index(drop=True)
    predicted = reference_answers(reference, model, held_out)
    learn = np.random.default_rng(REFERENCE_SEED).random(len(reference)) < 0.5
    vectorizer = _vocabulary(_texts(reference[learn]))
    ref_oov = pd.Series(oov_shares(vectorizer, _texts(reference)), dtype=float)
    ref = _side(
        reference, predicted["category"], predicted["category_proba"], ref_oov.where(~learn)
    )
    cur_oov = (
        oov_shares(vectorizer, _texts(current))
        if "body" in current.columns
        else np.full(len(current), np.nan)
    )
    cur = _side(current, current.get("category"), current.get("category_proba"), cur_oov)
    return ref, cur


def reference_answers(
    reference: pd.DataFrame, model: Any, held_out: pd.DataFrame | None
) -> pd.DataFrame:
    """``category`` and ``category_proba`` per reference row: held-out answers, or the model's."""
    if held_out is not None and len(held_out):
        answers = held_out.drop_duplicates("ticket_id").set_index("ticket_id")
        ids = reference["ticket_id"].astype(str)
        return pd.DataFrame(
            {
                "category": ids.map(answers["category"]).to_numpy(dtype=object),
                "category_proba": ids.map(answers["category_proba"]).to_numpy(dtype=float),
            }
        )
    return pd.DataFrame(model.predict(input_frame(reference))).reset_index(drop=True)


def _texts(frame: pd.DataFrame) -> list[str]:
    # What the model reads: subject and body together.
    subject = frame.get("subject", pd.Series("", index=frame.index)).fillna("").astype(str)
    return (subject + " " + frame["body"].fillna("").astype(str)).tolist()


def _vocabulary(texts: list[str]) -> CountVectorizer | None:
    try:
        return CountVectorizer().fit(texts)
    except ValueError:  # no token at all (empty texts): no vocabulary to measure against
        return None


def oov_shares(vectorizer: CountVectorizer | None, texts: list[str]) -> np.ndarray:
    """Per text, the share of its tokens (the vectorizer's own analyzer) outside its vocabulary.

    NaN for a text without tokens, or without a vocabulary.
    """
    out = np.full(len(texts), np.nan)
    if vectorizer is None:
        return out
    analyze, vocabulary = vectorizer.build_analyzer(), vectorizer.vocabulary_
    for i, text in enumerate(texts):
        tokens = analyze(text)
        if tokens:
            out[i] = sum(token not in vocabulary for token in tokens) / len(tokens)
    return out


def _side(frame: pd.DataFrame, prediction: Any, confidence: Any, oov: Any) -> pd.DataFrame:
    index = frame.index

    def column(name: str) -> pd.Series:
        if name not in frame.columns:
            return pd.Series(np.nan, index=index, dtype=object)
        return frame[name].astype(object).where(frame[name].notna(), None)

    if "body" in frame.columns:
        length = frame["body"].fillna("").astype(str).str.len().astype(float)
    else:
        length = pd.to_numeric(frame.get("body_length"), errors="coerce")
    return pd.DataFrame(
        {
            "prediction": _aligned(prediction, index, object),
            "confidence": _aligned(confidence, index, float),
            "oov_share": _aligned(oov, index, float),
            "length": _aligned(length, index, float),
            **{name: column(name) for name in SEGMENTS},
        },
        index=index,
    ).reset_index(drop=True)


def _aligned(values: Any, index: pd.Index, dtype: type) -> pd.Series:
    if values is None:
        return pd.Series(np.nan, index=index, dtype=dtype)
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    series = pd.Series(array, index=index)
    return series.astype(dtype) if dtype is float else series.astype(object)


def compare(
    ref: pd.DataFrame, cur: pd.DataFrame, monitor: MonitorSettings, names: Iterable[str] = FIGURES
) -> list[dict[str, Any]]:
    """One figure dict per name in ``names`` (see :class:`DriftReport`), two :func:`sides`."""
    out = []
    for name in names:
        compute = categorical_figure if name in CATEGORICAL_FIGURES else numeric_figure
        out.append(compute(name, ref[name], cur[name], monitor))
    return out


# --- statistics -----------------------------------------------------------------------------


def stability_index(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index of two binned distributions, the sum of (c - r) ln(c / r).

    Written here because neither scipy nor the pinned stack has PSI (Evidently, which does, is
    not in it). PSI is the symmetric Kullback-Leibler divergence, so scipy's ``entropy`` adds it
    up; empty bins get a floor share, as PSI is infinite otherwise.
    """
    ref = np.maximum(reference_counts / max(reference_counts.sum(), 1), EMPTY_SHARE)
    cur = np.maximum(current_counts / max(current_counts.sum(), 1), EMPTY_SHARE)
    return float(stats.entropy(cur, ref) + stats.entropy(ref, cur))


def categorical_figure(
    name: str, reference: pd.Series, current: pd.Series, monitor: MonitorSettings
) -> dict[str, Any]:
    """PSI over the categories and chi-squared p-value of the two sides' counts."""
    ref, cur = reference.dropna().astype(str), current.dropna().astype(str)
    levels = sorted(set(ref) | set(cur))
    ref_counts = ref.value_counts().reindex(levels, fill_value=0).to_numpy(dtype=float)
    cur_counts = cur.value_counts().reindex(levels, fill_value=0).to_numpy(dtype=float)
    p_value = 1.0
    if len(levels) > 1 and len(ref) and len(cur):
        p_value = float(stats.chi2_contingency(np.vstack([ref_counts, cur_counts])).pvalue)
    psi = stability_index(ref_counts, cur_counts) if len(ref) and len(cur) else 0.0
    return _figure(name, psi, p_value, len(ref), len(cur), monitor)


def numeric_figure(
    name: str, reference: pd.Series, current: pd.Series, monitor: MonitorSettings
) -> dict[str, Any]:
    """PSI over the reference's decile bins and the two-sample Kolmogorov-Smirnov p-value."""
    ref = pd.to_numeric(reference, errors="coerce").dropna().to_numpy(dtype=float)
    cur = pd.to_numeric(current, errors="coerce").dropna().to_numpy(dtype=float)
    if not len(ref) or not len(cur):
        return _figure(name, 0.0, 1.0, len(ref), len(cur), monitor)
    # Bins (-inf, e0], (e0, e1], ... (e_last, inf) on the reference's unique deciles: a mass
    # point (many tickets with no unknown token) keeps a bin of its own.
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, NUMERIC_BINS + 1)))
    bins = len(edges) + 1
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=bins)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=bins)
    psi = stability_index(ref_counts.astype(float), cur_counts.astype(float))
    p_value = float(stats.ks_2samp(ref, cur).pvalue)
    return _figure(name, psi, p_value, len(ref), len(cur), monitor)


def _figure(
    name: str, psi: float, p_value: float, ref_rows: int, cur_rows: int, monitor: MonitorSettings
) -> dict[str, Any]:
    enough = min(ref_rows, cur_rows) >= monitor.drift_min_rows
    return {
        "name": name,
        "psi": psi,
        "p_value": p_value,
        "drifted": bool(enough and psi > monitor.drift_threshold and p_value < P_VALUE),
        "reference_rows": int(ref_rows),
        "current_rows": int(cur_rows),
    }


# --- segments and campaigns -----------------------------------------------------------------


def segment_figures(
    ref: pd.DataFrame, cur: pd.DataFrame, column: str, monitor: MonitorSettings
) -> list[dict[str, Any]]:
    """Every figure per value of ``column`` with ``drift_min_rows`` recent tickets.

    A value is compared with the reference's tickets of the same value when it has enough of
    them (basis "segment"), else with the whole reference (basis "all": a new campaign, say).
    The segment's own column is not a figure of it (its mix is one value by construction).
    """
    names = [name for name in FIGURES if name != column]
    counts = cur[column].dropna().astype(str).value_counts()
    out: list[dict[str, Any]] = []
    for value in sorted(counts[counts >= monitor.drift_min_rows].index):
        part = cur[cur[column].astype(str) == value]
        same = ref[ref[column].notna() & (ref[column].astype(str) == value)]
        basis, against = ("segment", same) if len(same) >= monitor.drift_min_rows else ("all", ref)
        for figure in compare(against, part, monitor, names):
            out.append({"value": value, "basis": basis, **figure})
    return out


def campaign_summary(current: pd.DataFrame, top: int = 3) -> list[dict[str, Any]]:
    """Per campaign of the recent tickets: tickets, share, top predicted categories, sentiment.

    Largest campaign first; tickets without a campaign are counted in the shares' total only.
    """
    if "campaign_id" not in current.columns or current.empty:
        return []
    tagged = current[current["campaign_id"].notna()]
    out = []
    for campaign, group in tagged.groupby(tagged["campaign_id"].astype(str)):
        categories = group["category"].dropna() if "category" in group else pd.Series()
        sentiment = (
            pd.to_numeric(group["sentiment"], errors="coerce").mean()
            if "sentiment" in group
            else np.nan
        )
        out.append(
            {
                "campaign_id": campaign,
                "tickets": len(group),
                "share": len(group) / len(current),
                "top_categories": _most_common(categories.astype(str), top),
                "mean_sentiment": None if pd.isna(sentiment) else float(sentiment),
            }
        )
    return sorted(out, key=lambda row: (-row["tickets"], row["campaign_id"]))


def _most_common(values: pd.Series, top: int) -> list[str]:
    # Ties in name order, so that a summary reads the same on every run.
    counts = values.value_counts()
    return sorted(counts.index, key=lambda value: (-counts[value], value))[:top]


# --- rendering ------------------------------------------------------------------------------


def table(report: DriftReport) -> list[dict[str, Any]]:
    """Rows for a Prefect table artifact or the CLI: one per figure, then notes.

    A report that compared nothing is one row carrying its message; new labels are one row.
    """
    rows = [_row(figure) for figure in report.figures]
    if report.message:
        rows.append({**_row({"name": "all"}), "note": report.message})
    if report.new_labels:
        note = "labels the champion does not know: " + ", ".join(report.new_labels)
        rows.append({**_row({"name": "new labels"}), "note": note})
    return rows


def segment_table(report: DriftReport) -> list[dict[str, Any]]:
    """One row per segment value and figure, the drifted ones first."""
    rows = [
        {"segment": column, "value": item["value"], "basis": item["basis"], **_row(item)}
        for column, items in report.segments.items()
        for item in items
    ]
    for row in rows:
        del row["note"]
    return sorted(rows, key=lambda row: not row["drifted"])


def campaign_table(report: DriftReport) -> list[dict[str, Any]]:
    """The campaign summary as table rows (top categories joined, share and sentiment rounded)."""
    return [
        {
            **row,
            "share": round(row["share"], 3),
            "top_categories": ", ".join(row["top_categories"]),
            "mean_sentiment": None
            if row["mean_sentiment"] is None
            else round(row["mean_sentiment"], 3),
        }
        for row in report.campaigns
    ]


def _row(figure: Mapping[str, Any]) -> dict[str, Any]:
    psi, p_value = figure.get("psi"), figure.get("p_value")
    return {
        "figure": figure["name"],
        "psi": None if psi is None else round(psi, 4),
        "p_value": None if p_value is None else float(f"{p_value:.3g}"),
        "drifted": bool(figure.get("drifted", False)),
        "reference_rows": figure.get("reference_rows"),
        "current_rows": figure.get("current_rows"),
        "basis": figure.get("basis"),
        "note": None,
    }
