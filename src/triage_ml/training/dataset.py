"""The training snapshot: effective labels, joined surveys, and splits.

Label rule (documented in docs/data.md): for each ticket and each label field
(category, priority) the latest agent correction that sets the field wins;
ties on ``corrected_at`` go to the higher ``feedback_id`` so the result never
depends on read order. Without a correction the original label stands. The
provenance of every label is kept in ``category_source`` / ``category_by``
and ``priority_source`` / ``priority_by``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sqlalchemy.engine import Engine

from triage_ml import store
from triage_model import features


@dataclass(frozen=True)
class Snapshot:
    """Labeled tickets as one retraining run sees them."""

    frame: pd.DataFrame
    batch_ids: tuple[str, ...]
    digest: str


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
    return latest.set_index("ticket_id")[[column, "agent_id"]]


def resolve_labels(tickets: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Apply agent corrections to the original labels, keeping provenance."""
    out = tickets.copy()
    for field in ("category", "priority"):
        out[f"{field}_source"] = np.where(out[field].notna(), "original", None)
        out[f"{field}_by"] = None
        if feedback.empty:
            continue
        latest = _latest_corrections(feedback, field)
        hit = out["ticket_id"].isin(latest.index)
        keys = out.loc[hit, "ticket_id"]
        out.loc[hit, field] = latest.loc[keys, f"corrected_{field}"].to_numpy()
        out.loc[hit, f"{field}_source"] = "corrected"
        out.loc[hit, f"{field}_by"] = latest.loc[keys, "agent_id"].to_numpy()
    return out


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


def load_snapshot(engine: Engine) -> Snapshot:
    """Read every labeled ticket with its effective labels and CSAT."""
    with engine.connect() as conn:
        tickets = store.labeled_tickets(conn)
        feedback = store.all_feedback(conn)
        surveys = store.all_surveys(conn)
        contacts = store.customer_contacts(conn)
    frame = attach_surveys(resolve_labels(tickets, feedback), surveys)
    frame["repeat_contacts"] = features.repeat_contacts(frame, contacts)
    batch_ids = tuple(sorted(frame["batch_id"].unique().tolist()))
    return Snapshot(
        frame=frame.reset_index(drop=True), batch_ids=batch_ids, digest=frame_digest(frame)
    )


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
