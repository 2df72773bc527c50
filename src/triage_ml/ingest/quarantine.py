"""Inspect quarantined rows and re-ingest them once fixed.

A release runs the rows through the same ingestion path (same contracts,
same column mapping as their original batch, same batch expectations)
inside one transaction: rows that now pass are stored, rows that still fail
are quarantined again in the new batch, and every released record points at
that batch.

Exports are meant to be opened in a spreadsheet, which runs a cell starting
with ``=``, ``+``, ``-`` or ``@`` as a formula: such cells (and those starting
with a tab, a carriage return or the escape itself) are written with a ``'``
in front, and a release from the file removes exactly that one ``'``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from triage_ml import ingest, store
from triage_ml.errors import InputError
from triage_ml.ingest.sources import CsvFile

ID_COLUMN = "_quarantine_id"
ESCAPE = "'"
# What a spreadsheet takes for the start of a formula (OWASP's list), and the
# escape itself, so that removing it on release restores every value exactly.
FORMULA_STARTS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r", ESCAPE)
logger = logging.getLogger(__name__)


def escape_cell(value: Any) -> Any:
    """``value`` with a ``'`` in front when a spreadsheet would run it as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return ESCAPE + value
    return value


def unescape_cell(value: Any) -> Any:
    """Inverse of :func:`escape_cell`."""
    if isinstance(value, str) and value.startswith(ESCAPE):
        return value[1:]
    return value


def list_records(
    conn: Connection, batch_id: str | None = None, include_released: bool = False, limit: int = 100
) -> list[dict[str, Any]]:
    """Quarantine records, newest first, with their reasons."""
    q = store.quarantine
    statement = (
        sa.select(
            q.c.id,
            q.c.batch_id,
            q.c.kind,
            q.c.row_number,
            q.c.reasons,
            q.c.created_at,
            q.c.released_at,
            q.c.released_batch,
        )
        .order_by(q.c.id.desc())
        .limit(limit)
    )
    if batch_id:
        statement = statement.where(q.c.batch_id == batch_id)
    if not include_released:
        statement = statement.where(q.c.released_at.is_(None))
    return [
        {**row, "reasons": json.loads(row["reasons"])} for row in conn.execute(statement).mappings()
    ]


def show_record(conn: Connection, record_id: int) -> dict[str, Any]:
    """One record with its raw row.

    Raises:
        InputError: no such record.
    """
    row = (
        conn.execute(sa.select(store.quarantine).where(store.quarantine.c.id == record_id))
        .mappings()
        .first()
    )
    if row is None:
        raise InputError(f"no quarantine record {record_id}")
    return {**row, "raw": json.loads(row["raw"]), "reasons": json.loads(row["reasons"])}


def _records(conn: Connection, ids: Sequence[int], batch_id: str | None) -> pd.DataFrame:
    q = store.quarantine
    statement = (
        sa.select(q.c.id, q.c.batch_id, q.c.kind, q.c.raw)
        .where(q.c.released_at.is_(None))
        .order_by(q.c.id)
    )
    if ids:
        statement = statement.where(q.c.id.in_(list(ids)))
    elif batch_id:
        statement = statement.where(q.c.batch_id == batch_id)
    frame = pd.DataFrame(
        conn.execute(statement).fetchall(), columns=["id", "batch_id", "kind", "raw"]
    )
    missing = sorted(set(ids) - set(frame["id"]))
    if missing:
        raise InputError(
            f"quarantine record(s) {', '.join(map(str, missing))} not found or already released"
        )
    if frame.empty:
        raise InputError(
            "no unreleased quarantine records" + (f" in batch {batch_id}" if batch_id else "")
        )
    return frame


def export_records(
    conn: Connection, out: Path, ids: Sequence[int] = (), batch_id: str | None = None
) -> int:
    """Write raw rows as CSV (first column ``_quarantine_id``) for fixing by hand.

    Cells a spreadsheet would run as formulas are escaped (see :func:`escape_cell`).

    Raises:
        InputError: no such records, or ``out`` cannot be written (a missing
            folder, a directory); nothing is left behind then.
    """
    records = _records(conn, ids, batch_id)
    rows = [{ID_COLUMN: rid, **json.loads(raw)} for rid, raw in zip(records["id"], records["raw"])]
    frame = pd.DataFrame(rows).map(escape_cell)
    frame.columns = [escape_cell(c) for c in frame.columns]
    write_csv_whole(frame, out)
    return len(rows)


