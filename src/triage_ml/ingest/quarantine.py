"""Inspect quarantined rows and re-ingest them once fixed.

A release runs the rows through the same ingestion path (same contracts,
same column mapping as their original batch) inside one transaction: rows
that now pass are stored, rows that still fail are quarantined again in the
new batch, and every released record points at that batch.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from triage_ml import ingest, store
from triage_ml.errors import InputError

ID_COLUMN = "_quarantine_id"
logger = logging.getLogger(__name__)


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
    """Write raw rows as CSV (first column ``_quarantine_id``) for fixing by hand."""
    records = _records(conn, ids, batch_id)
    rows = [{ID_COLUMN: rid, **json.loads(raw)} for rid, raw in zip(records["id"], records["raw"])]
    pd.DataFrame(rows).to_csv(out, index=False)
    return len(rows)


def _ids_in(fixed: Path) -> list[int]:
    if not fixed.exists():
        raise InputError(f"input file not found: {fixed}")
    edited = pd.read_csv(fixed, dtype=str, keep_default_na=False, na_values=[""])
    if ID_COLUMN not in edited.columns:
        raise InputError(
            f"{fixed} has no {ID_COLUMN} column; write it with `triage-ml quarantine export`"
        )
    return [int(i) for i in edited[ID_COLUMN]]


def _fixed_rows(records: pd.DataFrame, fixed: Path | None) -> dict[int, dict[str, Any]]:
    rows = {int(rid): json.loads(raw) for rid, raw in zip(records["id"], records["raw"])}
    if fixed is None:
        return rows
    _ids_in(fixed)
    edited = pd.read_csv(fixed, dtype=str, keep_default_na=False, na_values=[""])
    for row in edited.to_dict(orient="records"):
        rid = int(row.pop(ID_COLUMN))
        if rid in rows:
            rows[rid] = {k: (None if pd.isna(v) else v) for k, v in row.items()}
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
    levels: Sequence[str],
) -> dict[str, Any]:
    ids = list(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"released-{batch_id}.csv"
        pd.DataFrame(list(rows.values())).to_csv(path, index=False)
        options = ingest.IngestOptions(tuple(levels))
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
    }


def release(
    engine: Engine,
    levels: Sequence[str],
    ids: Sequence[int] = (),
    batch_id: str | None = None,
    fixed: Path | None = None,
) -> dict[str, Any]:
    """Re-ingest quarantined rows (optionally as fixed in ``fixed``), all in one transaction.

    Without ids or a batch, the ids are those listed in ``fixed``.
    """
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
                    conn, kind, origin, {int(i): rows[int(i)] for i in group["id"]}, levels
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
