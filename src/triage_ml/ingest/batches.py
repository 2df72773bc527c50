"""Writing a batch: checked chunks upserted into the store, bad rows quarantined, counts recorded.

Every row read ends up stored, quarantined with its reasons, or skipped as an
exact duplicate, and ``read == stored + quarantined + skipped`` holds for each
batch. A batch is written in one transaction: an error anywhere leaves the
store exactly as it was before.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
from sqlalchemy.engine import Connection, Engine

from triage_ml import store
from triage_ml.errors import InputError
from triage_ml.ingest import contracts, expectations, provenance
from triage_ml.ingest.chain import CheckedChunk, checked_chunks, read_ahead, rejection
from triage_ml.ingest.mapping import (
    FEEDBACK_COLUMNS,
    SURVEY_COLUMNS,
    ColumnMapping,
    LinkedMapping,
    content_hash,
    mapping_to_dict,
    updated_columns,
)
from triage_ml.ingest.sources import Source, as_source
from triage_ml.settings import Settings
from triage_ml.store.queries import stored_head_labels

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestOptions:
    """What ingestion takes from the settings.

    Attributes:
        priority_levels: the configured priority scale.
        chunk_rows: rows read, validated and written at a time.
        categories: the allowed categories, when configured.
        gx_root: where Great Expectations keeps its Data Docs; ``None`` skips
            the whole-batch checks.
    """

    priority_levels: tuple[str, ...]
    chunk_rows: int = 20_000
    categories: tuple[str, ...] | None = None
    gx_root: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestOptions:
        """The options of a workspace: its scale, chunk size, categories and GX folder."""
        return cls(
            priority_levels=tuple(settings.priority_levels),
            chunk_rows=settings.ingest_chunk_rows,
            categories=settings.categories,
            gx_root=settings.gx_root,
        )


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

    def headline(self) -> str:
        """The batch in one line: its counts and verdict."""
        # Only tickets are upserted; feedback and surveys are only ever inserted.
        upserts = (
            f" ({self.inserted} new, {self.updated} updated)" if self.kind == "tickets" else ""
        )
        return (
            f"{self.kind} batch {self.batch_id} from {self.source}: read {self.read}, "
            f"stored {self.stored}{upserts}, quarantined {self.quarantined}, "
            f"skipped {self.skipped}; {self.status}"
        )


def new_batch_id() -> str:
    """A fresh, unique batch identifier."""
    return uuid.uuid4().hex


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


# ---- tickets ------------------------------------------------------------------------


def ingest_tickets(
    engine: Engine, source: Source | Path, mapping: ColumnMapping, options: IngestOptions
) -> IngestSummary:
    """Ingest one ticket source into the store, in a single transaction.

    With ``options.gx_root``, the whole batch is also checked with Great
    Expectations against the store's history; a batch that fails is stored
    (nothing is lost) but marked ``blocked`` and left out of training until accepted.

    Raises:
        InputError: the source cannot be read or mapped, or its labels cannot
            train a classifier (a single class); nothing is written then.
    """
    with engine.begin() as conn:
        return ingest_tickets_into(conn, source, mapping, options)


def ingest_tickets_into(
    conn: Connection,
    source: Source | Path,
    mapping: ColumnMapping,
    options: IngestOptions,
    require_two_classes: bool = True,
) -> IngestSummary:
    """Ingest tickets inside the caller's transaction (see :func:`ingest_tickets`).

    ``require_two_classes=False`` is for re-ingesting a few released rows,
    which may well share one category.
    """
    source = as_source(source)
    summary = IngestSummary(batch_id=new_batch_id(), kind="tickets", source=source.describe())
    schema = contracts.load_schema(
        "tickets", options.priority_levels, categories=options.categories
    )
    baseline = batch_baseline(conn) if options.gx_root is not None else None
    chunks = prepared_ticket_chunks(source, mapping, schema, summary.source, options.chunk_rows)
    # Parsing and validating the next chunk overlaps with writing this one.
    profiles = [store_ticket_chunk(conn, chunk, summary) for chunk in read_ahead(chunks)]
    _require_rows(summary, source)
    if require_two_classes:
        _require_two_classes(summary, mapping, source)
    report: dict[str, Any] = {"mapping": mapping_to_dict(mapping)}
    if baseline is not None and options.gx_root is not None:
        report["expectations"] = _check_batch(
            profiles, baseline, options.gx_root, summary, mapping.labeled
        )
    finish_batch(conn, summary, report)
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


@dataclass(frozen=True)
class PreparedChunk:
    """One chunk parsed, mapped, validated and hashed: everything short of the store."""

    raw: pd.DataFrame
    offset: int
    mapping: ColumnMapping
    valid: pd.DataFrame
    rejected: list[dict[str, Any]]
    profile: pd.DataFrame


def prepare_ticket_chunk(chunk: CheckedChunk) -> PreparedChunk:
    """Hash the valid rows and profile the chunk (pure, so it can run ahead of the writes)."""
    valid = chunk.valid
    hashed = valid.assign(
        content_hash=content_hash(valid, [c for c in store.TICKET_FIELDS[1:] if c in valid.columns])
    )
    profile = expectations.profile(chunk.canonical)
    return PreparedChunk(chunk.raw, chunk.offset, chunk.mapping, hashed, chunk.rejected, profile)


def prepared_ticket_chunks(
    source: Source, mapping: ColumnMapping, schema: pa.DataFrameSchema, name: str, chunk_rows: int
) -> Iterator[PreparedChunk]:
    """The chain's checked chunks of ``source``, each prepared by :func:`prepare_ticket_chunk`."""
    for chunk in checked_chunks(source, mapping, schema, chunk_rows, name):
        yield prepare_ticket_chunk(chunk)


