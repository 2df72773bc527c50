"""The one read -> map -> validate chain every consumer of a source goes through.

Ingestion, scoring a file and evaluating on a file all read a source chunk by
chunk, resolve and apply a column mapping, and split the rows on a contract
into valid ones and quarantine records (row number, raw row, reasons).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
import pandera.pandas as pa

from triage_ml.errors import InputError
from triage_ml.ingest import contracts
from triage_ml.ingest.mapping import Mapping
from triage_ml.ingest.sources import Source

T = TypeVar("T")
# C0 and C1 control characters and DEL, but not tab, line feed or carriage
# return: written as RE2 escapes for Arrow's regex kernel.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
_CONTROL_NAMES = {0x00: "NUL", 0x1B: "ESC", 0x7F: "DEL"}


@dataclass(frozen=True)
class CheckedChunk:
    """One chunk read, mapped and validated.

    Attributes:
        raw: the chunk as read (raw strings).
        offset: rows of the source before this chunk.
        mapping: the mapping resolved against the chunk's header.
        canonical: every row in canonical columns.
        valid: the rows that satisfy the contract, values parsed.
        rejected: a quarantine record per row that does not (see :func:`rejection`).
    """

    raw: pd.DataFrame
    offset: int
    mapping: Any
    canonical: pd.DataFrame
    valid: pd.DataFrame
    rejected: list[dict[str, Any]]


def checked_chunks(
    source: Source,
    mapping: Mapping,
    schema: pa.DataFrameSchema,
    chunk_rows: int,
    name: str | None = None,
) -> Iterator[CheckedChunk]:
    """Read ``source`` chunk by chunk; map and validate each (see :func:`check_chunk`).

    Args:
        source: where the rows come from.
        mapping: how its columns become canonical ones.
        schema: the contract rows must satisfy.
        chunk_rows: rows per chunk.
        name: how error messages name the source; ``str(source)`` by default.

    Raises:
        InputError: the source cannot be read, a mapped column is missing, or a
            failure concerns the whole chunk rather than rows.
    """
    offset = 0
    for raw in source.chunks(chunk_rows):
        yield check_chunk(raw, mapping, schema, name or str(source), offset)
        offset += len(raw)


def check_chunk(
    raw: pd.DataFrame, mapping: Mapping, schema: pa.DataFrameSchema, name: str, offset: int
) -> CheckedChunk:
    """Resolve ``mapping`` on the chunk's header, apply it, and split the rows on ``schema``."""
    resolved = mapping.resolve(list(raw.columns), name)
    canonical = resolved.apply(raw)
    valid, rejected = split_valid(raw, canonical, schema, offset)
    return CheckedChunk(raw, offset, resolved, canonical, valid, rejected)


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


def control_character_rows(raw: pd.DataFrame) -> dict[Any, list[str]]:
    """Rows holding a control character other than tab, line feed or carriage return.

    Such text is a broken export or a crafted value: PostgreSQL cannot store a
    NUL at all, and terminal escapes would reach logs and reports. The reason
    names the character, never the text around it.
    """
    reasons: dict[Any, list[str]] = {}
    for column in raw.columns:
        text = raw[column].astype("string")
        hits = text.str.contains(_CONTROL, regex=True).fillna(False).astype(bool)
        for index in raw.index[hits.to_numpy()]:
            reasons.setdefault(index, []).append(
                f"{column}: control character {_control_name(str(text[index]))}"
            )
    return reasons


def _control_name(value: str) -> str:
    match = re.search(_CONTROL, value)
    code = ord(match.group()) if match else 0
    name = _CONTROL_NAMES.get(code)
    return f"U+{code:04X}" + (f" ({name})" if name else "")


def _merged(*found: dict[Any, list[str]]) -> dict[Any, list[str]]:
    out: dict[Any, list[str]] = {}
    for reasons in found:
        for index, items in reasons.items():
            out.setdefault(index, []).extend(items)
    return out


def split_valid(
    raw: pd.DataFrame, canonical: pd.DataFrame, schema: pa.DataFrameSchema, offset: int
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Validate canonical rows; return the valid frame and quarantine records.

    Raises:
        InputError: a failure that belongs to no row (a missing column, say).
    """
    unreadable = _merged(undecodable_rows(raw), control_character_rows(raw))
    try:
        verdict = contracts.validate_rows(canonical.drop(index=list(unreadable)), schema)
    except pa.errors.SchemaErrors as errors:
        first = errors.failure_cases.iloc[0]
        raise InputError(
            f"batch does not satisfy contract '{schema.name}': {first['column']} {first['check']}"
        ) from errors
    rejected = [
        rejection(raw, i, offset, reasons)
        for i, reasons in {**unreadable, **verdict.rejected}.items()
    ]
    return verdict.valid, rejected


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
