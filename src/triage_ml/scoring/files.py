"""Scoring a file: a CSV or Parquet of tickets in, a file of predictions out, bad rows beside it."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from triage_ml import ingest
from triage_ml.errors import InputError
from triage_ml.ingest import contracts
from triage_ml.scoring.batch import predictions_frame

OUTPUT_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
logger = logging.getLogger(__name__)


def rejected_path(output: Path) -> Path:
    """Where the rows of a scored file that break the ticket contract go, with their reasons."""
    return output.with_name(f"{output.stem}.rejected.csv")


def _write_part(frame: pd.DataFrame, path: Path, fmt: str, first: bool, writer: Any) -> Any:
    """Append ``frame`` to a CSV, or to a Parquet file through one ParquetWriter.

    Returns:
        The Parquet writer (None for a CSV), to pass back in for the next part.
    """
    if fmt == ".csv":
        frame.to_csv(path, mode="w" if first else "a", header=first, index=False)
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    writer = writer or pq.ParquetWriter(path, table.schema)
    writer.write_table(table)
    return writer


def _predict_chunks(
    model: Any,
    model_version: str,
    chunks: Iterator[ingest.CheckedChunk],
    partial: Path,
    fmt: str,
) -> tuple[int, list[dict[str, Any]]]:
    """Predict the valid rows of each checked chunk into ``partial``; returns (scored, rejected)."""
    scored, rejected, writer = 0, [], None
    try:
        for chunk in chunks:
            rejected += chunk.rejected
            if chunk.valid.empty:
                continue
            predictions = predictions_frame(model, chunk.valid, model_version)
            writer = _write_part(predictions, partial, fmt, scored == 0, writer)
            scored += len(predictions)
    finally:
        if writer is not None:
            writer.close()
    return scored, rejected


def _write_rejected(rejected: list[dict[str, Any]], path: Path) -> None:
    """The rejected rows as CSV: row number, reasons joined by "; ", raw row as JSON."""
    pd.DataFrame(
        [
            {
                "row_number": r["row_number"],
                "reasons": "; ".join(r["reasons"]),
                "raw": json.dumps(r["raw"], default=str),
            }
            for r in rejected
        ]
    ).to_csv(path, index=False)


def score_file(
    model: Any,
    model_version: str,
    source: Path,
    output: Path,
    mapping: ingest.ColumnMapping,
    priority_levels: tuple[str, ...],
    chunk_rows: int,
) -> dict[str, Any]:
    """Predict every valid ticket of a CSV/Parquet file into ``output`` (either format), by chunks.

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
    chunks = ingest.checked_chunks(ingest.as_source(source), mapping, schema, chunk_rows)
    scored, rejected = _predict_chunks(model, model_version, chunks, partial, output.suffix)
    if scored == 0:
        partial.unlink(missing_ok=True)
        raise InputError(f"{source} has no valid tickets to score ({len(rejected)} rejected)")
    os.replace(partial, output)
    if rejected:
        _write_rejected(rejected, rejected_path(output))
    logger.info(
        "scored %d ticket(s) of %s with model version %s into %s; %d rejected",
        scored,
        source,
        model_version,
        output,
        len(rejected),
    )
    return {
        "model_version": model_version,
        "scored": scored,
        "rejected": len(rejected),
        "output": str(output),
        "rejected_file": str(rejected_path(output)) if rejected else None,
    }
