"""Ingestion: sources, the read -> map -> validate chain, contracts, expectations, quarantine.

Where to look: a new data source is one class in :mod:`.sources`; column
mappings are in :mod:`.mapping`; the chain every reader of a source uses is
:mod:`.chain`; writing a batch to the store is :mod:`.batches`; whole-file
checks before a flow starts are :mod:`.preflight`.
"""

from __future__ import annotations

from triage_ml.ingest.batches import (
    LINKED,
    IngestOptions,
    IngestSummary,
    PreparedChunk,
    batch_baseline,
    dedupe_chunk,
    ingest_configured,
    ingest_feedback,
    ingest_linked_into,
    ingest_surveys,
    ingest_tickets,
    ingest_tickets_into,
    new_batch_id,
    prepare_ticket_chunk,
    prepared_ticket_chunks,
)
from triage_ml.ingest.chain import (
    CheckedChunk,
    check_chunk,
    checked_chunks,
    read_ahead,
    rejection,
    split_valid,
    undecodable_rows,
)
from triage_ml.ingest.mapping import (
    FEEDBACK_COLUMNS,
    OPTIONAL_TICKET_COLUMNS,
    SURVEY_COLUMNS,
    ColumnMapping,
    LinkedMapping,
    map_tickets,
    mapping_from_dict,
    mapping_to_dict,
    resolve_mapping,
    updated_columns,
)
from triage_ml.ingest.preflight import preflight_linked, preflight_tickets
from triage_ml.ingest.sources import (
    CsvFile,
    ParquetFile,
    Source,
    SqlSource,
    as_source,
    file_source,
    read_source,
)

__all__ = [
    "FEEDBACK_COLUMNS",
    "LINKED",
    "OPTIONAL_TICKET_COLUMNS",
    "SURVEY_COLUMNS",
    "CheckedChunk",
    "ColumnMapping",
    "CsvFile",
    "IngestOptions",
    "IngestSummary",
    "LinkedMapping",
    "ParquetFile",
    "PreparedChunk",
    "Source",
    "SqlSource",
    "as_source",
    "batch_baseline",
    "check_chunk",
    "checked_chunks",
    "dedupe_chunk",
    "file_source",
    "ingest_configured",
    "ingest_feedback",
    "ingest_linked_into",
    "ingest_surveys",
    "ingest_tickets",
    "ingest_tickets_into",
    "map_tickets",
    "mapping_from_dict",
    "mapping_to_dict",
    "new_batch_id",
    "preflight_linked",
    "preflight_tickets",
    "prepare_ticket_chunk",
    "prepared_ticket_chunks",
    "read_ahead",
    "read_source",
    "rejection",
    "resolve_mapping",
    "split_valid",
    "undecodable_rows",
    "updated_columns",
]
