"""Column mappings: how a source's columns become the store's canonical columns.

A mapping is resolved against a chunk's header (which fails on a missing
column) and then applied to the chunk. Tickets use :class:`ColumnMapping`,
which users configure; feedback and surveys use :class:`LinkedMapping`, whose
column names are fixed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, Self

import pandas as pd

from triage_ml import store
from triage_ml.errors import InputError
from triage_ml.store.queries import HEAD_LABEL_FIELDS

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
# Where a feedback row's label came from and which model version's answer it judges: optional,
# and left out of the row's content hash so that files written before them keep their ids.
FEEDBACK_PROVENANCE_COLUMNS: tuple[str, ...] = ("label_source", "model_version")
SURVEY_COLUMNS: tuple[str, ...] = ("ticket_id", "csat", "comment", "answered_at")
OPTIONAL_LINKED_COLUMNS: tuple[str, ...] = ("reason", "comment", "agent_id")
# A source's names for the ticket's marketing campaign, in order of preference.
CAMPAIGN_COLUMNS: tuple[str, ...] = ("campaign_id", "utm_campaign")


class Mapping(Protocol):
    """What the read -> map -> validate chain needs of a mapping."""

    def resolve(self, columns: Sequence[str], source: str) -> Self:
        """The mapping as it applies to a header; raises InputError on a missing column."""
        ...

    def apply(self, raw: pd.DataFrame) -> pd.DataFrame:
        """A raw chunk in canonical columns."""
        ...


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
    # The labels of the further heads (issue 27): tickets.subcategory, type and team.
    subcategory_column: str | None = "subcategory"
    type_column: str | None = "type"
    team_column: str | None = "team"

    def head_columns(self) -> dict[str, str]:
        """Each head label this mapping reads (store column -> source column); none unlabeled."""
        if not self.labeled:
            return {}
        named = {head: getattr(self, f"{head}_column") for head in HEAD_LABEL_FIELDS}
        return {head: column for head, column in named.items() if column is not None}

    def resolve(self, columns: Sequence[str], source: str) -> ColumnMapping:
        """See :func:`resolve_mapping`."""
        return resolve_mapping(columns, self, source)

    def apply(self, raw: pd.DataFrame) -> pd.DataFrame:
        """See :func:`map_tickets`."""
        return map_tickets(raw, self)


@dataclass(frozen=True)
class LinkedMapping:
    """The fixed columns of feedback or survey files; the optional ones may be absent."""

    columns: tuple[str, ...]
    optional: tuple[str, ...] = OPTIONAL_LINKED_COLUMNS

    @classmethod
    def of(cls, kind: str) -> LinkedMapping:
        """The mapping of ``feedback`` or ``surveys`` files."""
        if kind == "feedback":
            provenance = FEEDBACK_PROVENANCE_COLUMNS
            return cls(FEEDBACK_COLUMNS + provenance, OPTIONAL_LINKED_COLUMNS + provenance)
        return cls(SURVEY_COLUMNS)

    def resolve(self, columns: Sequence[str], source: str) -> LinkedMapping:
        """This mapping, once the header is known to hold every required column.

        Raises:
            InputError: a required column is missing.
        """
        absent = [c for c in self.columns if c not in columns and c not in self.optional]
        if absent:
            raise InputError(
                f"column(s) {', '.join(absent)} not found in {source}; "
                f"its columns are: {', '.join(columns)}"
            )
        return self

    def apply(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The chunk's cleaned values in this mapping's columns (absent optional ones as None)."""
        out = pd.DataFrame(
            {c: clean_text(raw[c]) if c in raw.columns else None for c in self.columns},
            index=raw.index,
        )
        if "corrected_priority" in out.columns:
            # Same case rule as ticket priorities, so "High" is on the scale.
            out["corrected_priority"] = out["corrected_priority"].str.lower()
        if "label_source" in out.columns:
            out["label_source"] = out["label_source"].str.lower()
        return out


