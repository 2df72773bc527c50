"""One API ticket or label checked against the ingest contracts in plain Python, when certain.

The ingest chain (pandas mapping, pandera validation, hashing, the pandas writer) costs
tens of milliseconds per call whatever the number of rows, which one API request cannot
afford. :func:`check_ticket` and :func:`check_feedback` accept a row only when every check
of the loaded contract is one they know and the row passes it; anything else (a check they
do not know, a value they would refuse, a character whose cleaning might differ from
Arrow's) returns None, and the caller runs the full chain, which stays the authority and
gives the reason. ``tests/unit/test_api_onerow.py`` fails when the two disagree.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pandera.pandas as pa

from triage_ml import store
from triage_ml.ingest.mapping import FEEDBACK_COLUMNS, LinkedMapping

_KNOWN_CHECKS = frozenset(
    {"str_length", "greater_than_or_equal_to", "less_than_or_equal_to", "isin"}
)
# What the chain refuses (control characters, undecodable bytes): left to it for the reason.
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
_ASCII_SPACE = " \t\n\r"
_NS_YEARS = range(1678, 2262)  # datetime64[ns]'s span, in whole years
# The chain's dtypes of the canonical columns that are not text.
_DTYPES = {"created_at": "datetime64[ns, UTC]", "customer_ltv": "float64"}


class _UnsureError(Exception):
    """The row needs the full chain."""


def _clean(value: str | None) -> str | None:
    """clean_text's result for one value: stripped, blank as None (ASCII whitespace only)."""
    if value is None:
        return None
    if _REFUSED.search(value):
        raise _UnsureError
    stripped = value.strip()
    if stripped != value.strip(_ASCII_SPACE):
        raise _UnsureError  # Unicode whitespace at an end: Arrow's trim may differ from Python's
    return stripped or None


def _timestamp(text: str | None) -> pd.Timestamp | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _UnsureError from None
    if moment.year not in _NS_YEARS:
        raise _UnsureError
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return pd.Timestamp(moment)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        raise _UnsureError from None
    if number != number or number in (float("inf"), float("-inf")):
        raise _UnsureError
    return number


def _passes(check: pa.Check, value: Any) -> bool:
    if check.name not in _KNOWN_CHECKS:
        raise _UnsureError
    stats = check.statistics
    if check.name == "str_length":
        low, high, exact = stats.get("min_value"), stats.get("max_value"), stats.get("exact_value")
        size = len(value)
        return (
            (exact is None or size == exact)
            and (low is None or size >= low)
            and (high is None or size <= high)
        )
    if check.name == "isin":
        return value in stats["allowed_values"]
    if check.name == "greater_than_or_equal_to":
        return value >= stats["min_value"]
    return value <= stats["max_value"]


def _require_contract(schema: pa.DataFrameSchema, row: dict[str, Any]) -> None:
    """Raise _UnsureError unless ``row`` certainly satisfies ``schema``."""
    if schema.checks or schema.unique or schema.index is not None:
        raise _UnsureError
    for name, column in schema.columns.items():
        if name not in row:
            if column.required:
                raise _UnsureError
            continue
        value = row[name]
        if value is None:
            if not column.nullable:
                raise _UnsureError
            continue
        if not all(_passes(check, value) for check in column.checks):
            raise _UnsureError


def _hash_text(value: Any) -> str:
    # mapping.content_hash's text of a value: integer nanoseconds for a timestamp.
    if value is None:
        return ""
    if isinstance(value, pd.Timestamp):
        return str(value.value)
    return str(value)


def _canonical_ticket(raw: dict[str, str | None]) -> dict[str, Any]:
    """A raw unlabeled ticket with an id, in the chain's canonical columns and parsed values."""
    if raw.get("ticket_id") is None:
        raise _UnsureError  # ingest's made-up id: the chain's rule, not repeated here
    row: dict[str, Any] = {
        "subject": _clean(raw.get("subject")),
        "body": _clean(raw.get("body")),
        "created_at": _timestamp(_clean(raw.get("created_at"))),
    }
    for name in ("channel", "customer_id", "customer_tier", "customer_ltv", "language"):
        row[name] = _clean(raw.get(name))
    row["customer_ltv"] = _number(row["customer_ltv"])
    if "campaign_id" in raw:
        row["campaign_id"] = _clean(raw["campaign_id"])
    row["priority"] = None  # unlabeled: the chain keeps the column, empty
    row["ticket_id"] = _clean(raw["ticket_id"])
    return row


def as_frame(row: dict[str, Any], columns: Sequence[str]) -> pd.DataFrame:
    """``columns`` of a canonical row as a one-row frame with the dtypes the chain gives them."""
    # Typed arrays straight away: building an object frame and casting it cost four times more.
    return pd.DataFrame({c: pd.array([row.get(c)], dtype=_DTYPES.get(c, "str")) for c in columns})


def _content_hash(row: dict[str, Any], columns: Sequence[str]) -> str:
    """:func:`triage_ml.ingest.mapping.content_hash` of one row."""
    joined = "\x1f".join(_hash_text(row[c]) for c in columns)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def check_ticket(raw: dict[str, str | None], schema: pa.DataFrameSchema) -> dict[str, Any] | None:
    """The canonical row and its ``content_hash`` when ``raw`` certainly satisfies the
    contract, else None (run the chain: it decides, and names the reason)."""
    try:
        row = _canonical_ticket(raw)
        _require_contract(schema, row)
    except _UnsureError:
        return None
    columns = [c for c in store.TICKET_FIELDS[1:] if c in row]
    return {**row, "content_hash": _content_hash(row, columns)}


def _lower(value: str | None) -> str | None:
    if value is not None and not value.isascii():
        raise _UnsureError  # Arrow's and Python's case rules agree on ASCII
    return None if value is None else value.lower()


def _canonical_feedback(raw: dict[str, str | None]) -> dict[str, Any]:
    """A raw feedback row in the chain's columns and parsed values (a correction required)."""
    columns = LinkedMapping.of("feedback").columns
    row: dict[str, Any] = {name: _clean(raw.get(name)) for name in columns}
    row["corrected_priority"] = _lower(row["corrected_priority"])
    row["label_source"] = _lower(row["label_source"])
    row["corrected_at"] = _timestamp(row["corrected_at"])
    if row["corrected_category"] is None and row["corrected_priority"] is None:
        raise _UnsureError  # the chain quarantines it, with its reason
    return row


def check_feedback(raw: dict[str, str | None], schema: pa.DataFrameSchema) -> dict[str, Any] | None:
    """The canonical feedback row and its ``feedback_id`` (ingest's: the first 40 characters
    of its content hash) when ``raw`` certainly satisfies the contract, else None."""
    try:
        row = _canonical_feedback(raw)
        _require_contract(schema, row)
    except _UnsureError:
        return None
    return {**row, "feedback_id": _content_hash(row, FEEDBACK_COLUMNS)[:40]}
