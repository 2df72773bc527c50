"""Scoring a file: a CSV or Parquet of tickets in, a file of predictions out, bad rows beside it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from triage_ml import ingest
from triage_ml.errors import InputError
from triage_ml.ingest import contracts
from triage_ml.scoring.batch import predictions_frame

OUTPUT_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")


def rejected_path(output: Path) -> Path:
    """Where rows of a scored file that break the ticket contract are written, with their reasons."""
    return output.with_name(f"{output.stem}.rejected.csv")


def _valid_tickets(
    raw: pd.DataFrame, mapping: ingest.ColumnMapping, schema: Any, source: str, offset: int
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    resolved = ingest.resolve_mapping(list(raw.columns), mapping, source)
    return ingest.split_valid(raw, ingest.map_tickets(raw, resolved), schema, offset)


def _write_part(frame: pd.DataFrame, path: Path, fmt: str, first: bool, writer: Any) -> Any:
    """Append ``frame`` to a CSV, or to a Parquet file through one ParquetWriter; returns the writer."""
    if fmt == ".csv":
        frame.to_csv(path, mode="w" if first else "a", header=first, index=False)
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    writer = writer or pq.ParquetWriter(path, table.schema)
    writer.write_table(table)
    return writer


def score_file(
    model: Any,
    model_version: str,
    source: Path,
    output: Path,
    mapping: ingest.ColumnMapping,
    priority_levels: tuple[str, ...],
    chunk_rows: int,
) -> dict[str, Any]:
    """Predict every valid ticket of a CSV/Parquet file into ``output`` (same formats), chunk by chunk.

    Rows that break the ticket contract are not predicted; they go to
    :func:`rejected_path` with their reasons. The output appears only when
    complete: it is written to a temporary name and renamed at the end.

    Raises:
        InputError: an output format other than CSV or Parquet, or an unreadable source.
    """
    if output.suffix not in OUTPUT_SUFFIXES:
        raise InputError(
            f"--output must end in .csv or .parquet, not '{output.suffix or output.name}'"
        )
    schema = contracts.load_schema("tickets", priority_levels)
    partial = output.with_name(f".{output.name}.partial")
    scored, rejected, writer, offset = 0, [], None, 0
    try:
        for raw in ingest.read_source(source, chunk_rows):
            valid, bad = _valid_tickets(raw, mapping, schema, str(source), offset)
            offset += len(raw)
            rejected += bad
            if valid.empty:
                continue
            predictions = predictions_frame(model, valid, model_version)
            writer = _write_part(predictions, partial, output.suffix, scored == 0, writer)
            scored += len(predictions)
    finally:
        if writer is not None:
            writer.close()
    if scored == 0:
        partial.unlink(missing_ok=True)
        raise InputError(f"{source} has no valid tickets to score ({len(rejected)} rejected)")
    os.replace(partial, output)
    if rejected:
        pd.DataFrame(
            [
                {
                    "row_number": r["row_number"],
                    "reasons": "; ".join(r["reasons"]),
                    "raw": json.dumps(r["raw"], default=str),
                }
                for r in rejected
            ]
        ).to_csv(rejected_path(output), index=False)
    return {
        "model_version": model_version,
        "scored": scored,
        "rejected": len(rejected),
        "output": str(output),
        "rejected_file": str(rejected_path(output)) if rejected else None,
    }
