"""Scoring a file: tickets in, predictions out (CSV, Parquet, JSON), bad rows beside it.

Each scored row carries what joins it back to its source: ``source_row``, its
1-based row number there (as the rejected rows file numbers rows), the source's
own id as ``source_id`` when the file has an id column, and any columns asked
for with ``--keep-columns``. ``top3`` is a list of ``{category, proba}`` in
Parquet and JSON; CSV has no lists, so there it stays a JSON string.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from triage_ml import ingest, progress
from triage_ml.errors import InputError
from triage_ml.ingest import contracts
from triage_ml.scoring.answers import JSON_ANSWERS, parse_stored
from triage_ml.scoring.batch import ANSWER_COLUMNS, DUPLICATES, predictions_frame, with_duplicates
from triage_ml.settings import DuplicateSettings
from triage_model.predictor import OUTPUT_COLUMNS

OUTPUT_SUFFIXES: tuple[str, ...] = (".csv", ".parquet", ".json", ".jsonl")
SOURCE_ROW, SOURCE_ID = "source_row", "source_id"
# Every column a scored file may have besides the kept ones: a kept column may not share a name.
SCORED_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    SOURCE_ROW,
    SOURCE_ID,
    *dict.fromkeys([*OUTPUT_COLUMNS, *ANSWER_COLUMNS]),
    "model_version",
    "scored_at",
)
logger = logging.getLogger(__name__)


def rejected_path(output: Path) -> Path:
    """Where the rows of a scored file that break the ticket contract go, with their reasons."""
    return output.with_name(f"{output.stem}.rejected.csv")


def check_output(output: Path, keep: Sequence[str]) -> None:
    """Refuse an output format other than CSV, Parquet or JSON, and a kept column that clashes.

    Raises:
        InputError: naming the suffix, or the kept column and the output column it would hide.
    """
    if output.suffix not in OUTPUT_SUFFIXES:
        raise InputError(
            f"--output must end in {', '.join(OUTPUT_SUFFIXES[:-1])} or {OUTPUT_SUFFIXES[-1]},"
            f" not '{output.suffix or output.name}'"
        )
    clashing = [name for name in keep if name in SCORED_COLUMNS]
    if clashing:
        raise InputError(
            f"--keep-columns: {', '.join(repr(c) for c in clashing)} would clash with the scored"
            " file's column of the same name; leave it out (the scored file has"
            f" {', '.join(SCORED_COLUMNS)})"
        )


def check_keep_columns(keep: Sequence[str], columns: Sequence[str], source: str) -> None:
    """Refuse kept columns the source does not have.

    Raises:
        InputError: naming each unknown column and listing the source's columns.
    """
    unknown = [name for name in keep if name not in columns]
    if unknown:
        raise InputError(
            f"--keep-columns: column(s) {', '.join(repr(c) for c in unknown)} not found in"
            f" {source}; its columns are: {', '.join(columns)}"
        )


def source_columns(source: Path) -> list[str]:
    """The column names of a CSV or Parquet file, read with its first row only.

    Raises:
        InputError: the file cannot be read.
    """
    first = next(iter(ingest.as_source(source).chunks(1)), None)
    return [] if first is None else [str(c) for c in first.columns]


def joined(
    predictions: pd.DataFrame, chunk: ingest.CheckedChunk, keep: Sequence[str]
) -> pd.DataFrame:
    """``predictions`` of ``chunk.valid`` with the columns that join them back to the source."""
    raw = chunk.raw.loc[chunk.valid.index].reset_index(drop=True)
    source = pd.DataFrame(
        {SOURCE_ROW: chunk.offset + chunk.raw.index.get_indexer(chunk.valid.index) + 1}
    )
    if chunk.mapping.id_column:
        source[SOURCE_ID] = raw[chunk.mapping.id_column]
    for name in keep:
        source[name] = raw[name]
    predictions = predictions.reset_index(drop=True)
    return pd.concat(
        [predictions[["ticket_id"]], source, predictions.drop(columns="ticket_id")], axis=1
    )


def with_json_values(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its JSON answers parsed: ``top3`` a list of ``{category, proba}``,
    ``escalation`` a list of signals, ``priority_parts`` an object, ``possible_duplicates`` a
    list of ``{ticket_id, similarity, same_customer}`` (None where a model gave none)."""
    parsed = {
        column: [parse_stored(text) for text in frame[column]]
        for column in JSON_ANSWERS
        if column in frame.columns
    }
    return frame.assign(**parsed)


class ScoredWriter:
    """Writes a scored file chunk by chunk, in the format its suffix names."""

    def __init__(self, path: Path, fmt: str, kept: Sequence[str]) -> None:
        """Write to ``path`` as ``fmt`` (an :data:`OUTPUT_SUFFIXES` suffix).

        ``kept`` names the source's text columns, typed as strings in Parquet
        even when a first chunk holds none of their values.
        """
        self.path, self.fmt, self.kept = path, fmt, (SOURCE_ID, *kept)
        self.rows = 0
        # Rows written per tier (auto, suggest, review), for the run's summary.
        self.tiers: Counter[str] = Counter()
        self.parquet: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame``'s rows."""
        first = self.rows == 0
        if self.fmt == ".csv":
            frame.to_csv(self.path, mode="w" if first else "a", header=first, index=False)
        elif self.fmt == ".parquet":
            self._write_parquet(with_json_values(frame))
        else:
            self._write_json(with_json_values(frame), first)
        self.rows += len(frame)
        self.tiers.update(frame["tier"].tolist())

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.parquet is None:
            schema = parquet_schema(pa.Schema.from_pandas(frame, preserve_index=False), self.kept)
            self.parquet = pq.ParquetWriter(self.path, schema)
        table = pa.Table.from_pandas(frame, schema=self.parquet.schema, preserve_index=False)
        self.parquet.write_table(table)

    def _write_json(self, frame: pd.DataFrame, first: bool) -> None:
        # pandas turns timestamps, NaN and numpy scalars into JSON; json writes it back
        # without pandas' escaped slashes ("billing\/refunds").
        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        lines = [json.dumps(record, ensure_ascii=False) for record in records]
        # JSON Lines: one object a line. JSON: one array, so objects are comma-separated.
        if self.fmt == ".json":
            text = ("[\n" if first else ",\n") + ",\n".join(lines)
        else:
            text = "".join(f"{line}\n" for line in lines)
        with self.path.open("w" if first else "a", encoding="utf-8") as handle:
            handle.write(text)

    def close(self) -> None:
        """Finish the file (a Parquet footer, a JSON array's closing bracket)."""
        if self.parquet is not None:
            self.parquet.close()
        if self.fmt == ".json" and self.rows:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("\n]\n")


