"""The further heads' labels (subcategory, type, team): mapping, ingest, store, snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import cli, ingest, store, synth
from triage_ml.cli.data import with_head_columns
from triage_ml.cli.options import column_mapping
from triage_ml.errors import InputError
from triage_ml.ingest import ColumnMapping, IngestOptions
from triage_ml.training import dataset

pytestmark = pytest.mark.unit

OPTIONS = IngestOptions(synth.PRIORITIES)
HEADS = ["subcategory", "type", "team"]


def rows(n: int = 6, **columns: list[object]) -> pd.DataFrame:
    """``n`` labeled tickets of two categories, plus any further columns."""
    frame = pd.DataFrame(
        {
            "ticket_id": [f"T-{i}" for i in range(n)],
            "created_at": [f"2026-01-0{i % 9 + 1}T10:00:00Z" for i in range(n)],
            "subject": [f"Subject {i}" for i in range(n)],
            "body": [f"Body {i}" for i in range(n)],
            "category": ["Billing", "Account"] * (n // 2),
            "priority": ["high"] * n,
        }
    )
    return frame.assign(**columns)


def ingest_frame(
    engine: sa.Engine, path: Path, frame: pd.DataFrame, mapping: ColumnMapping | None = None
) -> ingest.IngestSummary:
    frame.to_csv(path, index=False)
    return ingest.ingest_tickets(engine, path, mapping or ColumnMapping(), OPTIONS)


def stored(engine: sa.Engine) -> pd.DataFrame:
    columns = ["ticket_id", "content_hash", *HEADS]
    with engine.connect() as conn:
        result = conn.execute(sa.select(*(store.tickets.c[c] for c in columns)))
        frame = pd.DataFrame(result.fetchall(), columns=columns)
    return frame.set_index("ticket_id").sort_index()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> sa.Engine:
    return store.connect(f"sqlite:///{tmp_path / 'store.db'}")


def test_default_names_are_read_and_cleaned_like_the_category(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    frame = rows(
        subcategory=[" Refund ", "Login", "", None, "Refund", "Login"],
        type=["Incident"] * 6,
        team=["billing-team", "accounts", None, "accounts", "billing-team", "accounts"],
    )
    summary = ingest_frame(sqlite_engine, tmp_path / "t.csv", frame)
    got = stored(sqlite_engine)
    assert summary.stored == 6
    assert got.loc["T-0", HEADS].tolist() == ["Refund", "Incident", "billing-team"]
    assert got["subcategory"].isna().tolist() == [False, False, True, True, False, False]
    assert pd.isna(got.loc["T-2", "team"])


def test_named_columns_map_and_a_missing_named_column_is_one_clear_error(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    frame = rows(intent=["a", "b"] * 3, queue=["q1", "q2"] * 3)
    mapping = ColumnMapping(
        subcategory_column="intent",
        team_column="queue",
        explicit=frozenset({"subcategory_column", "team_column"}),
    )
    ingest_frame(sqlite_engine, tmp_path / "t.csv", frame, mapping)
    got = stored(sqlite_engine)
    assert got.loc["T-1", ["subcategory", "team"]].tolist() == ["b", "q2"]
    assert got["type"].isna().all()
    missing = ColumnMapping(type_column="itil", explicit=frozenset({"type_column"}))
    with pytest.raises(InputError) as error:
        ingest_frame(sqlite_engine, tmp_path / "u.csv", frame, missing)
    message = str(error.value)
    assert "\n" not in message and "'itil' (type) not found" in message


def test_an_over_long_label_is_quarantined_with_its_reason(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    frame = rows(type=["Incident"] * 5 + ["x" * 65])
    summary = ingest_frame(sqlite_engine, tmp_path / "t.csv", frame)
    assert (summary.stored, summary.quarantined) == (5, 1)
    with sqlite_engine.connect() as conn:
        reasons = json.loads(conn.execute(sa.select(store.quarantine.c.reasons)).scalar_one())
    assert len(reasons) == 1 and reasons[0].startswith("type: str_length(None, 64)")


def test_unlabeled_files_carry_no_head_labels(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    frame = rows(subcategory=["Refund"] * 6, type=["Incident"] * 6, team=["t"] * 6)
    mapping = ColumnMapping(labeled=False)
    resolved = mapping.resolve(list(frame.columns), "t.csv")
    assert resolved.head_columns() == {} and resolved.subcategory_column is None
    ingest_frame(sqlite_engine, tmp_path / "t.csv", frame.drop(columns=["category"]), mapping)
    assert stored(sqlite_engine)[HEADS].isna().all().all()


def test_adding_labels_later_updates_tickets_and_keeps_their_hashes(
    engine: sa.Engine, tmp_path: Path
) -> None:
    ingest_frame(engine, tmp_path / "a.csv", rows())
    before = stored(engine)
    labels = {"subcategory": ["Refund", "Login"] * 3, "type": ["Incident"] * 6}
    summary = ingest_frame(engine, tmp_path / "b.csv", rows(**labels))
    after = stored(engine)
    assert (summary.updated, summary.skipped) == (6, 0)
    assert after["content_hash"].tolist() == before["content_hash"].tolist()
    assert after["subcategory"].tolist() == ["Refund", "Login"] * 3
    again = ingest_frame(engine, tmp_path / "c.csv", rows(**labels))
    assert (again.updated, again.skipped) == (0, 6)
    # A file without the head columns says nothing about them: they stay.
    ingest_frame(engine, tmp_path / "d.csv", rows().assign(body=[f"New {i}" for i in range(6)]))
    assert stored(engine)["subcategory"].tolist() == ["Refund", "Login"] * 3


def test_the_snapshot_carries_head_labels_none_where_absent(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    ingest_frame(sqlite_engine, tmp_path / "a.csv", rows(4, team=["t1", None, "t2", "t3"]))
    frame = dataset.load_snapshot(sqlite_engine).frame.set_index("ticket_id").sort_index()
    assert set(HEADS) <= set(frame.columns)
    assert frame["team"].tolist() == ["t1", None, "t2", "t3"]
    assert frame["subcategory"].tolist() == [None] * 4


def test_the_head_flags_name_columns_that_must_exist(
    workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mapping = with_head_columns(column_mapping(category_column="label"), "intent", None, "queue")
    assert (mapping.subcategory_column, mapping.type_column, mapping.team_column) == (
        "intent",
        "type",
        "queue",
    )
    assert mapping.explicit == {"category_column", "subcategory_column", "team_column"}
    path = tmp_path / "t.csv"
    rows(queue=["q1", "q2"] * 3).to_csv(path, index=False)
    for flag in ("--subcategory-column", "--type-column", "--team-column"):
        code = cli.main(["ingest", "tickets", str(path), flag, "intent"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("error: ") and "\n" not in err
        assert f"'intent' ({flag[2:].split('-')[0]}) not found" in err
