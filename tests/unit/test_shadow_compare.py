"""The live comparison of a shadow challenger with the champion: rows, labels, the gate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import store
from triage_ml.monitoring import shadow
from triage_ml.settings import MonitorSettings, Settings
from triage_ml.store import shadow as shadow_queries
from triage_ml.store.tables import AUTO_APPLIED, CONFIRMED, CORRECTED, ORIGINAL

pytestmark = pytest.mark.unit

CLASSES = ("billing", "delivery", "refunds")
NOW = pd.Timestamp("2026-12-01T00:00:00Z")


def settings(tmp_path: Path, least: int = 30) -> Settings:
    return Settings(home=tmp_path, monitor=MonitorSettings(shadow_min_labels=least))


def top3(category: str) -> str:
    return json.dumps([{"category": category, "proba": 0.9}])


def paired(truth: list[str], champion: list[str], challenger: list[str]) -> pd.DataFrame:
    """Both versions' answers to tickets T-0..T-n, priorities right on both sides."""
    n = len(truth)
    frame = pd.DataFrame({"ticket_id": [f"T-{i}" for i in range(n)], "scored_at": NOW})
    for side, answers in (("champion", champion), ("challenger", challenger)):
        frame[f"{side}_category"] = answers
        frame[f"{side}_category_proba"] = 0.9
        frame[f"{side}_top3"] = [top3(c) for c in answers]
        frame[f"{side}_priority"] = ["high" if i % 2 else "normal" for i in range(n)]
    return frame


def labels(truth: list[str], source: str = CORRECTED) -> pd.DataFrame:
    """Final labels of T-0..T-n (the shape of ``training.dataset.final_labels``)."""
    n = len(truth)
    return pd.DataFrame(
        {
            "category": truth,
            "category_source": source,
            "priority": ["high" if i % 2 else "normal" for i in range(n)],
            "priority_source": source,
        },
        index=pd.Index([f"T-{i}" for i in range(n)], name="ticket_id"),
    )


def cycle(n: int) -> list[str]:
    return [CLASSES[i % 3] for i in range(n)]


def test_too_few_labeled_rows_give_no_decision_and_say_how_many(tmp_path: Path) -> None:
    truth = cycle(12)
    result = shadow.judge(paired(truth, truth, truth), labels(truth), settings(tmp_path), "1", "2")
    assert result.decision is None
    assert result.message == "not enough labeled live rows (12 < 30)"
    assert (result.paired, result.rows, result.min_rows) == (12, 12, 30)


def test_auto_applied_and_missing_labels_are_not_evidence(tmp_path: Path) -> None:
    truth = cycle(40)
    final = labels(truth)
    final.loc[[f"T-{i}" for i in range(10)], "category_source"] = AUTO_APPLIED
    final = final.drop(index=[f"T-{i}" for i in range(10, 15)])
    result = shadow.judge(paired(truth, truth, truth), final, settings(tmp_path), "1", "2")
    assert (result.paired, result.rows) == (40, 25)
    assert result.message == "not enough labeled live rows (25 < 30)"


def test_an_auto_applied_priority_counts_as_unknown_but_keeps_the_row(tmp_path: Path) -> None:
    truth = cycle(6)
    final = labels(truth)
    final.loc["T-1", "priority_source"] = AUTO_APPLIED
    final.loc["T-2", "category_source"] = ORIGINAL
    rows = shadow.labeled_rows(paired(truth, truth, truth), final)
    assert len(rows) == 6
    assert rows["final_priority"].isna().tolist() == [False, True, False, False, False, False]


def test_a_challenger_right_where_the_champion_is_wrong_is_promoted(tmp_path: Path) -> None:
    truth = cycle(150)
    champion = ["billing" if c == "refunds" else c for c in truth]
    result = shadow.judge(
        paired(truth, champion, truth), labels(truth), settings(tmp_path), "1", "2"
    )
    assert result.decision is not None and result.decision.promote, result.decision
    assert result.decision.reason == "promoted: every check passed"
    assert result.decision.interval is not None and result.decision.interval[0] > 0
    assert result.decision.challenger["category_macro_f1"] == 1.0
    assert result.decision.champion["category_macro_f1"] < 0.8
    assert result.rows == 150