def store_ticket_chunk(
    conn: Connection, chunk: PreparedChunk, summary: IngestSummary
) -> pd.DataFrame:
    """Store one prepared chunk; returns its text-free profile for batch validation."""
    raw, offset, resolved = chunk.raw, chunk.offset, chunk.mapping
    summary.read += len(raw)
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
    rejected = chunk.rejected + [
        rejection(raw, i, offset, ["ticket_id: duplicate id in this batch with different content"])
        for i in conflicts.index
    ]
    known = first["ticket_id"].map({k: v[0] for k, v in stored.items()})
    unchanged = known.notna() & (known == first["content_hash"])
    unchanged &= ~relabeled(conn, first, unchanged, resolved)
    # An unlabeled re-export of a stored ticket never overwrites its labels.
    changed = known.notna() & ~unchanged & resolved.labeled
    _write_tickets(conn, first, known, changed, raw, resolved, summary)
    summary.skipped += repeats + int((known.notna() & ~changed).sum())
    _quarantine(conn, summary, rejected)
    if resolved.labeled:
        summary.categories.update(first["category"].dropna().unique().tolist())
    return chunk.profile


def relabeled(
    conn: Connection, rows: pd.DataFrame, unchanged: pd.Series, mapping: ColumnMapping
) -> pd.Series:
    """Stored tickets of unchanged content whose head labels in this file differ from the store's.

    Head labels are not part of the content hash (adding them keeps every hash and id): a
    re-ingest that only adds or changes them is found by comparing the labels themselves.
    """
    heads = list(mapping.head_columns())
    if not heads or not unchanged.any():
        return pd.Series(False, index=rows.index)
    ids = rows.loc[unchanged, "ticket_id"]
    stored = stored_head_labels(conn, ids.tolist(), tuple(heads)).reindex(ids.to_numpy())
    given = rows.loc[unchanged, heads]
    before = stored.set_axis(given.index)
    differs = (_comparable(given) != _comparable(before)).any(axis=1)
    return differs.reindex(rows.index, fill_value=False)


def _comparable(labels: pd.DataFrame) -> pd.DataFrame:
    # NUL for missing: no stored label holds one (control characters are quarantined),
    # and missing must equal missing.
    return labels.astype("string").fillna("\x00")


def _write_tickets(
    conn: Connection,
    first: pd.DataFrame,
    known: pd.Series,
    changed: pd.Series,
    raw: pd.DataFrame,
    resolved: ColumnMapping,
    summary: IngestSummary,
) -> None:
    """Insert the new tickets and update the changed ones, with only the columns the file has."""
    rows = first.assign(batch_id=summary.batch_id, ingested_at=pd.Timestamp.now(tz="UTC"))
    if not resolved.labeled:
        rows = rows.drop(columns=[c for c in ("category", "priority") if c in rows.columns])
    summary.inserted += store.insert_rows(
        conn, store.tickets, rows[known.isna()], ("created_at", "ingested_at")
    )
    summary.updated += store.update_tickets(
        conn, rows.loc[changed, updated_columns(list(raw.columns), resolved)]
    )
    summary.stored = summary.inserted + summary.updated


def _require_rows(summary: IngestSummary, source: Source) -> None:
    if summary.read == 0:
        raise InputError(f"input file has a header but no rows: {source}")


