"""Batch scoring: predict tickets and write the predictions back.

Chunks are read by keyset pagination and each chunk is written in its own
transaction, so memory stays flat and a failed chunk leaves nothing behind.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from triage_ml import contracts, features, ingest, store
from triage_ml.errors import InputError
from triage_ml.model import input_frame


@dataclass
class ScoreSummary:
    """What one scoring run did."""

    model_version: str
    scored: int = 0
    chunks: int = 0
    needs_review: int = 0


def predictions_frame(model: Any, tickets: pd.DataFrame, model_version: str) -> pd.DataFrame:
    """Predict ``tickets`` and shape the rows the predictions table stores."""
    inputs = input_frame(tickets).reset_index(drop=True)
    predicted = model.predict(inputs)
    out = pd.DataFrame(predicted).reset_index(drop=True)
    out.insert(0, "ticket_id", tickets["ticket_id"].to_numpy(dtype=object))
    out["model_version"] = model_version
    out["scored_at"] = pd.Timestamp.now(tz="UTC")
    out["needs_review"] = out["needs_review"].astype(bool)
    return out


KeyRange = tuple[str | None, str | None]


def unscored_chunks(engine: Engine, model_version: str | None, chunk_rows: int,
                    key_range: KeyRange = (None, None)) -> Iterator[pd.DataFrame]:
    """Unscored tickets in ``key_range`` (``after < id <= upto``), one chunk at a time, with ``repeat_contacts``."""
    after, upto = key_range
    while True:
        with engine.connect() as conn:
            chunk = store.unscored_tickets(conn, model_version, chunk_rows, after, upto,
                                           repeat_window_days=features.REPEAT_WINDOW_DAYS)
        if chunk.empty:
            return
        after = str(chunk["ticket_id"].iloc[-1])
        yield chunk


def partitions(engine: Engine, model_version: str | None, partition_rows: int, workers: int = 1) -> list[KeyRange]:
    """Key ranges covering every unscored ticket, at most ``partition_rows`` each, their sizes within one of each other.

    Their number is a multiple of ``workers``, so that every worker gets the
    same share: 56,000 tickets in ranges of 20,000 (two workers) left one
    worker to score the third range alone while the other sat idle.
    """
    with engine.connect() as conn:
        total = store.count_unscored(conn, model_version)
        count = workers * max(1, math.ceil(total / (workers * partition_rows)))
        # The last ticket of each range but the last one.
        ends = sorted({i * total // count - 1 for i in range(1, count)} - {-1})
        edges = store.unscored_ids_at(conn, model_version, ends)
    bounds: list[str | None] = [None, *edges, None]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


@functools.lru_cache(maxsize=4)
def process_engine(url: str) -> Engine:
    """One engine per store and process: partitions on the same worker share its pool."""
    return store.connect(url)


def write_chunk(engine: Engine, predictions: pd.DataFrame) -> int:
    """Store one chunk of predictions atomically; returns rows newly written."""
    with engine.begin() as conn:
        return store.write_predictions(conn, predictions)


def score_partition(engine: Engine, model: Any, model_version: str, chunk_rows: int, key_range: KeyRange = (None, None),
                    rescore: bool = False) -> ScoreSummary:
    """Score the unscored tickets of one key range, chunk by chunk, each chunk written atomically.

    Without ``rescore`` a ticket any model version has scored is left alone;
    with it, every ticket ``model_version`` has not scored is scored.
    """
    summary = ScoreSummary(model_version)
    for chunk in unscored_chunks(engine, model_version if rescore else None, chunk_rows, key_range):
        predictions = predictions_frame(model, chunk, model_version)
        summary.scored += write_chunk(engine, predictions)
        summary.needs_review += int(predictions["needs_review"].sum())
        summary.chunks += 1
    return summary


def combine(summaries: list[ScoreSummary], model_version: str) -> ScoreSummary:
    """One summary for the partitions of a run."""
    return ScoreSummary(model_version, sum(s.scored for s in summaries), sum(s.chunks for s in summaries),
                        sum(s.needs_review for s in summaries))


OUTPUT_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")


def rejected_path(output: Path) -> Path:
    """Where rows of a scored file that break the ticket contract are written, with their reasons."""
    return output.with_name(f"{output.stem}.rejected.csv")


def _valid_tickets(raw: pd.DataFrame, mapping: ingest.ColumnMapping, schema: Any, source: str,
                   offset: int) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
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


def score_file(model: Any, model_version: str, source: Path, output: Path, mapping: ingest.ColumnMapping,
               priority_levels: tuple[str, ...], chunk_rows: int) -> dict[str, Any]:
    """Predict every valid ticket of a CSV/Parquet file into ``output`` (same formats), chunk by chunk.

    Rows that break the ticket contract are not predicted; they go to
    :func:`rejected_path` with their reasons. The output appears only when
    complete: it is written to a temporary name and renamed at the end.

    Raises:
        InputError: an output format other than CSV or Parquet, or an unreadable source.
    """
    if output.suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"--output must end in .csv or .parquet, not '{output.suffix or output.name}'")
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
        pd.DataFrame([{"row_number": r["row_number"], "reasons": "; ".join(r["reasons"]), "raw": json.dumps(r["raw"], default=str)}
                      for r in rejected]).to_csv(rejected_path(output), index=False)
    return {"model_version": model_version, "scored": scored, "rejected": len(rejected), "output": str(output),
            "rejected_file": str(rejected_path(output)) if rejected else None}
