"""The training snapshot: effective labels, joined surveys, and splits.

Label rule (documented in docs/data.md): for each ticket and each label field
(category, priority) the latest feedback row that sets the field wins; ties on
``corrected_at`` go to the higher ``feedback_id`` so the result never depends
on read order. Without one the original label stands. The provenance of every
label is kept in ``category_source`` / ``category_by`` and ``priority_source`` /
``priority_by``: one of ``store.tables.LABEL_SOURCES`` (a feedback row's
``label_source``, "agent-corrected" when it has none).

Training leaves ``auto-applied`` labels out unless asked: they are the model's
own answers that nobody checked, and learning from them repeats its mistakes.

The further heads' labels (``subcategory``, ``type``, ``team``: :data:`HEAD_LABEL_FIELDS`)
are the ingested ones, None where a ticket has none: feedback corrects only
category and priority, so a ticket labeled by feedback alone has no head labels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sqlalchemy.engine import Connection, Engine

from triage_ml import store
from triage_ml.store import review as review_queries
from triage_ml.store.queries import HEAD_LABEL_FIELDS
from triage_ml.store.tables import AUTO_APPLIED, CORRECTED, LABEL_SOURCES, ORIGINAL
from triage_model import features


@dataclass(frozen=True)
class Snapshot:
    """Labeled tickets as one retraining run sees them."""

    frame: pd.DataFrame
    batch_ids: tuple[str, ...]
    digest: str
    # Category labels by source (LABEL_SOURCES), for the run's log and MLflow params.
    labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Split:
    """The fit part (candidates are chosen and fitted inside it) and the held-out test part."""

    train: pd.DataFrame
    test: pd.DataFrame
    strategy: str

    @property
    def time_ordered(self) -> bool:
        """Whether the fit part is in time order (so folds inside it can be too)."""
        return self.strategy == "time"


def _latest_corrections(feedback: pd.DataFrame, field: str) -> pd.DataFrame:
    column = f"corrected_{field}"
    rows = feedback[feedback[column].notna()].sort_values(["corrected_at", "feedback_id"])
    latest = rows.groupby("ticket_id", sort=False).tail(1)
    return latest.set_index("ticket_id")[[column, "agent_id", "label_source"]]


def feedback_sources(feedback: pd.DataFrame) -> pd.Series:
    """Each feedback row's label source: its ``label_source``, "agent-corrected" when unset.

    Rows stored before label sources existed were all agents' corrections.
    """
    given = feedback.get("label_source")
    if given is None:
        return pd.Series(CORRECTED, index=feedback.index, dtype=object)
    return given.astype(object).where(given.notna(), CORRECTED)


def resolve_labels(tickets: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Apply feedback labels to the original labels, keeping provenance.

    ``<field>_source`` is one of ``LABEL_SOURCES`` ("original" for an ingested
    label), ``<field>_by`` the agent of the winning feedback row.
    """
    out = tickets.copy()
    if not feedback.empty:
        feedback = feedback.assign(label_source=feedback_sources(feedback))
    for label in ("category", "priority"):
        out[f"{label}_source"] = np.where(out[label].notna(), ORIGINAL, None)
        out[f"{label}_by"] = None
        if feedback.empty:
            continue
        latest = _latest_corrections(feedback, label)
        hit = out["ticket_id"].isin(latest.index)
        keys = out.loc[hit, "ticket_id"]
        out.loc[hit, label] = latest.loc[keys, f"corrected_{label}"].to_numpy()
        out.loc[hit, f"{label}_source"] = latest.loc[keys, "label_source"].to_numpy()
        out.loc[hit, f"{label}_by"] = latest.loc[keys, "agent_id"].to_numpy()
    return out


FINAL_COLUMNS: tuple[str, ...] = ("category", "category_source", "priority", "priority_source")


