"""Quarantined rows can be inspected, fixed and re-ingested; nothing is lost on the way."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import ingest, store
from triage_ml.errors import InputError
from triage_ml.ingest import ColumnMapping, IngestOptions, quarantine

pytestmark = pytest.mark.unit
LEVELS = ("critical", "high", "normal", "low")
OPTIONS = IngestOptions(LEVELS)
MAPPING = ColumnMapping(
    text_columns=("text",),
    category_column="label",
    priority_column="prio",
    id_column="key",
    created_at_column=None,
    explicit=frozenset({"text_columns", "category_column", "id_column"}),
)


@pytest.fixture
def batch(engine: sa.Engine, tmp_path: Path) -> ingest.IngestSummary:
    path = tmp_path / "own.csv"
    pd.DataFrame(
        {
            "key": ["K1", "K2", "K3", "K4"],
            "text": ["charged twice", "cannot log in", "", "parcel lost"],
            "label": ["Billing", "Account", "Billing", "Shipping"],
            "prio": ["high", "sky-high", "low", "normal"],
        }
    ).to_csv(path, index=False)
    return ingest.ingest_tickets(engine, path, MAPPING, OPTIONS)


def test_list_and_show(engine: sa.Engine, batch: ingest.IngestSummary) -> None:
    with engine.connect() as conn:
        records = quarantine.list_records(conn)
        shown = quarantine.show_record(conn, records[0]["id"])
    assert len(records) == batch.quarantined == 2
    reasons = sorted(r["reasons"][0] for r in records)
    assert reasons[0] == "body: missing or empty"
    assert (
        reasons[1].startswith("priority: priority is not on the configured scale")
        and "sky-high" in reasons[1]
    )
    assert set(shown["raw"]) == {"key", "text", "label", "prio"}


def test_release_after_fixing_uses_the_batch_mapping(
    engine: sa.Engine, batch: ingest.IngestSummary, tmp_path: Path
) -> None:
    fixed = tmp_path / "fixed.csv"
    with engine.connect() as conn:
        assert quarantine.export_records(conn, fixed) == 2
    rows = pd.read_csv(fixed, dtype=str, keep_default_na=False)
    rows.loc[rows["key"] == "K2", "prio"] = "high"  # fix one of the two rows only
    rows.to_csv(fixed, index=False)

    result = quarantine.release(engine, LEVELS, fixed=fixed)

    assert (result["released"], result["still_failing"]) == (1, 1)
    with engine.connect() as conn:
        stored = dict(
            conn.execute(sa.select(store.tickets.c.ticket_id, store.tickets.c.priority)).all()
        )
        open_records = quarantine.list_records(conn)
        every_record = quarantine.list_records(conn, include_released=True)
    assert stored["K2"] == "high" and "K3" not in stored
    assert (
        len(open_records) == 1 and open_records[0]["batch_id"] == result["batches"][0]["batch_id"]
    )
    assert len(every_record) == 3 and sum(r["released_at"] is not None for r in every_record) == 2


def test_release_unchanged_rows_after_config_change(
    engine: sa.Engine, batch: ingest.IngestSummary
) -> None:
    result = quarantine.release(engine, (*LEVELS, "sky-high"), batch_id=batch.batch_id)
    assert result["released"] == 1 and result["still_failing"] == 1


def test_feedback_for_a_ticket_that_arrives_later(engine: sa.Engine, tmp_path: Path) -> None:
    feedback = tmp_path / "fb.csv"
    pd.DataFrame(
        {
            "ticket_id": ["LATE"],
            "corrected_category": ["Billing"],
            "corrected_priority": [None],
            "agent_id": ["agent-1"],
            "corrected_at": ["2026-01-05T10:00:00Z"],
        }
    ).to_csv(feedback, index=False)
    first = ingest.ingest_feedback(engine, feedback, OPTIONS)
    assert first.quarantined == 1
    tickets = tmp_path / "t.csv"
    pd.DataFrame(
        {
            "ticket_id": ["LATE", "OTHER"],
            "subject": ["a", "b"],
            "body": ["x", "y"],
            "category": ["Account", "Billing"],
        }
    ).to_csv(tickets, index=False)
    ingest.ingest_tickets(engine, tickets, ColumnMapping(), OPTIONS)
    result = quarantine.release(engine, LEVELS, batch_id=first.batch_id)
    assert result["released"] == 1
    with engine.connect() as conn:
        assert store.count_rows(conn, store.feedback) == 1


def test_release_errors(engine: sa.Engine, batch: ingest.IngestSummary, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="name the records"):
        quarantine.release(engine, LEVELS)
    with pytest.raises(InputError, match="not found or already released"):
        quarantine.release(engine, LEVELS, ids=[999])
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="_quarantine_id"):
        quarantine.release(engine, LEVELS, fixed=bad)
    with engine.connect() as conn, pytest.raises(InputError, match="no quarantine record 999"):
        quarantine.show_record(conn, 999)


def test_a_failing_release_changes_nothing(
    engine: sa.Engine, batch: ingest.IngestSummary, monkeypatch
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "record_batch", broken)
    with pytest.raises(RuntimeError):
        quarantine.release(engine, (*LEVELS, "sky-high"), batch_id=batch.batch_id)
    with engine.connect() as conn:
        assert len(quarantine.list_records(conn)) == 2
        assert store.count_rows(conn, store.tickets) == 2
