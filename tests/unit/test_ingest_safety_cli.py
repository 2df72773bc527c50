"""One `error:` line, exit code 2 and no traceback for each bad input of issue 22 (ingest side)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from triage_ml import cli, ingest, store
from triage_ml.ingest import ColumnMapping, IngestOptions
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit


def one_error_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the CLI; assert exit code 2 and a single `error:` line on stderr; return that line."""
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def quarantined(workspace: Settings, tmp_path: Path) -> Settings:
    """The workspace's store holding one batch with one quarantined row."""
    path = tmp_path / "batch.csv"
    pd.DataFrame(
        {
            "ticket_id": ["T1", "T2", "T3"],
            "body": ["charged twice", "cannot log in", "parcel lost"],
            "category": ["Billing", "Account", "Shipping"],
            "priority": ["high", "low", "sky-high"],
        }
    ).to_csv(path, index=False)
    workspace.home.mkdir(parents=True)
    with store.opened(workspace.store_url) as engine:
        ingest.ingest_tickets(
            engine, path, ColumnMapping(), IngestOptions(tuple(workspace.priority_levels))
        )
    return workspace


def test_a_directory_given_as_a_path(workspace: Settings, capsys, tmp_path: Path) -> None:
    for name in ("folder", "folder.parquet"):
        (tmp_path / name).mkdir()
        line = one_error_line(capsys, "ingest", "tickets", str(tmp_path / name))
        assert f"{tmp_path / name} is a directory" in line


def test_parquet_with_a_binary_column(workspace: Settings, capsys, tmp_path: Path) -> None:
    path = tmp_path / "binary.parquet"
    table = pa.table(
        {"ticket_id": ["T1", "T2"], "body": [b"\x00\xff", b"ok"], "category": ["A", "B"]}
    )
    pq.write_table(table, path)
    line = one_error_line(capsys, "ingest", "tickets", str(path))
    assert "column 'body' holds binary data" in line


def test_parquet_with_a_corrupt_page(workspace: Settings, capsys, tmp_path: Path) -> None:
    path = tmp_path / "corrupt.parquet"
    frame = pd.DataFrame(
        {
            "ticket_id": [f"T{i}" for i in range(5000)],
            "body": [f"body of ticket {i}" for i in range(5000)],
            "category": ["Billing", "Account"] * 2500,
        }
    )
    frame.to_parquet(path, row_group_size=1000)
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 200):  # inside a later row group's pages
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    line = one_error_line(capsys, "ingest", "tickets", str(path))
    assert "is not a readable Parquet file" in line


def test_a_ragged_csv_line(workspace: Settings, capsys, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("ticket_id,body,category\nT1,a,Billing\nT2,b,c,Account\n", encoding="utf-8")
    line = one_error_line(capsys, "ingest", "tickets", str(path))
    assert "line 3 has 4 fields, but the header names 3 columns" in line


def test_release_with_a_non_integer_quarantine_id(
    quarantined: Settings, capsys, tmp_path: Path
) -> None:
    fixed = tmp_path / "fixed.csv"
    fixed.write_text("_quarantine_id,ticket_id,body\n1,T2,x\nabc,T3,y\n", encoding="utf-8")
    line = one_error_line(capsys, "quarantine", "release", "--file", str(fixed))
    assert "data row 2: _quarantine_id 'abc' is not a record id" in line
    with store.opened(quarantined.store_url) as engine, engine.connect() as conn:
        assert store.count_rows(conn, store.tickets) == 2  # nothing released


def test_export_into_a_missing_folder(quarantined: Settings, capsys, tmp_path: Path) -> None:
    out = tmp_path / "no-such-folder" / "fix.csv"
    line = one_error_line(capsys, "quarantine", "export", "--out", str(out))
    assert "does not exist" in line and not out.parent.exists()


def test_export_onto_a_directory(quarantined: Settings, capsys, tmp_path: Path) -> None:
    line = one_error_line(capsys, "quarantine", "export", "--out", str(tmp_path))
    assert "is a directory" in line
    assert not list(tmp_path.glob(".*.part"))
