"""Data contracts: pandera schemas loaded from ``data_contracts/``.

The YAML files are pandera's own schema format, so a user edits them without
touching Python. What depends on configuration (the priority scale, "now")
is added here at load time.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa

from triage_ml.store.tables import LABEL_SOURCES

CONTRACTS_DIR = Path(__file__).resolve().parents[3] / "data_contracts"
_FUTURE_SLACK = pd.Timedelta(minutes=5)
_NS_MIN = pd.Timestamp.min.tz_localize("UTC")
_NS_MAX = pd.Timestamp.max.tz_localize("UTC")


@dataclass(frozen=True)
class RowVerdict:
    """Rows that passed a contract and rows that failed it, with reasons."""

    valid: pd.DataFrame
    rejected: dict[Any, list[str]]


def contracts_dir() -> Path:
    """Folder of the contract files (the repository's ``data_contracts/``)."""
    return CONTRACTS_DIR


@functools.lru_cache(maxsize=16)
def _parsed(path: Path, mtime_ns: int) -> pa.DataFrameSchema:
    """The contract file as pandera reads it, parsed once per version of the file.

    Parsing took most of a load (tens of milliseconds), which the events API paid every
    minute in each process; ``update_columns`` below returns a new schema, so the cached
    one is never changed.
    """
    del mtime_ns  # part of the cache key only: an edited file is read again
    return pa.DataFrameSchema.from_yaml(path)


def load_schema(
    name: str,
    priority_levels: Sequence[str],
    directory: Path | None = None,
    categories: Sequence[str] | None = None,
) -> pa.DataFrameSchema:
    """Load contract ``name`` and add the checks that come from configuration.

    Args:
        name: ``tickets``, ``feedback`` or ``surveys``.
        priority_levels: the configured priority scale.
        directory: where the YAML files live; the repository's by default.
        categories: the allowed categories, when configured; otherwise they
            come from the data and unknown ones are caught per batch by GX.
    """
    path = (directory or CONTRACTS_DIR) / f"{name}.yaml"
    schema = _parsed(path, path.stat().st_mtime_ns)
    now = pd.Timestamp.now(tz="UTC") + _FUTURE_SLACK
    updates: dict[str, dict[str, Any]] = {}
    added = {
        "priority": pa.Check.isin(
            list(priority_levels), error="priority is not on the configured scale"
        ),
        "corrected_priority": pa.Check.isin(
            list(priority_levels), error="priority is not on the configured scale"
        ),
        "created_at": pa.Check.le(now, error="timestamp lies in the future"),
        "corrected_at": pa.Check.le(now, error="timestamp lies in the future"),
        "answered_at": pa.Check.le(now, error="timestamp lies in the future"),
        # The allowed values live with the store's tables, so the reason lists them from there.
        "label_source": pa.Check.isin(
            list(LABEL_SOURCES), error=f"unknown label source, allowed: {', '.join(LABEL_SOURCES)}"
        ),
    }
    if categories:
        for column in ("category", "corrected_category"):
            added[column] = pa.Check.isin(
                list(categories), error="category is not one of the configured categories"
            )
    for column, check in added.items():
        if column in schema.columns:
            # Appended, so checks a user wrote in the YAML file still apply.
            updates[column] = {"checks": [*schema.columns[column].checks, check]}
    return schema.update_columns(updates)


def _reason(case: pd.Series) -> str:
    check = str(case["check"])
    if check.startswith(("coerce_dtype", "dtype")):
        check = f"wrong type, expected {check.split('(', 1)[1].rstrip(')')}"
    elif check == "not_nullable":
        return f"{case['column']}: missing or empty"
    value = repr(case["failure_case"])
    return f"{case['column']}: {check} (got {value[:80]})"


def validate_rows(
    frame: pd.DataFrame, schema: pa.DataFrameSchema, max_passes: int = 3
) -> RowVerdict:
    """Split ``frame`` into rows that satisfy ``schema`` and rows that do not.

    pandera's lazy validation finds every failing row and reason in one pass.
    A value that fails type coercion also makes later checks on its column
    fail without a row index, so failing rows are dropped and the rest is
    validated again (at most ``max_passes`` times). Timestamps are parsed
    first, value by value (see :func:`parse_timestamps`).

    Raises:
        pa.errors.SchemaErrors: a failure that belongs to no row (a missing
            column, say) and so concerns the whole batch.
    """
    current, rejected = parse_timestamps(frame, schema)
    for _ in range(max_passes):
        try:
            return RowVerdict(schema.validate(current, lazy=True), rejected)
        except pa.errors.SchemaErrors as errors:
            cases = errors.failure_cases
            row_cases = cases[cases["index"].notna()]
            if row_cases.empty:
                raise
            for _, case in row_cases.drop_duplicates(["index", "column", "check"]).iterrows():
                reasons = rejected.setdefault(case["index"], [])
                # A failed coercion is reported twice (coerce_dtype and dtype); say it once.
                if _reason(case) not in reasons:
                    reasons.append(_reason(case))
            current = current.drop(index=[i for i in rejected if i in current.index])
    return RowVerdict(schema.validate(current, lazy=True), rejected)


def parse_timestamps(
    frame: pd.DataFrame, schema: pa.DataFrameSchema
) -> tuple[pd.DataFrame, dict[Any, list[str]]]:
    """Parse the schema's datetime columns value by value; reject what does not parse.

    pandas infers one format from a column's first value, so a file mixing
    formats or zones (or holding one bad value) fails as a whole column, which
    pandera cannot pin on a row. Parsing each value on its own keeps the
    failure on the row that has it. Naive timestamps are read as UTC.

    Returns:
        The frame without rejected rows (datetime columns parsed), and the
        rejected rows' reasons by index.
    """
    out = frame.copy()
    rejected: dict[Any, list[str]] = {}
    for name, column in schema.columns.items():
        if name not in out.columns or not str(column.dtype).startswith("datetime64"):
            continue
        raw = out[name]
        parsed = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
        # Beyond these bounds a value cannot become the contract's datetime64[ns].
        in_range = parsed.between(_NS_MIN, _NS_MAX)
        for index in raw.index[raw.notna() & ~in_range]:
            problem = (
                "timestamp lies in the future"
                if parsed[index] > _NS_MAX
                else "not a valid timestamp"
            )
            rejected.setdefault(index, []).append(f"{name}: {problem} (got {raw[index]!r:.80})")
        out[name] = parsed.where(in_range)
    return out.drop(index=list(rejected)), rejected
