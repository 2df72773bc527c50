"""Ingestion: read a source, map its columns, validate rows, upsert, quarantine.

Every row read ends up stored, quarantined with its reasons, or skipped as an
exact duplicate, and ``read == stored + quarantined + skipped`` holds for each
batch. A batch is written in one transaction: an error anywhere leaves the
store exactly as it was before.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
from sqlalchemy.engine import Connection, Engine

from triage_ml import contracts, store
from triage_ml.errors import InputError

OPTIONAL_TICKET_COLUMNS: tuple[str, ...] = ("channel", "customer_id", "customer_tier", "customer_ltv", "language")
FEEDBACK_COLUMNS: tuple[str, ...] = ("ticket_id", "corrected_category", "corrected_priority", "agent_id", "corrected_at", "reason")
SURVEY_COLUMNS: tuple[str, ...] = ("ticket_id", "csat", "comment", "answered_at")
_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class ColumnMapping:
    """How a user's file maps onto the canonical ticket columns.

    ``None`` means "this file has no such column". Names given explicitly must
    exist; the defaults are used only when the file has them.
    """

    text_columns: tuple[str, ...] = ("subject", "body")
    category_column: str | None = "category"
    priority_column: str | None = "priority"
    id_column: str | None = "ticket_id"
    created_at_column: str | None = "created_at"
    explicit: frozenset[str] = frozenset()
    labeled: bool = True


@dataclass
class IngestSummary:
    """What happened to one batch; the four counts always add up."""

    batch_id: str
    kind: str
    source: str
    read: int = 0
    stored: int = 0
    quarantined: int = 0
    skipped: int = 0
    inserted: int = 0
    updated: int = 0
    status: str = "accepted"
    categories: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        out = asdict(self)
        out["categories"] = sorted(self.categories)
        return out


def read_source(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Yield a CSV or Parquet file in chunks of raw strings.

    Raises:
        InputError: the file is missing, empty, or not a readable table.
    """
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"input file is empty: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        yield from _read_parquet(path, chunk_rows)
    else:
        yield from _read_csv(path, chunk_rows)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__


def _require_utf8_text(path: Path) -> None:
    # A spreadsheet, an image or UTF-16 text holds NUL bytes; text in another
    # 8-bit encoding is mostly undecodable. Either would otherwise surface as
    # garbage column names or every row quarantined.
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    undecodable = head.decode("utf-8", errors="replace").count("\ufffd")
    if b"\x00" in head or undecodable > len(head) // 20:
        raise InputError(f"{path} is not a UTF-8 CSV file (binary data or another encoding); export it as CSV UTF-8")


def _read_csv(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    _require_utf8_text(path)
    try:
        # Bytes that are not UTF-8 become U+FFFD, so split_valid quarantines
        # only the rows that hold them instead of failing the whole file.
        reader = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], chunksize=chunk_rows,
                             encoding="utf-8", encoding_errors="replace")
        for chunk in reader:
            yield chunk
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"input file has no header or rows: {path}") from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{path} is not a readable CSV file: {_first_line(exc)}") from exc


