"""Live quality: windows, the "not enough labels" rule, provenance and per-class figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.metrics import f1_score

from triage_ml import store
from triage_ml.monitoring import live
from triage_ml.store.tables import (
    AUTO,
    AUTO_APPLIED,
    CONFIRMED,
    CORRECTED,
    ORIGINAL,
    REVIEW,
    SUGGEST,
    predictions,
    shadow_predictions,
)
from triage_model.predictor import UNKNOWN

pytestmark = pytest.mark.unit

MONDAY = pd.Timestamp("2026-03-02T09:00:00Z")


def served(n: int, **columns: object) -> pd.DataFrame:
    """``n`` served predictions of version 1, all "Billing", confirmed "Billing" by agents."""
    frame = pd.DataFrame(
        {
            "ticket_id": [f"T-{i:04d}" for i in range(n)],
            "model_version": "1",
            "category": "Billing",
            "category_proba": 0.9,
            "priority": "low",
            "tier": SUGGEST,
            "needs_review": False,
            "scored_at": MONDAY + pd.Timedelta(hours=1),
            "created_at": MONDAY,
            "final_category": "Billing",
            "final_category_source": CONFIRMED,
            "final_priority": "low",
            "final_priority_source": CONFIRMED,
        }
    )
    return frame.assign(**columns)


def only_window(frame: pd.DataFrame, min_labels: int = 5, window: str = "week") -> live.Window:
    report = live.live_quality(frame, window, min_labels)
    assert list(report.versions) == ["1"]
    (found,) = report.versions["1"]
    return found


def test_weeks_start_on_monday_and_steps_count_days_since_1970() -> None:
    created = pd.Series(
        pd.to_datetime(
            ["2026-03-02T00:00Z", "2026-03-08T23:59Z", "2026-03-09T00:00Z", "2026-03-04T12:00Z"]
        )
    )
    frame = served(4, created_at=created.to_numpy())
    weeks = live.live_quality(frame, "week", 1).versions["1"]
    assert [w.start for w in weeks] == [
        pd.Timestamp("2026-03-02", tz="UTC"),
        pd.Timestamp("2026-03-09", tz="UTC"),
    ]
    assert [w.predictions for w in weeks] == [3, 1]
    assert weeks[0].step == (pd.Timestamp("2026-03-02") - pd.Timestamp("1970-01-01")).days
    assert weeks[1].step == weeks[0].step + 7
    days = live.live_quality(frame, "day", 1).versions["1"]
    assert [w.predictions for w in days] == [1, 1, 1, 1]
    assert [w.step for w in days] == sorted(w.step for w in days)


def test_a_ticket_without_created_at_is_placed_by_scored_at() -> None:
    frame = served(2, created_at=[MONDAY, pd.NaT])
    frame.loc[1, "scored_at"] = MONDAY + pd.Timedelta(days=8)
    weeks = live.live_quality(frame, "week", 1).versions["1"]
    assert [w.start.date().isoformat() for w in weeks] == ["2026-03-02", "2026-03-09"]


def test_versions_are_reported_apart() -> None:
    frame = pd.concat([served(6), served(4, model_version="2", category="Refund")])
    report = live.live_quality(frame, "week", 3)
    assert sorted(report.versions) == ["1", "2"]
    assert report.versions["1"][0].figures["category_accuracy"] == 1.0
    assert report.versions["2"][0].figures["category_accuracy"] == 0.0


def test_too_few_labels_gives_the_count_and_no_label_figure() -> None:
    frame = served(20, final_category=[*["Billing"] * 12, *[np.nan] * 8])
    frame.loc[12:, "final_category_source"] = np.nan
    found = only_window(frame, min_labels=30)
    assert not found.enough
    assert found.message == "not enough labels (12 < 30)"
    assert (found.predictions, found.labeled) == (20, 12)
    assert not set(live.LABEL_FIGURES) & set(found.figures)
    assert found.per_class == {}
    assert found.figures["unlabeled_share"] == pytest.approx(8 / 20)
    row = live.table(live.live_quality(frame, "week", 30))[0]
    assert row["accuracy"] is None and row["macro_f1"] is None
    assert row["note"] == "not enough labels (12 < 30)"


def test_auto_applied_labels_are_not_labels() -> None:
    # Ten wrong answers confirmed by agents; ten more "labels" that are the answer written back.
    frame = served(20, final_category="Refund", final_category_source=CORRECTED)
    frame.loc[10:, ["final_category", "final_category_source"]] = ["Billing", AUTO_APPLIED]
    frame.loc[10:, "final_priority_source"] = AUTO_APPLIED
    found = only_window(frame, min_labels=10)
    assert found.labeled == 10
    assert found.figures["category_accuracy"] == 0.0
    assert found.figures["unlabeled_share"] == pytest.approx(0.5)
    assert found.figures["priority_accuracy"] == 1.0  # the ten counted priority labels agree
    assert not only_window(frame, min_labels=11).enough


def test_override_rate_counts_agent_changes_only() -> None:
    frame = served(10)
    frame.loc[0:2, ["final_category", "final_category_source"]] = ["Refund", CORRECTED]
    # A corrected source that kept the answer is no override; an original label that differs
    # is a miss but not an agent's change of the answer.
    frame.loc[3, "final_category_source"] = CORRECTED
    frame.loc[4, ["final_category", "final_category_source"]] = ["Refund", ORIGINAL]
    found = only_window(frame)
    assert found.figures["override_rate"] == pytest.approx(0.3)
    assert found.figures["category_accuracy"] == pytest.approx(0.6)


def test_review_rate_and_auto_coverage_use_the_tier_or_needs_review() -> None:
    tiers = [AUTO] * 4 + [SUGGEST] * 3 + [REVIEW] * 2 + [None]
    frame = served(10, tier=tiers, needs_review=[False] * 9 + [True])
    found = only_window(frame)
    assert found.figures["review_rate"] == pytest.approx(0.3)
    assert found.figures["auto_coverage"] == pytest.approx(0.4)


def test_figures_without_labels_stay_when_labels_are_too_few() -> None:
    frame = served(4, tier=[AUTO, AUTO, REVIEW, SUGGEST])
    found = only_window(frame, min_labels=50)
    assert found.figures == {
        "review_rate": 0.25,
        "unlabeled_share": 0.0,
        "auto_coverage": 0.5,
    }


def test_per_class_precision_coverage_and_support() -> None:
    frame = served(
        8,
        category=["Billing", "Billing", "Billing", "Refund", "Refund", "Refund", "Login", "Login"],
        final_category=[
            "Billing",
            "Billing",
            "Refund",
            "Refund",
            "Refund",
            "Billing",
            "Refund",
            "Refund",
        ],
        tier=[AUTO, SUGGEST, REVIEW, AUTO, REVIEW, REVIEW, REVIEW, SUGGEST],
    )
    classes = only_window(frame, min_labels=8).per_class
    assert classes["Billing"] == {
        "precision": pytest.approx(2 / 3),
        "coverage": pytest.approx(2 / 3),
        "support": 3,
    }
    # Refund's five true tickets: answered auto/suggest on 2 of them (rows 3 and 7).
    assert classes["Refund"] == {"precision": pytest.approx(2 / 3), "coverage": 0.4, "support": 5}
    # Predicted twice, never right, never a true class: precision 0, no coverage to measure.
    assert classes["Login"] == {"precision": 0.0, "coverage": None, "support": 0}


def test_an_abstention_is_a_miss_not_a_class() -> None:
    frame = served(4, category=["Billing", "Billing", UNKNOWN, UNKNOWN])
    found = only_window(frame, min_labels=4)
    assert found.figures["category_accuracy"] == 0.5
    assert set(found.per_class) == {"Billing"}
    assert found.per_class["Billing"]["precision"] == 1.0


def test_macro_f1_averages_the_classes_present_in_the_labels() -> None:
    frame = served(
        4,
        category=["Billing", "Refund", "Login", "Login"],
        final_category=["Billing", "Refund"] * 2,
    )
    found = only_window(frame, min_labels=4)
    # Billing and Refund: P 1, R 1/2, F1 2/3 each. Login is predicted but no label says Login:
    # averaging it in (F1 0) would give 4/9, unlike the held-out figure it is compared with.
    assert found.figures["category_macro_f1"] == pytest.approx(2 / 3)


def test_priority_figures_need_their_own_labels() -> None:
    frame = served(10, final_priority=[*["low"] * 3, *[np.nan] * 7])
    found = only_window(frame, min_labels=5)
    assert "category_accuracy" in found.figures
    assert "priority_accuracy" not in found.figures


def test_table_rows_round_and_name_the_window() -> None:
    frame = served(3, final_category=["Billing", "Billing", "Refund"])
    (row,) = live.table(live.live_quality(frame, "day", 3))
    assert row == {
        "version": "1",
        "window": "2026-03-02",
        "predictions": 3,
        "labeled": 3,
        "accuracy": 0.667,
        "macro_f1": 0.4,
        "override": 0.0,
        "review": 0.0,
        "unlabeled": 0.0,
        "note": "",
    }


def test_an_empty_frame_has_no_versions() -> None:
    assert live.live_quality(served(0), "week", 30).versions == {}


def test_window_metrics_name_classes_for_mlflow() -> None:
    frame = served(4, category="Billing/Invoices", final_category="Billing/Invoices")
    metrics = live.window_metrics(only_window(frame, min_labels=4))
    assert metrics["live_category_precision.Billing_Invoices"] == 1.0
    assert metrics["live_category_coverage.Billing_Invoices"] == 1.0
    assert metrics["live_labeled"] == 4.0
    assert "live_category_macro_f1" in metrics


# The store side: served answers joined to final labels, on SQLite and PostgreSQL (``engine``).


def put_tickets(conn: sa.Connection, created: list[pd.Timestamp | None]) -> None:
    n = len(created)
    frame = pd.DataFrame(
        {
            "ticket_id": [f"T-{i}" for i in range(n)],
            "created_at": pd.to_datetime(pd.Series(created), utc=True),
            "channel": "email",
            "language": "en",
            "body": ["x" * (10 + i) for i in range(n)],
            "category": ["Billing"] + [None] * (n - 1),
            "priority": None,
            "campaign_id": "spring",
            "content_hash": [f"h{i}" for i in range(n)],
            "batch_id": "b1",
            "ingested_at": MONDAY,
        }
    )
    store.insert_rows(conn, store.tickets, frame, ("created_at", "ingested_at"))


def put_answers(conn: sa.Connection, table: sa.Table, ids: list[str], version: str) -> None:
    frame = pd.DataFrame(
        {
            "ticket_id": ids,
            "model_version": version,
            "category": "Billing",
            "category_proba": 0.8,
            "priority": "low",
            "needs_review": False,
            "tier": SUGGEST,
            "scored_at": MONDAY + pd.Timedelta(days=1),
        }
    )
    store.insert_rows(conn, table, frame, ("scored_at",))


def put_feedback(conn: sa.Connection, rows: list[tuple[str, str, str | None, int]]) -> None:
    frame = pd.DataFrame(
        [
            {
                "feedback_id": f"F-{i}",
                "ticket_id": ticket,
                "corrected_category": category,
                "corrected_priority": None,
                "corrected_at": MONDAY + pd.Timedelta(hours=hours),
                "label_source": source,
                "batch_id": "f1",
                "ingested_at": MONDAY,
            }
            for i, (ticket, category, source, hours) in enumerate(rows)
        ]
    )
    store.insert_rows(conn, store.feedback, frame, ("corrected_at", "ingested_at"))


def test_joined_reads_served_answers_with_their_final_labels(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        put_tickets(conn, [MONDAY, MONDAY, MONDAY, None, MONDAY - pd.Timedelta(days=30)])
        put_answers(conn, predictions, ["T-0", "T-1", "T-2", "T-3", "T-4"], "1")
        put_answers(conn, shadow_predictions, ["T-1"], "2")
        put_feedback(
            conn,
            [
                ("T-1", "Refund", None, 1),
                ("T-1", "Login", CORRECTED, 3),  # the latest wins
                ("T-2", "Billing", AUTO_APPLIED, 1),
            ],
        )
    frame = live.joined(engine, MONDAY - pd.Timedelta(days=1)).set_index("ticket_id")
    # T-4 was created before ``since``; T-3 has no created_at and was scored after it.
    assert sorted(frame.index) == ["T-0", "T-1", "T-2", "T-3"]
    naive = (MONDAY - pd.Timedelta(days=1)).tz_localize(None).to_pydatetime()  # as store.utcnow()
    assert sorted(live.joined(engine, naive)["ticket_id"]) == sorted(frame.index)
    assert frame.loc["T-0", ["final_category", "final_category_source"]].tolist() == [
        "Billing",
        ORIGINAL,
    ]
    assert frame.loc["T-1", ["final_category", "final_category_source"]].tolist() == [
        "Login",
        CORRECTED,
    ]
    assert frame.loc["T-2", "final_category_source"] == AUTO_APPLIED
    assert pd.isna(frame.loc["T-3", "final_category"])
    assert frame.loc["T-0", "body_length"] == 10
    assert frame.loc["T-0", "campaign_id"] == "spring"
    assert "body" not in frame.columns and "customer_id" not in frame.columns
    shadow = live.joined(engine, None, table="shadow_predictions")
    assert shadow[["ticket_id", "model_version", "final_category"]].values.tolist() == [
        ["T-1", "2", "Login"]
    ]
    report = live.live_quality(frame.reset_index(), "week", 2)
    (week,) = report.versions["1"]
    assert (week.predictions, week.labeled) == (4, 2)  # T-2's auto-applied label is no label


def test_the_upper_bound_of_macro_f1_is_above_the_point_and_narrows_with_more_labels() -> None:
    rng = np.random.default_rng(3)
    classes = ["a", "b", "c"]

    def labels(n: int) -> tuple[list[str], list[str]]:
        truth = rng.choice(classes, size=n).tolist()
        answer = [t if rng.random() < 0.8 else rng.choice(classes) for t in truth]
        return truth, answer

    few, many = labels(40), labels(4000)
    for truth, answer in (few, many):
        point = f1_score(truth, answer, labels=sorted(set(truth)), average="macro")
        assert live.macro_f1_upper_bound(truth, answer) > point
    few_gap = live.macro_f1_upper_bound(*few) - f1_score(*few, average="macro")
    many_gap = live.macro_f1_upper_bound(*many) - f1_score(*many, average="macro")
    assert many_gap < few_gap / 3