def _answer_types() -> dict[str, Any]:
    """The Arrow type of each answer a first chunk may hold only nulls of (a model logged
    before it gave none) or whose JSON becomes nested values."""
    import pyarrow as pa

    parts = pa.struct(
        [(name, pa.float64()) for name in ("model", "value", "sentiment")]
        + [("weights", pa.struct([(n, pa.float64()) for n in ("model", "value", "sentiment")]))]
    )
    suggestion = [("ticket_id", pa.string()), ("similarity", pa.float64())]
    return {
        "top3": pa.list_(pa.struct([("category", pa.string()), ("proba", pa.float64())])),
        "escalation": pa.list_(pa.string()),
        "priority_parts": parts,
        DUPLICATES: pa.list_(pa.struct([*suggestion, ("same_customer", pa.bool_())])),
        "priority_review": pa.bool_(),
        **{name: pa.string() for name in ("subcategory", "type", "team", "language")},
        "sentiment_reason": pa.string(),
        **{f"{h}_proba": pa.float64() for h in ("subcategory", "type", "team")},
        "priority_score": pa.float64(),
    }


def parquet_schema(inferred: Any, kept: Sequence[str]) -> Any:
    """``inferred`` with the answers' types stated (JSON answers nested: ``top3`` a
    list<struct<category, proba>>, ...) and the kept columns as strings.

    Stated rather than inferred from the first chunk, whose kept columns or answers may
    all be empty (an Arrow null type that later chunks' values would break).
    """
    import pyarrow as pa

    types = _answer_types()
    fields = [
        field.with_type(types[field.name])
        if field.name in types
        else field.with_type(pa.string())
        if field.name in kept
        else field
        for field in inferred
    ]
    return pa.schema(fields, metadata=inferred.metadata)


def _predict_chunks(
    model: Any,
    model_version: str,
    chunks: Iterator[ingest.CheckedChunk],
    writer: ScoredWriter,
    keep: Sequence[str],
    duplicates: DuplicateSource | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Predict the valid rows of each checked chunk into ``writer``; returns (scored, rejected)."""
    rejected: list[dict[str, Any]] = []
    try:
        for chunk in chunks:
            rejected += chunk.rejected
            if not chunk.valid.empty:
                predictions = predictions_frame(model, chunk.valid, model_version)
                if duplicates is not None:
                    with duplicates.engine.connect() as conn:
                        predictions = with_duplicates(
                            conn, predictions, chunk.valid, duplicates.settings
                        )
                writer.write(joined(predictions, chunk, keep))
            # The file's row count is not known before it is read: a count, no bar.
            read = chunk.offset + len(chunk.raw)
            progress.report(f"scoring: {read} rows read, {len(rejected)} rejected", read, 0)
    finally:
        writer.close()
    return writer.rows, rejected


@dataclass(frozen=True)
class DuplicateSource:
    """The store a scored file's tickets are compared with for duplicate suggestions."""

    engine: Engine
    settings: DuplicateSettings


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
    keep: Sequence[str] = (),
    duplicates: DuplicateSource | None = None,
) -> dict[str, Any]:
    """Predict every valid ticket of a CSV/Parquet file into ``output``, chunk by chunk.

    Rows that break the ticket contract are not predicted; they go to
    :func:`rejected_path` with their reasons. The output appears only when
    complete: it is written to a temporary name and renamed at the end.

    Args:
        model: the loaded pyfunc model.
        model_version: its registered version, written on every row.
        source: the CSV or Parquet file of tickets.
        output: a ``.csv``, ``.parquet``, ``.json`` (one array) or ``.jsonl`` (JSON Lines) file.
        mapping: how the source's columns map onto ticket fields.
        priority_levels: the priority scale of the ticket contract.
        chunk_rows: rows read, checked and predicted at a time.
        keep: source columns copied, as read, onto each scored row.
        duplicates: the store each ticket's ``possible_duplicates`` come from (its recent open
            tickets); None leaves them null.

    Raises:
        InputError: another output format, a kept column that clashes with an output column or
            that the source lacks, an unreadable source, or no valid ticket in it.
    """
    check_output(output, keep)
    check_keep_columns(keep, source_columns(source), str(source))
    schema = contracts.load_schema("tickets", priority_levels)
    partial = output.with_name(f".{output.name}.partial")
    chunks = ingest.checked_chunks(ingest.as_source(source), mapping, schema, chunk_rows)
    writer = ScoredWriter(partial, output.suffix, keep)
    try:
        scored, rejected = _predict_chunks(model, model_version, chunks, writer, keep, duplicates)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
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
        "tiers": dict(writer.tiers),
        "output": str(output),
        "rejected_file": str(rejected_path(output)) if rejected else None,
    }
