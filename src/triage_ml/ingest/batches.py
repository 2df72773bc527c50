"""Ingestion: read a source, map its columns, validate rows, upsert, quarantine.

Every row read ends up stored, quarantined with its reasons, or skipped as an
exact duplicate, and ``read == stored + quarantined + skipped`` holds for each
batch. A batch is written in one transaction: an error anywhere leaves the
store exactly as it was before.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pandera.pandas as pa
from sqlalchemy.engine import Connection, Engine

from triage_ml import store
from triage_ml.errors import InputError
from triage_ml.ingest import contracts, expectations, sources
from triage_ml.ingest.sources import Source, read_source
from triage_ml.settings import Settings

OPTIONAL_TICKET_COLUMNS: tuple[str, ...] = (
    "channel",
    "customer_id",
    "customer_tier",
    "customer_ltv",
    "language",
)
FEEDBACK_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "corrected_category",
    "corrected_priority",
    "agent_id",
    "corrected_at",
    "reason",
)
SURVEY_COLUMNS: tuple[str, ...] = ("ticket_id", "csat", "comment", "answered_at")

T = TypeVar("T")


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
    rejected_rows: list[int] = field(default_factory=list, repr=False)
    batch_failures: list[str] = field(default_factory=list)
    data_docs: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        out = asdict(self)
        out["categories"] = sorted(self.categories)
        del out["rejected_rows"]
        return out


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
        raise InputError(
            f"text column(s) {', '.join(wanted)} not found in {source}; its columns are: {', '.join(columns)}"
        )
    checks = {
        "category_column": mapping.category_column,
        "priority_column": mapping.priority_column,
        "id_column": mapping.id_column,
        "created_at_column": mapping.created_at_column,
    }
    updates: dict[str, Any] = {
        "text_columns": tuple(c for c in mapping.text_columns if c in present)
    }
    for key, name in checks.items():
        if missing(name):
            if key in mapping.explicit or (key == "category_column" and mapping.labeled):
                raise InputError(
                    f"column '{name}' ({key.replace('_column', '')}) not found in {source}; its columns are: {', '.join(columns)}"
                )
            updates[key] = None
    if not mapping.labeled:
        updates["category_column"] = updates["priority_column"] = None
    return ColumnMapping(**{**asdict(mapping), **updates})


def _clean_text(values: pd.Series) -> pd.Series:
    # Stays in Arrow string ops: blank and missing both become <NA>.
    text = values.astype("string").str.strip()
    return text.where(text.fillna("") != "", pd.NA)


def _as_text(values: pd.Series) -> list[str]:
    # Timestamps as integer nanoseconds: formatting them as text cost more
    # than the rest of the hashing together.
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
        values.dtype
    ):
        return values.astype("int64").astype(str).tolist()
    return values.astype("string").fillna("").tolist()


def _join_columns(frame: pd.DataFrame, columns: Sequence[str], sep: str) -> pd.Series:
    # Plain Python joins over column lists: several times faster than pandas
    # string ops on Arrow-backed columns, and still a Series for an empty chunk.
    parts = [_as_text(frame[c]) for c in columns]
    return pd.Series([sep.join(row) for row in zip(*parts)], index=frame.index, dtype=object)


def _content_hash(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    joined = _join_columns(frame, columns, "\x1f")
    return pd.Series(
        [hashlib.sha256(s.encode("utf-8")).hexdigest() for s in joined],
        index=frame.index,
        dtype=object,
    )


def map_tickets(raw: pd.DataFrame, mapping: ColumnMapping) -> pd.DataFrame:
    """Turn a raw chunk into canonical ticket columns (ids included)."""
    out = pd.DataFrame(index=raw.index)
    texts = list(mapping.text_columns)
    out["subject"] = _clean_text(raw[texts[0]]) if len(texts) > 1 else None
    out["body"] = _clean_text(_join_columns(raw, texts[1:] if len(texts) > 1 else texts, "\n"))
    out["created_at"] = (
        _clean_text(raw[mapping.created_at_column]) if mapping.created_at_column else None
    )
    for column in OPTIONAL_TICKET_COLUMNS:
        out[column] = _clean_text(raw[column]) if column in raw.columns else None
    out["category"] = _clean_text(raw[mapping.category_column]) if mapping.category_column else None
    out["priority"] = (
        _clean_text(raw[mapping.priority_column]).str.lower() if mapping.priority_column else None
    )
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
    given |= {
        name
        for name, present in (
            ("subject", len(mapping.text_columns) > 1),
            ("created_at", mapping.created_at_column is not None),
            ("category", mapping.labeled and mapping.category_column is not None),
            ("priority", mapping.labeled and mapping.priority_column is not None),
        )
        if present
    }
    return [c for c in store.TICKET_FIELDS if c in given] + [
        "content_hash",
        "batch_id",
        "ingested_at",
    ]


def _raw_row(raw: pd.DataFrame, index: Any) -> dict[str, Any]:
    return {k: (None if pd.isna(v) else v) for k, v in raw.loc[index].items()}


def rejection(raw: pd.DataFrame, index: Any, offset: int, reasons: list[str]) -> dict[str, Any]:
    """A quarantine record: 1-based row number in the source, the raw row, the reasons."""
    return {
        "row_number": offset + int(raw.index.get_loc(index)) + 1,
        "raw": _raw_row(raw, index),
        "reasons": reasons,
    }


def undecodable_rows(raw: pd.DataFrame) -> dict[Any, list[str]]:
    """Rows holding U+FFFD, the reader's stand-in for bytes that are not UTF-8.

    A U+FFFD that was already in the file means an earlier bad decode, so it
    is quarantined too.
    """
    reasons: dict[Any, list[str]] = {}
    for column in raw.columns:
        # Arrow's substring search, without a round trip through Python objects.
        hits = (
            raw[column]
            .astype("string")
            .str.contains("\ufffd", regex=False)
            .fillna(False)
            .astype(bool)
        )
        for index in raw.index[hits.to_numpy()]:
            reasons.setdefault(index, []).append(f"{column}: invalid UTF-8 bytes")
    return reasons


def split_valid(
    raw: pd.DataFrame, canonical: pd.DataFrame, schema: pa.DataFrameSchema, offset: int
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Validate canonical rows; return the valid frame and quarantine records."""
    undecodable = undecodable_rows(raw)
    try:
        verdict = contracts.validate_rows(canonical.drop(index=list(undecodable)), schema)
    except pa.errors.SchemaErrors as errors:
        first = errors.failure_cases.iloc[0]
        raise InputError(
            f"batch does not satisfy contract '{schema.name}': {first['column']} {first['check']}"
        ) from errors
    rejected = [
        rejection(raw, i, offset, reasons)
        for i, reasons in {**undecodable, **verdict.rejected}.items()
    ]
    return verdict.valid, rejected