def resolve_mapping(columns: Sequence[str], mapping: ColumnMapping, source: str) -> ColumnMapping:
    """Check the mapping against the file's header; drop absent default columns.

    Unlabeled data carries no labels: its category, priority and head columns
    become None whatever the file holds.

    Raises:
        InputError: an explicitly named column, a text column or (for labeled
            data) the category column is missing.
    """
    present = set(columns)
    wanted = [c for c in mapping.text_columns if c not in present]
    if len(wanted) == len(mapping.text_columns) or ("text_columns" in mapping.explicit and wanted):
        raise InputError(
            f"text column(s) {', '.join(wanted)} not found in {source}; "
            f"its columns are: {', '.join(columns)}"
        )
    checks = {
        "category_column": mapping.category_column,
        "priority_column": mapping.priority_column,
        "id_column": mapping.id_column,
        "created_at_column": mapping.created_at_column,
        **{f"{head}_column": getattr(mapping, f"{head}_column") for head in HEAD_LABEL_FIELDS},
    }
    updates: dict[str, Any] = {
        "text_columns": tuple(c for c in mapping.text_columns if c in present)
    }
    for key, name in checks.items():
        if name is not None and name not in present:
            if key in mapping.explicit or (key == "category_column" and mapping.labeled):
                raise InputError(
                    f"column '{name}' ({key.replace('_column', '')}) not found in {source}; "
                    f"its columns are: {', '.join(columns)}"
                )
            updates[key] = None
    if not mapping.labeled:
        labels = ("category", "priority", *HEAD_LABEL_FIELDS)
        updates.update({f"{label}_column": None for label in labels})
    return ColumnMapping(**{**asdict(mapping), **updates})


def clean_text(values: pd.Series) -> pd.Series:
    """Values as stripped strings; blank and missing both become ``<NA>``."""
    # Stays in Arrow string ops rather than a round trip through Python objects.
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


def content_hash(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """SHA-256 of each row's values in ``columns``: equal rows, equal hashes, across runs."""
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
    out["subject"] = clean_text(raw[texts[0]]) if len(texts) > 1 else None
    out["body"] = clean_text(_join_columns(raw, texts[1:] if len(texts) > 1 else texts, "\n"))
    out["created_at"] = (
        clean_text(raw[mapping.created_at_column]) if mapping.created_at_column else None
    )
    for column in OPTIONAL_TICKET_COLUMNS:
        out[column] = clean_text(raw[column]) if column in raw.columns else None
    campaign = campaign_column(raw.columns)
    if campaign is not None:
        # Only when the source has one: an absent column stays out of the content hash.
        out["campaign_id"] = clean_text(raw[campaign])
    out["category"] = clean_text(raw[mapping.category_column]) if mapping.category_column else None
    out["priority"] = (
        clean_text(raw[mapping.priority_column]).str.lower() if mapping.priority_column else None
    )
    for head, column in mapping.head_columns().items():
        # Only the heads the source names: they stay out of the content hash (TICKET_FIELDS),
        # so a re-ingest that adds them keeps each ticket's hash and relabels it in place.
        out[head] = clean_text(raw[column])
    if mapping.id_column:
        out["ticket_id"] = clean_text(raw[mapping.id_column])
    else:
        # No id in the source: a hash of the text and time is stable across
        # re-ingests and survives label corrections.
        out["ticket_id"] = "h-" + content_hash(out, ["subject", "body", "created_at"]).str[:24]
    if not mapping.labeled:
        out = out.drop(columns=["category"])
    return out


def campaign_column(columns: Sequence[str]) -> str | None:
    """The source column holding the ticket's campaign (see :data:`CAMPAIGN_COLUMNS`), if any."""
    return next((c for c in CAMPAIGN_COLUMNS if c in columns), None)


def updated_columns(columns: Sequence[str], mapping: ColumnMapping) -> list[str]:
    """Store columns an upsert from this file writes: only those the file has.

    A file without, say, a priority or channel column says nothing about
    them, so it must not wipe what the store already holds.
    """
    given = {"ticket_id", "body", *(c for c in OPTIONAL_TICKET_COLUMNS if c in columns)}
    if campaign_column(columns) is not None:
        given.add("campaign_id")
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
    fields = [c for c in store.TICKET_FIELDS if c in given]
    heads = [head for head in HEAD_LABEL_FIELDS if head in mapping.head_columns()]
    return [*fields, *heads, "content_hash", "batch_id", "ingested_at"]


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