def write_csv_whole(frame: pd.DataFrame, out: Path) -> None:
    """Write ``frame`` to ``out`` whole or not at all (through a temporary file beside it)."""
    if not out.parent.is_dir():
        raise InputError(f"cannot write {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise InputError(f"cannot write {out}: it is a directory")
    part = out.with_name(f".{out.name}.part")
    try:
        frame.to_csv(part, index=False)
        os.replace(part, out)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from exc


def _read_fixed(fixed: Path) -> pd.DataFrame:
    """The edited export, read (and checked line by line) like any CSV source, unescaped."""
    chunks = list(CsvFile(fixed).chunks(20_000))
    edited = pd.concat(chunks) if len(chunks) > 1 else chunks[0]
    edited.columns = [unescape_cell(c) for c in edited.columns]
    if ID_COLUMN not in edited.columns:
        raise InputError(
            f"{fixed} has no {ID_COLUMN} column; write it with `triage-ml quarantine export`"
        )
    return edited.astype(object).where(edited.notna(), None).map(unescape_cell)


def _record_id(value: Any, row: int, fixed: Path) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise InputError(
            f"{fixed} data row {row}: {ID_COLUMN} {value!r} is not a record id; "
            "keep that column as `quarantine export` wrote it"
        ) from None


def _ids_in(fixed: Path) -> list[int]:
    edited = _read_fixed(fixed)
    return [_record_id(v, n, fixed) for n, v in enumerate(edited[ID_COLUMN], start=1)]


def _fixed_rows(records: pd.DataFrame, fixed: Path | None) -> dict[int, dict[str, Any]]:
    rows = {int(rid): json.loads(raw) for rid, raw in zip(records["id"], records["raw"])}
    if fixed is None:
        return rows
    edited = _read_fixed(fixed)
    for n, row in enumerate(edited.to_dict(orient="records"), start=1):
        rid = _record_id(row.pop(ID_COLUMN), n, fixed)
        if rid in rows:
            rows[rid] = row
    return rows


def _batch_mapping(conn: Connection, batch_id: str) -> ingest.ColumnMapping:
    report = conn.execute(
        sa.select(store.batches.c.report).where(store.batches.c.batch_id == batch_id)
    ).scalar()
    data = json.loads(report or "{}")
    return (
        ingest.mapping_from_dict(data["mapping"]) if "mapping" in data else ingest.ColumnMapping()
    )


def _release_group(
    conn: Connection,
    kind: str,
    batch_id: str,
    rows: dict[int, dict[str, Any]],
    options: ingest.IngestOptions,
) -> dict[str, Any]:
    ids = list(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"released-{batch_id}.csv"
        pd.DataFrame(list(rows.values())).to_csv(path, index=False)
        if kind == "tickets":
            mapping = _batch_mapping(conn, batch_id)
            summary = ingest.ingest_tickets_into(
                conn, path, mapping, options, require_two_classes=False
            )
        else:
            summary = ingest.ingest_linked_into(conn, path, kind, options)
    failing = {ids[n - 1] for n in summary.rejected_rows}
    conn.execute(
        store.quarantine.update()
        .where(store.quarantine.c.id.in_(ids))
        .values(released_at=store.utcnow(), released_batch=summary.batch_id)
    )
    return {
        "batch_id": summary.batch_id,
        "released": len(ids) - len(failing),
        "still_failing": len(failing),
        "stored": summary.stored,
        "skipped": summary.skipped,
        "status": summary.status,
        "batch_failures": list(summary.batch_failures),
    }


def release(
    engine: Engine,
    levels: Sequence[str],
    ids: Sequence[int] = (),
    batch_id: str | None = None,
    fixed: Path | None = None,
    options: ingest.IngestOptions | None = None,
) -> dict[str, Any]:
    """Re-ingest quarantined rows (optionally as fixed in ``fixed``), all in one transaction.

    Without ids or a batch, the ids are those listed in ``fixed``. With
    ``options`` (the workspace's, see :meth:`IngestOptions.from_settings`) the
    released tickets also go through the configured categories and the batch
    expectations, like any batch: a release that fails them is stored blocked.
    ``levels`` is the priority scale either way.
    """
    options = replace(options or ingest.IngestOptions(()), priority_levels=tuple(levels))
    if not ids and not batch_id and fixed is not None:
        ids = _ids_in(fixed)
    if not ids and not batch_id:
        raise InputError(
            "name the records to release: record ids, --batch, or --file from `quarantine export`"
        )
    with engine.begin() as conn:
        records = _records(conn, ids, batch_id)
        rows = _fixed_rows(records, fixed)
        results = []
        for (kind, origin), group in records.groupby(["kind", "batch_id"], sort=False):
            results.append(
                _release_group(
                    conn, kind, origin, {int(i): rows[int(i)] for i in group["id"]}, options
                )
            )
    released = sum(r["released"] for r in results)
    still_failing = sum(r["still_failing"] for r in results)
    logger.info(
        "released %d quarantined row(s) in %d batch(es); %d still failing",
        released,
        len(results),
        still_failing,
    )
    return {"batches": results, "released": released, "still_failing": still_failing}