def dedupe_chunk(frame: pd.DataFrame, key: str) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Split a chunk on repeats of ``key`` within it.

    Repeats across chunks are found in the store itself (earlier chunks of
    the batch are already written in its transaction), so memory does not
    grow with the batch.

    Returns:
        (first occurrences, conflicting repeats to quarantine, count of exact repeats skipped)
    """
    repeat = frame.duplicated(key, keep="first")
    first, later = frame[~repeat], frame[repeat]
    exact = later["content_hash"] == later[key].map(first.set_index(key)["content_hash"])
    return first, later[~exact], int(exact.sum())


def new_batch_id() -> str:
    """A fresh, unique batch identifier."""
    return uuid.uuid4().hex


def ingest_tickets(
    engine: Engine,
    path: Source,
    mapping: ColumnMapping,
    priority_levels: Sequence[str],
    chunk_rows: int = 20_000,
    gx_root: Path | None = None,
    categories: Sequence[str] | None = None,
) -> IngestSummary:
    """Ingest one ticket source into the store, in a single transaction.

    With ``gx_root``, the whole batch is also checked with Great Expectations
    against the store's history; a batch that fails is stored (nothing is
    lost) but marked ``blocked`` and left out of training until accepted.

    Raises:
        InputError: the source cannot be read or mapped, or its labels cannot
            train a classifier (a single class); nothing is written then.
    """
    with engine.begin() as conn:
        return ingest_tickets_into(
            conn, path, mapping, priority_levels, chunk_rows, gx_root=gx_root, categories=categories
        )


def ingest_tickets_into(
    conn: Connection,
    path: Source,
    mapping: ColumnMapping,
    priority_levels: Sequence[str],
    chunk_rows: int = 20_000,
    require_two_classes: bool = True,
    gx_root: Path | None = None,
    categories: Sequence[str] | None = None,
) -> IngestSummary:
    """Ingest tickets inside the caller's transaction (see :func:`ingest_tickets`).

    ``require_two_classes=False`` is for re-ingesting a few released rows,
    which may well share one category.
    """
    summary = IngestSummary(batch_id=new_batch_id(), kind="tickets", source=sources.describe(path))
    schema = contracts.load_schema("tickets", priority_levels, categories=categories)
    baseline = batch_baseline(conn) if gx_root is not None else None
    profiles: list[pd.DataFrame] = []
    # Parsing and validating the next chunk overlaps with writing this one.
    for chunk in read_ahead(
        prepared_ticket_chunks(path, mapping, schema, summary.source, chunk_rows)
    ):
        profiles.append(_store_ticket_chunk(conn, chunk, summary))
    _require_rows(summary, path)
    if require_two_classes:
        _require_two_classes(summary, mapping, path)
    report: dict[str, Any] = {"mapping": mapping_to_dict(mapping)}
    if baseline is not None and gx_root is not None:
        report["expectations"] = _check_batch(profiles, baseline, gx_root, summary, mapping.labeled)
    _finish_batch(conn, summary, report)
    return summary


def batch_baseline(conn: Connection) -> expectations.Baseline:
    """What a new ticket batch is compared with: the store as it was before it."""
    shares = store.category_shares(conn)
    return expectations.Baseline(
        recent_volumes=tuple(store.recent_batch_volumes(conn, "tickets")),
        label_distribution=shares,
        known_categories=tuple(sorted(shares)),
        body_length_mean=store.mean_body_length(conn),
    )


def _check_batch(
    profiles: list[pd.DataFrame],
    baseline: expectations.Baseline,
    gx_root: Path,
    summary: IngestSummary,
    labeled: bool,
) -> dict[str, Any]:
    batch = pd.concat(profiles, ignore_index=True)
    report = expectations.validate_batch(
        batch, baseline, gx_root, summary.batch_id, labeled=labeled
    )
    summary.status = store.ACCEPTED if report.passed else store.BLOCKED
    summary.batch_failures = list(report.failures)
    summary.data_docs = None if report.docs_path is None else str(report.docs_path)
    return {
        "passed": report.passed,
        "failures": list(report.failures),
        "statistics": report.statistics,
        "data_docs": summary.data_docs,
    }


def mapping_to_dict(mapping: ColumnMapping) -> dict[str, Any]:
    """JSON-ready mapping, kept with the batch so quarantined rows can be re-ingested alike."""
    out = asdict(mapping)
    out["explicit"] = sorted(mapping.explicit)
    out["text_columns"] = list(mapping.text_columns)
    return out


def mapping_from_dict(data: dict[str, Any]) -> ColumnMapping:
    """Inverse of :func:`mapping_to_dict`."""
    return ColumnMapping(
        **{
            **data,
            "text_columns": tuple(data["text_columns"]),
            "explicit": frozenset(data["explicit"]),
        }
    )


@dataclass(frozen=True)
class PreparedChunk:
    """One chunk parsed, mapped, validated and hashed: everything short of the store."""

    raw: pd.DataFrame
    offset: int
    mapping: ColumnMapping
    valid: pd.DataFrame
    rejected: list[dict[str, Any]]
    profile: pd.DataFrame


def prepare_ticket_chunk(
    raw: pd.DataFrame, mapping: ColumnMapping, schema: pa.DataFrameSchema, source: str, offset: int
) -> PreparedChunk:
    """The store-independent half of ingesting a chunk (pure, so it can run ahead)."""
    resolved = resolve_mapping(list(raw.columns), mapping, source)
    canonical = map_tickets(raw, resolved)
    valid, rejected = split_valid(raw, canonical, schema, offset)
    valid = valid.assign(
        content_hash=_content_hash(
            valid, [c for c in store.TICKET_FIELDS[1:] if c in valid.columns]
        )
    )
    return PreparedChunk(raw, offset, resolved, valid, rejected, expectations.profile(canonical))


def prepared_ticket_chunks(
    path: Source, mapping: ColumnMapping, schema: pa.DataFrameSchema, source: str, chunk_rows: int
) -> Iterator[PreparedChunk]:
    """Read ``path`` chunk by chunk and prepare each (see :func:`prepare_ticket_chunk`)."""
    offset = 0
    for raw in read_source(path, chunk_rows):
        yield prepare_ticket_chunk(raw, mapping, schema, source, offset)
        offset += len(raw)


_END = object()


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """Yield from ``items`` while a worker thread already produces the next one.

    Hand-written because neither the standard library nor pandas offers a
    bounded prefetching iterator. One item ahead keeps memory at two chunks;
    the overlap pays because SQLite releases the GIL while it writes, as do
    pandas' and Arrow's string kernels. Errors surface in the caller.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-read-ahead") as pool:
        pending = pool.submit(next, items, _END)
        while (item := pending.result()) is not _END:
            pending = pool.submit(next, items, _END)
            yield item