def test_an_equal_challenger_is_rejected_by_the_same_gate(tmp_path: Path) -> None:
    truth = cycle(150)
    result = shadow.judge(paired(truth, truth, truth), labels(truth), settings(tmp_path), "1", "2")
    assert result.decision is not None and not result.decision.promote
    assert "its gain over the champion's 1.0000 is +0.0000" in result.decision.reason


def test_a_better_category_does_not_excuse_a_worse_priority(tmp_path: Path) -> None:
    truth = cycle(150)
    champion = ["billing" if c == "refunds" else c for c in truth]
    frame = paired(truth, champion, truth)
    frame["challenger_priority"] = "normal"  # every "high" ticket missed
    result = shadow.judge(frame, labels(truth), settings(tmp_path), "1", "2")
    assert result.decision is not None and not result.decision.promote
    failed = {c.name for c in result.decision.checks if not c.passed}
    assert {"priority_macro_f1", "priority_urgent_recall"} <= failed


# ---- the store's side, on a real SQLite store -----------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    eng = store.connect(f"sqlite:///{tmp_path / 'store.db'}")
    yield eng
    eng.dispose()


def answers_frame(version: str, categories: list[str]) -> pd.DataFrame:
    n = len(categories)
    return pd.DataFrame(
        {
            "ticket_id": [f"T-{i}" for i in range(n)],
            "model_version": version,
            "category": categories,
            "category_proba": 0.9,
            "top3": [top3(c) for c in categories],
            "priority": ["high" if i % 2 else "normal" for i in range(n)],
            "priority_proba": 0.8,
            "sentiment": 0.0,
            "route": "queue",
            "needs_review": False,
            "tier": "suggest",
            "scored_at": NOW,
        }
    )


def stored_tickets(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticket_id": [f"T-{i}" for i in range(n)],
            "created_at": NOW,
            "body": "text",
            "category": None,
            "priority": None,
            "content_hash": [f"h{i}" for i in range(n)],
            "batch_id": "b1",
            "ingested_at": NOW,
        }
    )


def agent_labels(truth: list[str], source_of: dict[int, str]) -> pd.DataFrame:
    n = len(truth)
    return pd.DataFrame(
        {
            "feedback_id": [f"F-{i}" for i in range(n)],
            "ticket_id": [f"T-{i}" for i in range(n)],
            "corrected_category": truth,
            "corrected_priority": ["high" if i % 2 else "normal" for i in range(n)],
            "corrected_at": NOW,
            "label_source": [source_of.get(i, CORRECTED) for i in range(n)],
            "batch_id": "f1",
            "ingested_at": NOW,
        }
    )


def test_shadow_answers_are_written_once_and_paired_with_the_champions(engine) -> None:
    truth = cycle(60)
    champion = ["billing" if c == "refunds" else c for c in truth]
    with engine.begin() as conn:
        store.insert_rows(conn, store.tickets, stored_tickets(60), ("created_at", "ingested_at"))
        store.write_predictions(conn, answers_frame("1", champion))
        assert shadow_queries.write_shadow_predictions(conn, answers_frame("2", truth)) == 60
        assert shadow_queries.write_shadow_predictions(conn, answers_frame("2", truth)) == 0
        store.insert_rows(
            conn,
            store.feedback,
            agent_labels(truth, {0: AUTO_APPLIED, 1: CONFIRMED}),
            ("corrected_at", "ingested_at"),
        )
    with engine.connect() as conn:
        assert shadow_queries.count_shadow_predictions(conn, "2") == 60
        assert store.count_rows(conn, store.predictions) == 60  # the champion's only
        pairs = shadow_queries.paired_predictions(conn, "1", "2")
    assert len(pairs) == 60
    by_ticket = dict(zip(pairs["ticket_id"], pairs["challenger_category"]))
    assert by_ticket == {f"T-{i}": c for i, c in enumerate(truth)}
    assert dict(zip(pairs["ticket_id"], pairs["champion_category"]))["T-2"] == "billing"
    result = shadow.compare(
        engine, Settings(monitor=MonitorSettings(shadow_min_labels=50)), "1", "2"
    )
    assert (result.paired, result.rows) == (60, 59)  # the auto-applied label is not evidence
    assert result.decision is not None and result.decision.challenger["category_accuracy"] == 1.0
    empty = shadow.compare(engine, Settings(), "1", "3")
    assert (empty.paired, empty.rows, empty.decision) == (0, 0, None)
    assert empty.message == "not enough labeled live rows (0 < 100)"
