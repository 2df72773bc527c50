"""Unit tests of the training snapshot: effective labels, surveys, splits, digest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import store
from triage_ml.training import dataset

pytestmark = pytest.mark.unit

T0 = pd.Timestamp("2026-01-01T00:00:00Z")


def tickets() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticket_id": ["A", "B", "C"],
            "created_at": [T0, T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=2)],
            "category": ["Billing", "Sales", "Account"],
            "priority": ["high", "low", None],
        }
    )


def correction(
    feedback_id: str,
    ticket_id: str,
    category: str | None,
    priority: str | None,
    day: int,
    agent: str,
) -> dict[str, object]:
    return {
        "feedback_id": feedback_id,
        "ticket_id": ticket_id,
        "corrected_category": category,
        "corrected_priority": priority,
        "agent_id": agent,
        "corrected_at": T0 + pd.Timedelta(days=day),
    }


def resolve(*rows: dict[str, object]) -> pd.DataFrame:
    return dataset.resolve_labels(tickets(), pd.DataFrame(list(rows))).set_index("ticket_id")


def test_without_corrections_the_original_labels_stand() -> None:
    empty = pd.DataFrame(
        columns=[
            "feedback_id",
            "ticket_id",
            "corrected_category",
            "corrected_priority",
            "agent_id",
            "corrected_at",
        ]
    )
    out = dataset.resolve_labels(tickets(), empty).set_index("ticket_id")
    assert out["category"].tolist() == ["Billing", "Sales", "Account"]
    assert out["category_source"].tolist() == ["original"] * 3
    assert out["priority_source"].iloc[:2].tolist() == ["original", "original"]
    assert pd.isna(out.at["C", "priority_source"])
    assert out["category_by"].isna().all()


def test_latest_correction_wins_whatever_the_row_order() -> None:
    rows = [
        correction("f9", "A", "Account", None, 5, "late"),
        correction("f1", "A", "Sales", None, 3, "early"),
    ]
    for order in (rows, rows[::-1]):
        out = resolve(*order)
        assert (
            out.at["A", "category"],
            out.at["A", "category_source"],
            out.at["A", "category_by"],
        ) == ("Account", "agent-corrected", "late")
    assert (out.at["B", "category"], out.at["B", "category_source"]) == ("Sales", "original")
    assert out.at["B", "category_by"] is None


def test_tie_on_time_goes_to_the_higher_feedback_id() -> None:
    rows = [
        correction("f2", "A", "Returns", None, 3, "two"),
        correction("f1", "A", "Sales", None, 3, "one"),
    ]
    for order in (rows, rows[::-1]):
        out = resolve(*order)
        assert (out.at["A", "category"], out.at["A", "category_by"]) == ("Returns", "two")


def test_each_label_field_resolves_on_its_own() -> None:
    out = resolve(
        correction("f1", "A", "Account", None, 3, "cat-agent"),
        correction("f2", "A", None, "critical", 4, "pri-agent"),
        correction("f3", "B", None, "high", 4, "pri-agent"),
        correction("f4", "C", None, "low", 4, "pri-agent"),
    )
    # A later priority-only correction does not undo the category correction.
    assert out.loc["A", ["category", "category_by", "priority", "priority_by"]].tolist() == [
        "Account",
        "cat-agent",
        "critical",
        "pri-agent",
    ]
    # A priority-only correction leaves the original category and its provenance.
    assert out.loc[
        "B", ["category", "category_source", "priority", "priority_source"]
    ].tolist() == ["Sales", "original", "high", "agent-corrected"]
    assert out.loc["C", ["priority", "priority_source"]].tolist() == ["low", "agent-corrected"]


def test_attach_surveys_takes_each_tickets_latest_score() -> None:
    surveys = pd.DataFrame(
        {
            "ticket_id": ["A", "A", "B"],
            "csat": [5, 1, 3],
            "answered_at": [T0 + pd.Timedelta(days=9), T0 + pd.Timedelta(days=2), T0],
        }
    )
    out = dataset.attach_surveys(tickets(), surveys).set_index("ticket_id")["csat"]
    assert out["A"] == 5.0 and out["B"] == 3.0 and np.isnan(out["C"])
    assert dataset.attach_surveys(tickets(), surveys.iloc[:0])["csat"].isna().all()


def history(days: int = 120) -> pd.DataFrame:
    """One ticket a day over ``days`` days, classes cycling."""
    return pd.DataFrame(
        {
            "ticket_id": [f"T{i:03d}" for i in range(days)],
            "created_at": [T0 + pd.Timedelta(days=i, hours=9) for i in range(days)][::-1],
            "category": [("Billing", "Sales", "Account")[i % 3] for i in range(days)],
        }
    )


def test_time_split_tests_on_the_newest_month_and_trains_on_older_data() -> None:
    frame = history()
    split = dataset.split_snapshot(frame, test_days=30, test_fraction=0.2, seed=0)
    newest = frame["created_at"].max()
    assert split.strategy == "time" and split.time_ordered
    assert (split.test["created_at"] > newest - pd.Timedelta(days=30)).all()
    assert len(split.test) == 30
    assert split.train["created_at"].is_monotonic_increasing  # folds inside it keep time order
    assert split.train["created_at"].max() < split.test["created_at"].min()
    assert len(split.train) + len(split.test) == len(frame)
    assert set(split.train["ticket_id"]).isdisjoint(split.test["ticket_id"])


def test_stratified_split_when_timestamps_are_missing() -> None:
    frame = history().assign(created_at=pd.NaT)
    split = dataset.split_snapshot(frame, test_days=30, test_fraction=0.25, seed=0)
    assert split.strategy == "stratified" and not split.time_ordered
    assert len(split.test) == 30 and len(split.train) == 90
    assert split.test["category"].value_counts().tolist() == [10, 10, 10]
    assert set(split.train["ticket_id"]).isdisjoint(split.test["ticket_id"])


def test_stratified_split_when_the_newest_month_is_most_of_the_data() -> None:
    frame = history(40)
    split = dataset.split_snapshot(frame, test_days=30, test_fraction=0.25, seed=0)
    assert split.strategy == "stratified"


def test_frame_digest_is_stable_and_content_sensitive() -> None:
    frame = history(10)
    digest = dataset.frame_digest(frame)
    assert (
        digest
        == dataset.frame_digest(frame.copy())
        == dataset.frame_digest(frame.set_index("ticket_id", drop=False))
    )
    changed = frame.copy()
    changed.loc[3, "category"] = "Returns"
    assert dataset.frame_digest(changed) != digest
    assert dataset.frame_digest(frame.iloc[::-1]) != digest
    assert dataset.frame_digest(frame.rename(columns={"category": "label"})) != digest


def test_load_snapshot_reads_effective_labels_from_the_store(engine: sa.Engine) -> None:
    base = tickets().assign(
        body="text", content_hash="h", ingested_at=T0, batch_id=["b1", "b1", "b2"]
    )
    fb = pd.DataFrame([correction("f1", "B", "Returns", None, 4, "agent-7")]).assign(
        batch_id="b3", ingested_at=T0
    )
    sv = pd.DataFrame(
        {
            "survey_id": ["s1"],
            "ticket_id": ["A"],
            "csat": [2],
            "answered_at": [T0],
            "batch_id": "b4",
            "ingested_at": [T0],
        }
    )
    with engine.begin() as conn:
        for batch_id in ("b1", "b2"):
            record_batch(conn, batch_id, store.ACCEPTED)
        store.insert_rows(conn, store.tickets, base, ("created_at", "ingested_at"))
        store.insert_rows(conn, store.feedback, fb, ("corrected_at", "ingested_at"))
        store.insert_rows(conn, store.surveys, sv, ("answered_at", "ingested_at"))
    snapshot = dataset.load_snapshot(engine)
    frame = snapshot.frame.set_index("ticket_id")
    assert frame.loc["B", ["category", "category_source", "category_by"]].tolist() == [
        "Returns",
        "agent-corrected",
        "agent-7",
    ]
    assert frame.at["A", "csat"] == 2.0
    assert snapshot.batch_ids == ("b1", "b2")
    assert snapshot.digest == dataset.load_snapshot(engine).digest


def record_batch(conn: sa.Connection, batch_id: str, status: str) -> None:
    store.record_batch(
        conn,
        {
            "batch_id": batch_id,
            "kind": "tickets",
            "source": "test",
            "rows_read": 1,
            "rows_stored": 1,
            "rows_quarantined": 0,
            "rows_skipped": 0,
            "status": status,
            "report": None,
        },
    )


def test_blocked_batches_stay_out_of_training_until_accepted(engine: sa.Engine) -> None:
    base = tickets().assign(
        body="text", content_hash="h", ingested_at=T0, batch_id=["ok", "ok", "bad"]
    )
    with engine.begin() as conn:
        record_batch(conn, "ok", store.ACCEPTED)
        record_batch(conn, "bad", store.BLOCKED)
        store.insert_rows(conn, store.tickets, base, ("created_at", "ingested_at"))
    assert sorted(dataset.load_snapshot(engine).batch_ids) == ["ok"]
    with engine.begin() as conn:
        assert store.set_batch_status(conn, "bad", store.ACCEPTED, "reviewed by a human")
        assert not store.set_batch_status(conn, "nope", store.ACCEPTED, "")
    assert sorted(dataset.load_snapshot(engine).batch_ids) == ["bad", "ok"]