def _store_ticket_chunk(
    conn: Connection, chunk: PreparedChunk, summary: IngestSummary
) -> pd.DataFrame:
    """Store one prepared chunk; returns its text-free profile for batch validation."""
    raw, offset, resolved = chunk.raw, chunk.offset, chunk.mapping
    summary.read += len(raw)
    rejected = list(chunk.rejected)
    valid = chunk.valid
    stored = store.stored_versions(conn, valid["ticket_id"].unique().tolist())
    # Ids an earlier chunk of this batch stored: their version is the batch's;
    # every row here either repeats it exactly (skipped) or conflicts with it.
    in_batch = valid["ticket_id"].map(
        {k: v[0] for k, v in stored.items() if v[1] == summary.batch_id}
    )
    seen = in_batch.notna()
    repeats = int((seen & (in_batch == valid["content_hash"])).sum())
    conflicts = valid[seen & (in_batch != valid["content_hash"])]
    first, later_conflicts, later_repeats = dedupe_chunk(valid[~seen], "ticket_id")
    conflicts, repeats = pd.concat([conflicts, later_conflicts]), repeats + later_repeats
    rejected += [
        rejection(raw, i, offset, ["ticket_id: duplicate id in this batch with different content"])
        for i in conflicts.index
    ]
    known = first["ticket_id"].map({k: v[0] for k, v in stored.items()})
    unchanged = known.notna() & (known == first["content_hash"])
    # An unlabeled re-export of a stored ticket never overwrites its labels.
    changed = known.notna() & ~unchanged & resolved.labeled
    now = pd.Timestamp.now(tz="UTC")
    rows = first.assign(batch_id=summary.batch_id, ingested_at=now)
    if not resolved.labeled:
        rows = rows.drop(columns=[c for c in ("category", "priority") if c in rows.columns])
    summary.inserted += store.insert_rows(
        conn, store.tickets, rows[known.isna()], ("created_at", "ingested_at")
    )
    summary.updated += store.update_tickets(
        conn, rows.loc[changed, updated_columns(list(raw.columns), resolved)]
    )
    summary.stored = summary.inserted + summary.updated
    summary.skipped += repeats + int((known.notna() & ~changed).sum())
    _quarantine(conn, summary, rejected)
    if resolved.labeled:
        summary.categories.update(first["category"].dropna().unique().tolist())
    return chunk.profile