def _read_parquet(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several unrelated types here
        raise InputError(f"{path} is not a readable Parquet file: {_first_line(exc)}") from exc
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        frame = batch.to_pandas().astype("string")
        yield frame.astype(object).where(frame.notna(), None)


def resolve_mapping(columns: Sequence[str], mapping: ColumnMapping, source: str) -> ColumnMapping:
    """Check the mapping against the file's header; drop absent default columns.

    Raises:
        InputError: an explicitly named column, a text column or (for labeled
            data) the category column is missing.
    """
    present = set(columns)

    def missing(name: str | None) -> bool:
        return name is not None and name not in present

    wanted = [c for c in mapping.text_columns if c not in present]
    if len(wanted) == len(mapping.text_columns) or ("text_columns" in mapping.explicit and wanted):
        raise InputError(f"text column(s) {', '.join(wanted)} not found in {source}; its columns are: {', '.join(columns)}")
    checks = {"category_column": mapping.category_column, "priority_column": mapping.priority_column,
              "id_column": mapping.id_column, "created_at_column": mapping.created_at_column}
    updates: dict[str, Any] = {"text_columns": tuple(c for c in mapping.text_columns if c in present)}
    for key, name in checks.items():
        if missing(name):
            if key in mapping.explicit or (key == "category_column" and mapping.labeled):
                raise InputError(f"column '{name}' ({key.replace('_column', '')}) not found in {source}; its columns are: {', '.join(columns)}")
            updates[key] = None
    if not mapping.labeled:
        updates["category_column"] = updates["priority_column"] = None
    return ColumnMapping(**{**asdict(mapping), **updates})


def _clean_text(values: pd.Series) -> pd.Series:
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    return text.where(text != "", None)


def _join_columns(frame: pd.DataFrame, columns: Sequence[str], sep: str) -> pd.Series:
    # str.cat, unlike agg(axis=1), still returns a Series for an empty chunk.
    text = frame[list(columns)].astype(object).where(frame[list(columns)].notna(), "").astype(str)
    first, *rest = [text[c] for c in columns]
    return first.str.cat(rest, sep=sep) if rest else first


def _content_hash(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    joined = _join_columns(frame, columns, "\x1f")
    return joined.map(lambda s: hashlib.sha256(s.encode("utf-8")).hexdigest())


def map_tickets(raw: pd.DataFrame, mapping: ColumnMapping) -> pd.DataFrame:
    """Turn a raw chunk into canonical ticket columns (ids included)."""
    out = pd.DataFrame(index=raw.index)
    texts = list(mapping.text_columns)
    out["subject"] = _clean_text(raw[texts[0]]) if len(texts) > 1 else None
    out["body"] = _clean_text(_join_columns(raw, texts[1:] if len(texts) > 1 else texts, "\n"))
    out["created_at"] = _clean_text(raw[mapping.created_at_column]) if mapping.created_at_column else None
    for column in OPTIONAL_TICKET_COLUMNS:
        out[column] = _clean_text(raw[column]) if column in raw.columns else None
    out["category"] = _clean_text(raw[mapping.category_column]) if mapping.category_column else None
    out["priority"] = _clean_text(raw[mapping.priority_column]).str.lower() if mapping.priority_column else None
    if mapping.id_column:
        out["ticket_id"] = _clean_text(raw[mapping.id_column])
    else:
        # No id in the source: a hash of the text and time is stable across
        # re-ingests and survives label corrections.
        out["ticket_id"] = "h-" + _content_hash(out, ["subject", "body", "created_at"]).str[:24]
    if not mapping.labeled:
        out = out.drop(columns=["category"])
    return out


def updated_columns(columns: Sequence[str], mapping: ColumnMapping) -> list[str]:
    """Store columns an upsert from this file writes: only those the file has.

    A file without, say, a priority or channel column says nothing about
    them, so it must not wipe what the store already holds.
    """
    given = {"ticket_id", "body", *(c for c in OPTIONAL_TICKET_COLUMNS if c in columns)}
    given |= {name for name, present in (
        ("subject", len(mapping.text_columns) > 1), ("created_at", mapping.created_at_column is not None),
        ("category", mapping.labeled and mapping.category_column is not None),
        ("priority", mapping.labeled and mapping.priority_column is not None),
    ) if present}
    return [c for c in store.TICKET_FIELDS if c in given] + ["content_hash", "batch_id", "ingested_at"]


def _raw_row(raw: pd.DataFrame, index: Any) -> dict[str, Any]:
    return {k: (None if pd.isna(v) else v) for k, v in raw.loc[index].items()}


def undecodable_rows(raw: pd.DataFrame) -> dict[Any, list[str]]:
    """Rows holding U+FFFD, the reader's stand-in for bytes that are not UTF-8.

    A U+FFFD that was already in the file means an earlier bad decode, so it
    is quarantined too.
    """
    reasons: dict[Any, list[str]] = {}
    for column in raw.columns:
        values = raw[column].astype(object).where(raw[column].notna(), "").astype(str)
        for index in raw.index[values.str.contains("\ufffd", regex=False)]:
            reasons.setdefault(index, []).append(f"{column}: invalid UTF-8 bytes")
    return reasons


def split_valid(raw: pd.DataFrame, canonical: pd.DataFrame, schema: pa.DataFrameSchema,
                offset: int) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Validate canonical rows; return the valid frame and quarantine records."""
    undecodable = undecodable_rows(raw)
    try:
        verdict = contracts.validate_rows(canonical.drop(index=list(undecodable)), schema)
    except pa.errors.SchemaErrors as errors:
        first = errors.failure_cases.iloc[0]
        raise InputError(f"batch does not satisfy contract '{schema.name}': {first['column']} {first['check']}") from errors
    rejected = [
        {"row_number": offset + int(raw.index.get_loc(i)) + 1, "raw": _raw_row(raw, i), "reasons": reasons}
        for i, reasons in {**undecodable, **verdict.rejected}.items()
    ]
    return verdict.valid, rejected


def dedupe_within_batch(frame: pd.DataFrame, key: str, seen: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Drop repeats of a key already seen in this batch.

    Returns:
        (first occurrences, conflicting repeats to quarantine, exact repeats skipped)
    """
    previous = frame[key].map(seen)
    repeat = previous.notna()
    exact = repeat & (previous == frame["content_hash"])
    conflict = repeat & ~exact
    first = frame[~repeat].drop_duplicates(key, keep="first")
    later = frame[~repeat & frame.duplicated(key, keep="first")]
    later_exact = later["content_hash"].values == later[key].map(dict(zip(first[key], first["content_hash"]))).values
    seen.update(dict(zip(first[key], first["content_hash"])))
    conflicts = pd.concat([frame[conflict], later[~later_exact]])
    return first, conflicts, int(exact.sum() + later_exact.sum())


def new_batch_id() -> str:
    """A fresh, unique batch identifier."""
    return uuid.uuid4().hex


def _path_source(path: Path) -> str:
    return str(path.resolve()) if path.exists() else str(path)


def ingest_tickets(engine: Engine, path: Path, mapping: ColumnMapping, priority_levels: Sequence[str],
                   chunk_rows: int = 20_000) -> IngestSummary:
    """Ingest one ticket file into the store, in a single transaction.

    Raises:
        InputError: the source cannot be read or mapped, or its labels cannot
            train a classifier (a single class); nothing is written then.
    """
    summary = IngestSummary(batch_id=new_batch_id(), kind="tickets", source=_path_source(path))
    schema = contracts.load_schema("tickets", priority_levels)
    seen: dict[str, str] = {}
    with engine.begin() as conn:
        for chunk in read_source(path, chunk_rows):
            _ingest_ticket_chunk(conn, chunk, mapping, schema, seen, summary)
        _require_rows(summary, path)
        _require_two_classes(summary, mapping, path)
        _finish_batch(conn, summary)
    return summary


def _ingest_ticket_chunk(conn: Connection, raw: pd.DataFrame, mapping: ColumnMapping, schema: pa.DataFrameSchema,
                         seen: dict[str, str], summary: IngestSummary) -> None:
    resolved = resolve_mapping(list(raw.columns), mapping, summary.source)
    offset = summary.read
    summary.read += len(raw)
    canonical = map_tickets(raw, resolved)
    valid, rejected = split_valid(raw, canonical, schema, offset)
    valid = valid.assign(content_hash=_content_hash(valid, [c for c in store.TICKET_FIELDS[1:] if c in valid.columns]))
    first, conflicts, repeats = dedupe_within_batch(valid, "ticket_id", seen)
    rejected += [
        {"row_number": offset + int(raw.index.get_loc(i)) + 1, "raw": _raw_row(raw, i),
         "reasons": ["ticket_id: duplicate id in this batch with different content"]}
        for i in conflicts.index
    ]
    stored = store.existing_hashes(conn, store.tickets, "ticket_id", first["ticket_id"].tolist())
    known = first["ticket_id"].map(stored)
    unchanged = known.notna() & (known == first["content_hash"])
    # An unlabeled re-export of a stored ticket never overwrites its labels.
    changed = known.notna() & ~unchanged & resolved.labeled
    now = pd.Timestamp.now(tz="UTC")
    rows = first.assign(batch_id=summary.batch_id, ingested_at=now)
    if not resolved.labeled:
        rows = rows.drop(columns=[c for c in ("category", "priority") if c in rows.columns])
    summary.inserted += store.insert_rows(conn, store.tickets, rows[known.isna()], ("created_at", "ingested_at"))
    summary.updated += store.update_tickets(conn, rows.loc[changed, updated_columns(list(raw.columns), resolved)])
    summary.stored = summary.inserted + summary.updated
    summary.skipped += repeats + int((known.notna() & ~changed).sum())
    summary.quarantined += store.quarantine_rows(conn, summary.batch_id, "tickets", rejected)
    if resolved.labeled:
        summary.categories.update(first["category"].dropna().unique().tolist())


def _require_rows(summary: IngestSummary, path: Path) -> None:
    if summary.read == 0:
        raise InputError(f"input file has a header but no rows: {path}")


def _require_two_classes(summary: IngestSummary, mapping: ColumnMapping, path: Path) -> None:
    if mapping.labeled and len(summary.categories) == 1:
        only = next(iter(summary.categories))
        raise InputError(f"category column '{mapping.category_column}' in {path} has a single class ('{only}'); "
                         "a classifier needs at least two")


def _finish_batch(conn: Connection, summary: IngestSummary) -> None:
    assert summary.read == summary.stored + summary.quarantined + summary.skipped, summary
    store.record_batch(conn, {
        "batch_id": summary.batch_id, "kind": summary.kind, "source": summary.source,
        "rows_read": summary.read, "rows_stored": summary.stored, "rows_quarantined": summary.quarantined,
        "rows_skipped": summary.skipped, "status": summary.status, "report": None,
    })


def _ingest_linked(engine: Engine, path: Path, kind: str, columns: Sequence[str], table: Any, key: str,
                   schema: pa.DataFrameSchema, chunk_rows: int) -> IngestSummary:
    summary = IngestSummary(batch_id=new_batch_id(), kind=kind, source=_path_source(path))
    seen: dict[str, str] = {}
    with engine.begin() as conn:
        for raw in read_source(path, chunk_rows):
            _require_columns(raw, columns, summary.source, optional=("reason", "comment", "agent_id"))
            offset = summary.read
            summary.read += len(raw)
            canonical = _map_linked(raw, columns)
            valid, rejected = split_valid(raw, canonical, schema, offset)
            valid, rejected = _require_known_tickets(conn, raw, valid, rejected, offset)
            if kind == "feedback":
                valid, rejected = _require_a_correction(raw, valid, rejected, offset)
            valid = valid.assign(content_hash=_content_hash(valid, columns))
            first, _, repeats = dedupe_within_batch(valid.assign(**{key: valid["content_hash"].str[:40]}), key, seen)
            known = store.existing_ids(conn, table, key, first[key].tolist())
            fresh = first[~first[key].isin(known)].drop(columns=["content_hash"])
            fresh = fresh.assign(batch_id=summary.batch_id, ingested_at=pd.Timestamp.now(tz="UTC"))
            time_column = "corrected_at" if kind == "feedback" else "answered_at"
            summary.stored += store.insert_rows(conn, table, fresh, (time_column, "ingested_at"))
            summary.skipped += repeats + len(first) - len(fresh)
            summary.quarantined += store.quarantine_rows(conn, summary.batch_id, kind, rejected)
        _require_rows(summary, path)
        _finish_batch(conn, summary)
    return summary


def _map_linked(raw: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame({c: _clean_text(raw[c]) if c in raw.columns else None for c in columns}, index=raw.index)
    if "corrected_priority" in out.columns:
        # Same case rule as ticket priorities, so "High" is on the scale.
        out["corrected_priority"] = out["corrected_priority"].str.lower()
    return out


def _require_columns(raw: pd.DataFrame, columns: Sequence[str], source: str, optional: Sequence[str]) -> None:
    absent = [c for c in columns if c not in raw.columns and c not in optional]
    if absent:
        raise InputError(f"column(s) {', '.join(absent)} not found in {source}; its columns are: {', '.join(raw.columns)}")


def _require_known_tickets(conn: Connection, raw: pd.DataFrame, valid: pd.DataFrame, rejected: list[dict[str, Any]],
                           offset: int) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    known = store.existing_ids(conn, store.tickets, "ticket_id", valid["ticket_id"].unique().tolist())
    unknown = ~valid["ticket_id"].isin(known)
    rejected = rejected + [
        {"row_number": offset + int(raw.index.get_loc(i)) + 1, "raw": _raw_row(raw, i),
         "reasons": [f"ticket_id: unknown ticket '{valid.at[i, 'ticket_id']}'"]}
        for i in valid.index[unknown]
    ]
    return valid[~unknown], rejected


def _require_a_correction(raw: pd.DataFrame, valid: pd.DataFrame, rejected: list[dict[str, Any]],
                          offset: int) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    empty = valid["corrected_category"].isna() & valid["corrected_priority"].isna()
    rejected = rejected + [
        {"row_number": offset + int(raw.index.get_loc(i)) + 1, "raw": _raw_row(raw, i),
         "reasons": ["corrected_category/corrected_priority: neither is set"]}
        for i in valid.index[empty]
    ]
    return valid[~empty], rejected


def ingest_feedback(engine: Engine, path: Path, priority_levels: Sequence[str], chunk_rows: int = 20_000) -> IngestSummary:
    """Ingest agent corrections; rows for unknown tickets are quarantined."""
    schema = contracts.load_schema("feedback", priority_levels)
    return _ingest_linked(engine, path, "feedback", FEEDBACK_COLUMNS, store.feedback, "feedback_id", schema, chunk_rows)


def ingest_surveys(engine: Engine, path: Path, priority_levels: Sequence[str], chunk_rows: int = 20_000) -> IngestSummary:
    """Ingest CSAT surveys; rows for unknown tickets are quarantined."""
    schema = contracts.load_schema("surveys", priority_levels)
    return _ingest_linked(engine, path, "surveys", SURVEY_COLUMNS, store.surveys, "survey_id", schema, chunk_rows)


def preflight_tickets(path: Path, mapping: ColumnMapping, chunk_rows: int = 20_000) -> None:
    """Fail fast, before any flow starts, on problems that concern the whole file.

    Reads only until the file is known to have rows and (when labeled) two
    categories, so a good file costs one chunk.

    Raises:
        InputError: missing, empty or unreadable file, a missing column, or a
            category column with fewer than two classes.
    """
    rows, classes = 0, set()
    for raw in read_source(path, chunk_rows):
        resolved = resolve_mapping(list(raw.columns), mapping, str(path))
        rows += len(raw)
        if resolved.labeled:
            classes.update(_clean_text(raw[resolved.category_column]).dropna().unique().tolist())
        # pandas yields one empty chunk for a header-only file.
        if rows and (not resolved.labeled or len(classes) > 1):
            return
    if rows == 0:
        raise InputError(f"input file has a header but no rows: {path}")
    if not classes:
        raise InputError(f"category column '{mapping.category_column}' in {path} is empty")
    raise InputError(f"category column '{mapping.category_column}' in {path} has a single class ('{classes.pop()}'); "
                     "a classifier needs at least two")


def preflight_linked(path: Path, kind: str, chunk_rows: int = 20_000) -> None:
    """Fail fast on a feedback or survey file that is missing, empty or lacks columns."""
    columns = FEEDBACK_COLUMNS if kind == "feedback" else SURVEY_COLUMNS
    for raw in read_source(path, chunk_rows):
        _require_columns(raw, columns, str(path), optional=("reason", "comment", "agent_id"))
        if len(raw):
            return
    raise InputError(f"input file has a header but no rows: {path}")