def _require_two_classes(summary: IngestSummary, mapping: ColumnMapping, source: Source) -> None:
    if mapping.labeled and len(summary.categories) == 1:
        only = next(iter(summary.categories))
        raise InputError(
            f"category column '{mapping.category_column}' in {source} has a single class "
            f"('{only}'); a classifier needs at least two"
        )


def _quarantine(conn: Connection, summary: IngestSummary, rejected: list[dict[str, Any]]) -> None:
    summary.quarantined += store.quarantine_rows(conn, summary.batch_id, summary.kind, rejected)
    summary.rejected_rows.extend(r["row_number"] for r in rejected)


def finish_batch(
    conn: Connection, summary: IngestSummary, report: dict[str, Any] | None = None
) -> None:
    """Record ``summary``'s batch row once its chunks are stored; the counts must add up."""
    if summary.read != summary.stored + summary.quarantined + summary.skipped:
        # Never store an unbalanced batch.
        raise RuntimeError(f"ingest counts do not add up: {summary}")
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
    logger.info("ingested %s", summary.headline())


# ---- feedback and surveys -----------------------------------------------------------

LINKED: dict[str, tuple[tuple[str, ...], Any, str, str]] = {
    "feedback": (FEEDBACK_COLUMNS, store.feedback, "feedback_id", "corrected_at"),
    "surveys": (SURVEY_COLUMNS, store.surveys, "survey_id", "answered_at"),
}


def ingest_linked_into(
    conn: Connection, source: Source | Path, kind: str, options: IngestOptions
) -> IngestSummary:
    """Ingest feedback or surveys inside the caller's transaction."""
    source = as_source(source)
    schema = contracts.load_schema(kind, options.priority_levels)
    summary = IngestSummary(batch_id=new_batch_id(), kind=kind, source=source.describe())
    mapping = LinkedMapping.of(kind)
    for chunk in checked_chunks(source, mapping, schema, options.chunk_rows, summary.source):
        store_linked_chunk(conn, chunk, summary)
    _require_rows(summary, source)
    finish_batch(conn, summary)
    return summary


def store_linked_chunk(conn: Connection, chunk: CheckedChunk, summary: IngestSummary) -> None:
    """Store one checked feedback or survey chunk in ``summary``'s batch (unknown tickets and
    model versions quarantined, label sources derived)."""
    columns, table, key, time_column = LINKED[summary.kind]
    raw, offset = chunk.raw, chunk.offset
    summary.read += len(raw)
    valid, rejected = _require_known_tickets(conn, raw, chunk.valid, chunk.rejected, offset)
    if summary.kind == "feedback":
        valid, rejected = _require_a_correction(raw, valid, rejected, offset)
        valid, rejected = provenance.check_provenance(conn, raw, valid, rejected, offset)
    valid = valid.assign(content_hash=content_hash(valid, columns))
    first, _, repeats = dedupe_chunk(valid.assign(**{key: valid["content_hash"].str[:40]}), key)
    known = store.existing_ids(conn, table, key, first[key].tolist())
    fresh = first[~first[key].isin(known)].drop(columns=["content_hash"])
    fresh = fresh.assign(batch_id=summary.batch_id, ingested_at=pd.Timestamp.now(tz="UTC"))
    summary.stored += store.insert_rows(conn, table, fresh, (time_column, "ingested_at"))
    summary.skipped += repeats + len(first) - len(fresh)
    _quarantine(conn, summary, rejected)


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


def ingest_feedback(engine: Engine, source: Source | Path, options: IngestOptions) -> IngestSummary:
    """Ingest agent corrections in one transaction; rows for unknown tickets are quarantined."""
    with engine.begin() as conn:
        return ingest_linked_into(conn, source, "feedback", options)


def ingest_surveys(engine: Engine, source: Source | Path, options: IngestOptions) -> IngestSummary:
    """Ingest CSAT surveys in one transaction; rows for unknown tickets are quarantined."""
    with engine.begin() as conn:
        return ingest_linked_into(conn, source, "surveys", options)


def ingest_configured(
    engine: Engine,
    settings: Settings,
    kind: str,
    source: Source | Path,
    mapping: ColumnMapping | None = None,
) -> IngestSummary:
    """Ingest one source of ``kind`` (tickets, feedback or surveys) with the workspace's settings.

    The one place the flows and the inbox turn settings into ingest arguments.
    """
    options = IngestOptions.from_settings(settings)
    if kind == "tickets":
        return ingest_tickets(engine, source, mapping or ColumnMapping(), options)
    reader = ingest_feedback if kind == "feedback" else ingest_surveys
    return reader(engine, source, options)