def _require_rows(summary: IngestSummary, path: Source) -> None:
    if summary.read == 0:
        raise InputError(f"input file has a header but no rows: {path}")


def _require_two_classes(summary: IngestSummary, mapping: ColumnMapping, path: Source) -> None:
    if mapping.labeled and len(summary.categories) == 1:
        only = next(iter(summary.categories))
        raise InputError(
            f"category column '{mapping.category_column}' in {path} has a single class ('{only}'); "
            "a classifier needs at least two"
        )


def _quarantine(conn: Connection, summary: IngestSummary, rejected: list[dict[str, Any]]) -> None:
    summary.quarantined += store.quarantine_rows(conn, summary.batch_id, summary.kind, rejected)
    summary.rejected_rows.extend(r["row_number"] for r in rejected)


def _finish_batch(
    conn: Connection, summary: IngestSummary, report: dict[str, Any] | None = None
) -> None:
    if summary.read != summary.stored + summary.quarantined + summary.skipped:
        raise RuntimeError(
            f"ingest counts do not add up: {summary}"
        )  # never store an unbalanced batch
    store.record_batch(
        conn,
        {
            "batch_id": summary.batch_id,
            "kind": summary.kind,
            "source": summary.source,
            "rows_read": summary.read,
            "rows_stored": summary.stored,
            "rows_quarantined": summary.quarantined,
            "rows_skipped": summary.skipped,
            "status": summary.status,
            "report": json.dumps(report or {}, default=str),
        },
    )


