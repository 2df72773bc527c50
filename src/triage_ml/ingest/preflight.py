"""Checks of a whole source before any flow starts, so a bad file fails in a second, not a run."""

from __future__ import annotations

from pathlib import Path

from triage_ml.errors import InputError
from triage_ml.ingest.mapping import ColumnMapping, LinkedMapping, clean_text
from triage_ml.ingest.sources import Source, as_source


def preflight_tickets(
    source: Source | Path, mapping: ColumnMapping, chunk_rows: int = 20_000
) -> None:
    """Fail fast, before any flow starts, on problems that concern the whole file.

    Reads only until the file is known to have rows and (when labeled) two
    categories, so a good file costs one chunk.

    Raises:
        InputError: missing, empty or unreadable file, a missing column, or a
            category column with fewer than two classes.
    """
    source = as_source(source)
    rows, classes = 0, set()
    for raw in source.chunks(chunk_rows):
        resolved = mapping.resolve(list(raw.columns), str(source))
        rows += len(raw)
        if resolved.labeled:
            classes.update(clean_text(raw[resolved.category_column]).dropna().unique().tolist())
        # pandas yields one empty chunk for a header-only file.
        if rows and (not resolved.labeled or len(classes) > 1):
            return
    if rows == 0:
        raise InputError(f"input file has a header but no rows: {source}")
    if not classes:
        raise InputError(f"category column '{mapping.category_column}' in {source} is empty")
    raise InputError(
        f"category column '{mapping.category_column}' in {source} has a single class "
        f"('{classes.pop()}'); a classifier needs at least two"
    )


def preflight_linked(source: Source | Path, kind: str, chunk_rows: int = 20_000) -> None:
    """Fail fast on a feedback or survey file that is missing, empty or lacks columns."""
    source = as_source(source)
    mapping = LinkedMapping.of(kind)
    for raw in source.chunks(chunk_rows):
        mapping.resolve(list(raw.columns), str(source))
        if len(raw):
            return
    raise InputError(f"input file has a header but no rows: {source}")
