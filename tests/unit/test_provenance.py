"""Final labels and their provenance: feedback ingest derives and checks it, training filters."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import ingest, store
from triage_ml.ingest import quarantine
from triage_ml.settings import Settings
from triage_ml.store.tables import (
    AUTO_APPLIED,
    CONFIRMED,
    CORRECTED,
    LABEL_SOURCES,
    ORIGINAL,
    shadow_predictions,
)
from triage_ml.training import dataset, retrain

pytestmark = pytest.mark.unit

T0 = pd.Timestamp("2026-03-01T00:00:00Z")


def ticket_rows(labels: dict[str, str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticket_id": list(labels),
            "created_at": [T0 + pd.Timedelta(hours=i) for i in range(len(labels))],
            "subject": "invoice",
            "body": "my invoice is wrong",
            "category": list(labels.values()),
            "priority": None,
            "content_hash": "h",
            "batch_id": "b1",
            "ingested_at": T0,
        }
    )


def feedback_row(fid: str, ticket: str, category: str, source: str | None, hour: int = 1) -> dict:
    return {
        "feedback_id": fid,
        "ticket_id": ticket,
        "corrected_category": category,
        "corrected_priority": None,
        "agent_id": None,
        "corrected_at": T0 + pd.Timedelta(days=1, hours=hour),
        "label_source": source,
        "batch_id": "b2",
        "ingested_at": T0,
    }


def answer(ticket: str, version: str, category: str, priority: str = "high") -> dict:
    return {
        "ticket_id": ticket,
        "model_version": version,
        "category": category,
        "category_proba": 0.9,
        "priority": priority,
        "scored_at": T0 + pd.Timedelta(hours=12),
    }


def fill(engine: sa.Engine, tickets: pd.DataFrame, feedback: list[dict] = ()) -> None:
    with engine.begin() as conn:
        store.record_batch(
            conn,
            {
                "batch_id": "b1",
                "kind": "tickets",
                "source": "test",
                "rows_read": len(tickets),
                "rows_stored": len(tickets),
                "rows_quarantined": 0,
                "rows_skipped": 0,
                "status": store.ACCEPTED,
                "report": None,
            },
        )
        store.insert_rows(conn, store.tickets, tickets, ("created_at", "ingested_at"))
        if feedback:
            rows = pd.DataFrame(list(feedback))
            store.insert_rows(conn, store.feedback, rows, ("corrected_at", "ingested_at"))


# ---- resolving ------------------------------------------------------------------------


def test_a_feedback_rows_source_is_its_label_source_or_agent_corrected() -> None:
    tickets = ticket_rows({"A": "Billing", "B": "Billing", "C": None})
    feedback = pd.DataFrame(
        [
            feedback_row("f1", "A", "Billing", CONFIRMED),
            feedback_row("f2", "B", "Sales", None),  # stored before label sources existed
        ]
    )
    out = dataset.resolve_labels(tickets, feedback).set_index("ticket_id")
    assert out["category_source"].tolist()[:2] == [CONFIRMED, CORRECTED]
    assert pd.isna(out.at["C", "category_source"])
    assert out["category"].tolist()[:2] == ["Billing", "Sales"]


def test_final_labels_keep_every_source_including_auto_applied() -> None:
    tickets = ticket_rows({"A": "Billing", "B": None, "C": None})
    feedback = pd.DataFrame(
        [
            feedback_row("f1", "B", "Sales", AUTO_APPLIED),
            feedback_row("f2", "A", "Returns", AUTO_APPLIED, hour=1),
            feedback_row("f3", "A", "Account", CORRECTED, hour=2),  # the later one wins
        ]
    )
    final = dataset.final_labels(tickets, feedback)
    assert list(final.columns) == ["category", "category_source", "priority", "priority_source"]
    assert final.loc["A", ["category", "category_source"]].tolist() == ["Account", CORRECTED]
    assert final.loc["B", ["category", "category_source"]].tolist() == ["Sales", AUTO_APPLIED]
    assert pd.isna(final.at["C", "category"]) and pd.isna(final.at["C", "category_source"])


# ---- training snapshot ------------------------------------------------------------------


def three_tickets(engine: sa.Engine) -> None:
    fill(
        engine,
        ticket_rows({"A": "Billing", "B": None, "C": None, "D": "Sales"}),
        [
            feedback_row("f1", "A", "Returns", AUTO_APPLIED),  # the original label must stand
            feedback_row("f2", "B", "Sales", AUTO_APPLIED),  # its only label: nobody looked
            feedback_row("f3", "C", "Account", CONFIRMED),  # ingested unlabeled, agent answered
        ],
    )


def test_training_ignores_auto_applied_labels_by_default(engine: sa.Engine) -> None:
    three_tickets(engine)
    snapshot = dataset.load_snapshot(engine)
    frame = snapshot.frame.set_index("ticket_id")
    assert sorted(frame.index) == ["A", "C", "D"]
    assert frame.loc["A", ["category", "category_source"]].tolist() == ["Billing", ORIGINAL]
    assert frame.loc["C", ["category", "category_source"]].tolist() == ["Account", CONFIRMED]
    assert snapshot.labels == {ORIGINAL: 2, CORRECTED: 0, CONFIRMED: 1, AUTO_APPLIED: 0}


def test_training_uses_auto_applied_labels_when_configured(engine: sa.Engine) -> None:
    three_tickets(engine)
    snapshot = dataset.load_snapshot(engine, use_auto_applied=True)
    frame = snapshot.frame.set_index("ticket_id")
    assert sorted(frame.index) == ["A", "B", "C", "D"]
    assert frame.loc["A", ["category", "category_source"]].tolist() == ["Returns", AUTO_APPLIED]
    assert snapshot.labels[AUTO_APPLIED] == 2 and snapshot.labels[ORIGINAL] == 1
    assert snapshot.digest != dataset.load_snapshot(engine).digest


def test_the_retraining_logs_label_counts_by_source_and_no_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tickets = ticket_rows({f"T{i}": ("Billing", "Sales")[i % 2] for i in range(40)})
    frame = dataset.resolve_labels(tickets, pd.DataFrame())
    snapshot = dataset.Snapshot(frame, ("b1",), "digest", dataset.label_counts(frame))
    split = dataset.split_snapshot(frame, test_days=1, test_fraction=0.25, seed=0)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        # An experiment of this store: the active one may belong to an earlier test's workspace.
        experiment = mlflow.set_experiment("provenance")
        with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
            retrain.log_lineage(snapshot, split)
        params = mlflow.get_run(run.info.run_id).data.params
    finally:
        mlflow.set_tracking_uri(None)
    assert {k: v for k, v in params.items() if k.startswith("labels.")} == {
        f"labels.{source}": "40" if source == ORIGINAL else "0" for source in LABEL_SOURCES
    }


# ---- feedback ingest --------------------------------------------------------------------


def scored_store(engine: sa.Engine) -> None:
    fill(engine, ticket_rows({"A": None, "B": None, "C": None, "D": None}))
    with engine.begin() as conn:
        served = pd.DataFrame(
            [answer("A", "3", "Billing"), answer("B", "3", "Billing"), answer("D", "2", "Sales")]
        )
        store.insert_rows(conn, store.predictions, served, ("scored_at",))
        store.insert_rows(
            conn, shadow_predictions, pd.DataFrame([answer("A", "4", "Sales")]), ("scored_at",)
        )


FEEDBACK_CSV = """\
ticket_id,corrected_category,corrected_priority,agent_id,corrected_at,label_source,model_version
A,Billing,high,ag1,2026-03-02T10:00:00Z,,3
B,Sales,,ag1,2026-03-02T10:00:00Z,,
C,Returns,,ag2,2026-03-02T10:00:00Z,,
D,Sales,,,2026-03-02T10:00:00Z,auto-applied,2
A,Sales,,ag2,2026-03-02T11:00:00Z,,4
B,Billing,,ag2,2026-03-02T11:00:00Z,bot,
B,Billing,,ag2,2026-03-02T11:00:00Z,,7
"""


def ingest_feedback(engine: sa.Engine, tmp_path: Path, text: str) -> ingest.IngestSummary:
    path = tmp_path / "feedback.csv"
    path.write_text(text)
    options = ingest.IngestOptions.from_settings(Settings(home=tmp_path / "home"))
    return ingest.ingest_feedback(engine, path, options)


def test_feedback_ingest_derives_label_sources_and_quarantines_bad_provenance(
    engine: sa.Engine, tmp_path: Path
) -> None:
    scored_store(engine)
    summary = ingest_feedback(engine, tmp_path, FEEDBACK_CSV)
    assert (summary.read, summary.stored, summary.quarantined) == (7, 5, 2)
    with engine.connect() as conn:
        stored = store.all_feedback(conn)
        reasons = [r["reasons"] for r in quarantine.list_records(conn, summary.batch_id)]
    got = {
        (t, s, None if pd.isna(v) else v)
        for t, s, v in zip(stored["ticket_id"], stored["label_source"], stored["model_version"])
    }
    assert got == {
        ("A", CONFIRMED, "3"),  # repeats version 3's served answer, both fields
        ("B", CORRECTED, None),  # differs from the newest served answer
        ("C", CORRECTED, None),  # nothing was served: an agent's own label
        ("D", AUTO_APPLIED, "2"),  # given: kept
        ("A", CORRECTED, "4"),  # judges the shadow challenger's answer; differs from the served
    }
    flat = " | ".join(str(r) for r in reasons)
    assert "unknown label source, allowed: " + ", ".join(LABEL_SOURCES) in flat
    assert "unknown model version '7'" in flat and "ticket 'B'" in flat


def test_label_sources_are_read_case_insensitively(engine: sa.Engine, tmp_path: Path) -> None:
    scored_store(engine)
    text = "ticket_id,corrected_category,corrected_priority,agent_id,corrected_at,label_source\n"
    text += "A,Billing,,,2026-03-02,Agent-Confirmed\n"
    summary = ingest_feedback(engine, tmp_path, text)
    assert summary.stored == 1
    with engine.connect() as conn:
        assert store.all_feedback(conn)["label_source"].tolist() == [CONFIRMED]


def test_old_feedback_files_keep_their_ids(engine: sa.Engine, tmp_path: Path) -> None:
    """The provenance columns are not part of a row's id: a file written before them, or with
    them left blank, hashes as before, so re-ingesting the same answers skips them."""
    scored_store(engine)
    text = "ticket_id,corrected_category,corrected_priority,agent_id,corrected_at,reason\n"
    text += "A,Sales,,ag1,2026-03-02T10:00:00Z,\n"
    first = ingest_feedback(engine, tmp_path, text)
    blank = text.replace("reason\n", "reason,label_source,model_version\n").replace(
        "Z,\n", "Z,,,\n"
    )
    again = ingest_feedback(engine, tmp_path, blank)
    assert (first.stored, again.stored, again.skipped) == (1, 0, 1)