def final_labels(tickets: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Each ticket's final labels and where they came from, whatever the source.

    Auto-applied labels count here (they are what the ticket ended with);
    only training leaves them out (see :func:`training_feedback`).

    Args:
        tickets: at least ``ticket_id``, ``category`` and ``priority``.
        feedback: stored feedback rows (``store.all_feedback``).

    Returns:
        A frame indexed by ``ticket_id`` with :data:`FINAL_COLUMNS`; NaN / None
        where a ticket has no label of that field.
    """
    resolved = resolve_labels(tickets[["ticket_id", "category", "priority"]], feedback)
    return resolved.set_index("ticket_id")[list(FINAL_COLUMNS)]


def training_feedback(feedback: pd.DataFrame, use_auto_applied: bool) -> pd.DataFrame:
    """The feedback rows training learns from: all, or all but the auto-applied ones."""
    if use_auto_applied or feedback.empty:
        return feedback
    return feedback[feedback_sources(feedback) != AUTO_APPLIED]


def label_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many category labels of a snapshot came from each source (every source named)."""
    counts = frame["category_source"].value_counts()
    return {source: int(counts.get(source, 0)) for source in LABEL_SOURCES}


def attach_surveys(frame: pd.DataFrame, surveys: pd.DataFrame) -> pd.DataFrame:
    """Add each ticket's latest CSAT score (NaN when it has none)."""
    if surveys.empty:
        return frame.assign(csat=np.nan)
    latest = (
        surveys.sort_values("answered_at")
        .groupby("ticket_id")
        .tail(1)
        .set_index("ticket_id")["csat"]
    )
    return frame.assign(csat=frame["ticket_id"].map(latest).astype(float))


def frame_digest(frame: pd.DataFrame) -> str:
    """Stable short digest of a frame's content (column names and values), for lineage."""
    hashed = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
    # Row hashes ignore column names; a renamed column is different data.
    names = "\x1f".join(map(str, frame.columns)).encode("utf-8")
    return hashlib.sha256(names + hashed.tobytes()).hexdigest()[:16]


def load_snapshot(engine: Engine, use_auto_applied: bool = False) -> Snapshot:
    """Read every labeled ticket with its effective labels and CSAT.

    A ticket is labeled by its original label or by feedback (a ticket
    ingested unlabeled and answered by an agent is a training row).

    Args:
        engine: the ticket store.
        use_auto_applied: learn from auto-applied labels too (the setting
            ``train.use_auto_applied_labels``); by default the original label
            stands and a ticket whose only label is auto-applied is left out.
    """
    with engine.connect() as conn:
        tickets = _label_candidates(conn)
        feedback = training_feedback(store.all_feedback(conn), use_auto_applied)
        surveys = store.all_surveys(conn)
        contacts = store.customer_contacts(conn)
    resolved = with_head_labels(resolve_labels(tickets, feedback))
    frame = attach_surveys(resolved[resolved["category"].notna()].reset_index(drop=True), surveys)
    frame["repeat_contacts"] = features.repeat_contacts(frame, contacts)
    batch_ids = tuple(sorted(frame["batch_id"].unique().tolist()))
    return Snapshot(
        frame=frame.reset_index(drop=True),
        batch_ids=batch_ids,
        digest=frame_digest(frame),
        labels=label_counts(frame),
    )


def _label_candidates(conn: Connection) -> pd.DataFrame:
    """Tickets with an original label, and unlabeled ones that feedback may label."""
    labeled = store.labeled_tickets(conn)
    answered = review_queries.feedback_labeled_tickets(conn)
    if answered.empty:
        return labeled
    both = pd.concat([labeled, answered], ignore_index=True)
    # The store's order (time, then id; SQLite puts unknown times first), so the digest is stable.
    return both.sort_values(["created_at", "ticket_id"], na_position="first", kind="stable")


def with_head_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every head label column (:data:`HEAD_LABEL_FIELDS`), None where absent."""
    out = frame.copy()
    for column in HEAD_LABEL_FIELDS:
        values = out[column] if column in out.columns else pd.Series(None, index=out.index)
        out[column] = values.astype(object).where(values.notna(), None)
    return out


def time_split(frame: pd.DataFrame, test_days: int) -> Split:
    """The most recent ``test_days`` are the test set; the rest, in time order, is fitted on.

    This is what a monthly retraining sees: it is judged on the newest month.
    """
    ordered = frame.sort_values(["created_at", "ticket_id"]).reset_index(drop=True)
    cutoff = ordered["created_at"].max() - pd.Timedelta(days=test_days)
    test = ordered[ordered["created_at"] > cutoff]
    rest = ordered[ordered["created_at"] <= cutoff]
    return Split(rest, test, "time")


def stratified_split(frame: pd.DataFrame, test_fraction: float, seed: int) -> Split:
    """Random stratified fit / test split, for data without time."""
    labels = frame["category"].to_numpy(dtype=object)
    rest, test = train_test_split(
        frame, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return Split(rest, test, "stratified")


def split_snapshot(frame: pd.DataFrame, test_days: int, test_fraction: float, seed: int) -> Split:
    """Time-aware split when timestamps allow it, stratified otherwise."""
    if frame["created_at"].notna().all():
        split = time_split(frame, test_days)
        if _usable(split):
            return split
    return stratified_split(frame, test_fraction, seed)


def _usable(split: Split) -> bool:
    # A time split is only useful when every part is big enough and the test
    # month is not a sliver of the history.
    total = len(split.train) + len(split.test)
    return (
        len(split.test) >= max(20, 0.05 * total)
        and len(split.test) <= 0.5 * total
        and split.train["category"].nunique() >= 2
    )