LINKED: dict[str, tuple[tuple[str, ...], Any, str, str]] = {
    "feedback": (FEEDBACK_COLUMNS, store.feedback, "feedback_id", "corrected_at"),
    "surveys": (SURVEY_COLUMNS, store.surveys, "survey_id", "answered_at"),
}


def ingest_linked_into(
    conn: Connection,
    path: Source,
    kind: str,
    priority_levels: Sequence[str],
    chunk_rows: int = 20_000,
) -> IngestSummary:
    """Ingest feedback or surveys inside the caller's transaction."""
    schema = contracts.load_schema(kind, priority_levels)
    summary = IngestSummary(batch_id=new_batch_id(), kind=kind, source=sources.describe(path))
    for raw in read_source(path, chunk_rows):
        _ingest_linked_chunk(conn, raw, schema, summary)
    _require_rows(summary, path)
    _finish_batch(conn, summary)
    return summary


def _ingest_linked_chunk(
    conn: Connection, raw: pd.DataFrame, schema: pa.DataFrameSchema, summary: IngestSummary
) -> None:
    columns, table, key, time_column = LINKED[summary.kind]
    _require_columns(raw, columns, summary.source, optional=("reason", "comment", "agent_id"))
    offset = summary.read
    summary.read += len(raw)
    valid, rejected = split_valid(raw, _map_linked(raw, columns), schema, offset)
    valid, rejected = _require_known_tickets(conn, raw, valid, rejected, offset)
    if summary.kind == "feedback":
        valid, rejected = _require_a_correction(raw, valid, rejected, offset)
    valid = valid.assign(content_hash=_content_hash(valid, columns))
    first, _, repeats = dedupe_chunk(valid.assign(**{key: valid["content_hash"].str[:40]}), key)
    known = store.existing_ids(conn, table, key, first[key].tolist())
    fresh = first[~first[key].isin(known)].drop(columns=["content_hash"])
    fresh = fresh.assign(batch_id=summary.batch_id, ingested_at=pd.Timestamp.now(tz="UTC"))
    summary.stored += store.insert_rows(conn, table, fresh, (time_column, "ingested_at"))
    summary.skipped += repeats + len(first) - len(fresh)
    _quarantine(conn, summary, rejected)


def _map_linked(raw: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame(
        {c: _clean_text(raw[c]) if c in raw.columns else None for c in columns}, index=raw.index
    )
    if "corrected_priority" in out.columns:
        # Same case rule as ticket priorities, so "High" is on the scale.
        out["corrected_priority"] = out["corrected_priority"].str.lower()
    return out


def _require_columns(
    raw: pd.DataFrame, columns: Sequence[str], source: str, optional: Sequence[str]
) -> None:
    absent = [c for c in columns if c not in raw.columns and c not in optional]
    if absent:
        raise InputError(
            f"column(s) {', '.join(absent)} not found in {source}; its columns are: {', '.join(raw.columns)}"
        )


def _require_known_tickets(
    conn: Connection,
    raw: pd.DataFrame,
    valid: pd.DataFrame,
    rejected: list[dict[str, Any]],
    offset: int,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    known = store.existing_ids(
        conn, store.tickets, "ticket_id", valid["ticket_id"].unique().tolist()
    )
    unknown = ~valid["ticket_id"].isin(known)
    rejected = rejected + [
        rejection(raw, i, offset, [f"ticket_id: unknown ticket '{valid.at[i, 'ticket_id']}'"])
        for i in valid.index[unknown]
    ]
    return valid[~unknown], rejected


def _require_a_correction(
    raw: pd.DataFrame, valid: pd.DataFrame, rejected: list[dict[str, Any]], offset: int
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    empty = valid["corrected_category"].isna() & valid["corrected_priority"].isna()
    rejected = rejected + [
        rejection(raw, i, offset, ["corrected_category/corrected_priority: neither is set"])
        for i in valid.index[empty]
    ]
    return valid[~empty], rejected


def ingest_feedback(
    engine: Engine, path: Source, priority_levels: Sequence[str], chunk_rows: int = 20_000
) -> IngestSummary:
    """Ingest agent corrections in one transaction; rows for unknown tickets are quarantined."""
    with engine.begin() as conn:
        return ingest_linked_into(conn, path, "feedback", priority_levels, chunk_rows)


def ingest_surveys(
    engine: Engine, path: Source, priority_levels: Sequence[str], chunk_rows: int = 20_000
) -> IngestSummary:
    """Ingest CSAT surveys in one transaction; rows for unknown tickets are quarantined."""
    with engine.begin() as conn:
        return ingest_linked_into(conn, path, "surveys", priority_levels, chunk_rows)


def preflight_tickets(path: Source, mapping: ColumnMapping, chunk_rows: int = 20_000) -> None:
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
    raise InputError(
        f"category column '{mapping.category_column}' in {path} has a single class ('{classes.pop()}'); "
        "a classifier needs at least two"
    )


def preflight_linked(path: Source, kind: str, chunk_rows: int = 20_000) -> None:
    """Fail fast on a feedback or survey file that is missing, empty or lacks columns."""
    columns = FEEDBACK_COLUMNS if kind == "feedback" else SURVEY_COLUMNS
    for raw in read_source(path, chunk_rows):
        _require_columns(raw, columns, str(path), optional=("reason", "comment", "agent_id"))
        if len(raw):
            return
    raise InputError(f"input file has a header but no rows: {path}")


def ingest_configured(
    engine: Engine,
    settings: Settings,
    kind: str,
    source: Source,
    mapping: ColumnMapping | None = None,
) -> IngestSummary:
    """Ingest one source of ``kind`` (tickets, feedback or surveys) with the workspace's settings.

    The one place the flows and the inbox turn settings into ingest arguments.
    """
    if kind == "tickets":
        return ingest_tickets(
            engine,
            source,
            mapping or ColumnMapping(),
            settings.priority_levels,
            settings.ingest_chunk_rows,
            gx_root=settings.gx_root,
            categories=settings.categories,
        )
    reader = ingest_feedback if kind == "feedback" else ingest_surveys
    return reader(engine, source, settings.priority_levels, settings.ingest_chunk_rows)
