"""The ticket events API's business logic: create, update, close, get and list tickets.

Plain functions, no HTTP. Each runs inside the caller's transaction and raises
an :class:`~triage_ml.api.errors.ApiError` to refuse a request, so a refused
request (its transaction rolled back) leaves the store as it was.

The rows written are the ones batch ingest writes: a ticket is checked against
the ``tickets`` contract and stored with ingest's content hash as a one-row
batch of source ``api``, and an agent's labels are checked against the
``feedback`` contract and stored with ingest's id and provenance as a one-row
feedback batch. A retrain and the monitor therefore see API tickets and
corrections like any other. A plain row is checked by :mod:`triage_ml.api.onerow`
(the ingest chain costs tens of milliseconds per call, whatever its rows); one it
doubts goes through the ingest chain itself, which also words every refusal.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from time import time
from typing import TYPE_CHECKING, Any

import pandas as pd
import pandera.pandas as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from triage_ml import store
from triage_ml.api import lifecycle, onerow
from triage_ml.api.errors import ConflictError, InvalidError, NotFoundError
from triage_ml.api.schemas import (
    Event,
    LabelChange,
    ListQuery,
    Status,
    TicketClose,
    TicketDetail,
    TicketIn,
    TicketOut,
    TicketPage,
    TicketUpdate,
    Triage,
)
from triage_ml.ingest import batches, contracts, provenance
from triage_ml.ingest.chain import check_chunk
from triage_ml.ingest.mapping import ColumnMapping, LinkedMapping, mapping_to_dict
from triage_ml.scoring.answers import parse_stored
from triage_ml.settings import Settings
from triage_ml.store import events
from triage_ml.store import review as review_queries
from triage_ml.store.tables import (
    AUTO,
    AUTO_APPLIED,
    CONFIRMED,
    CORRECTED,
    predictions,
    shadow_predictions,
)

if TYPE_CHECKING:
    from triage_ml.api.triage import Answer, Triager

logger = logging.getLogger(__name__)

# How batches the API writes are named in the ``batches`` table.
API_SOURCE = "api"
# The store columns the triager reads (the ticket's labels are not among them).
TRIAGE_COLUMNS: tuple[str, ...] = tuple(
    c for c in store.TICKET_FIELDS if c not in ("category", "priority")
)
# Categories named in a refusal, at most (a configured list may be long).
_NAMED_CATEGORIES = 20


# ---- checks shared by the writes ---------------------------------------------------------


@lru_cache(maxsize=8)
def _cached_schema(
    name: str, levels: tuple[str, ...], categories: tuple[str, ...] | None, minute: int
) -> pa.DataFrameSchema:
    del minute  # only part of the key
    return contracts.load_schema(name, levels, categories=categories)


def contract(name: str, settings: Settings) -> pa.DataFrameSchema:
    """The ingest contract ``name`` for these settings, reloaded once a minute.

    Loading the YAML costs milliseconds per request. A schema fixes "now" for its
    future-timestamp check when loaded, so an hour-old one would let future times
    through; one at most a minute old is only stricter than a fresh one, by that minute.
    """
    categories = settings.categories if name == "tickets" else None
    return _cached_schema(name, tuple(settings.priority_levels), categories, int(time() // 60))


def _field(reason: str) -> str | None:
    head, sep, _ = reason.partition(":")
    return head.strip() if sep else None


def _refuse(rejected: list[dict[str, Any]]) -> None:
    """Raise the first reason the chain gave for refusing the row, naming its field."""
    if rejected:
        reason = rejected[0]["reasons"][0]
        raise InvalidError(reason, field=_field(reason))


def _checked_category(category: str | None, triager: Triager) -> str | None:
    if category is None:
        return None
    known = triager.categories()
    if category not in known:
        names = sorted(known)
        more = ", ..." if len(names) > _NAMED_CATEGORIES else ""
        listed = ", ".join(names[:_NAMED_CATEGORIES])
        raise InvalidError(f"unknown category '{category}' (allowed: {listed}{more})", "category")
    return category


def _checked_priority(priority: str | None, settings: Settings) -> str | None:
    if priority is None:
        return None
    # The scale is lower case, as ingest reads priorities.
    level = priority.lower()
    if level not in settings.priority_levels:
        scale = ", ".join(settings.priority_levels)
        raise InvalidError(f"priority '{priority}' is not on the scale ({scale})", "priority")
    return level


def _aware(moment: Any) -> datetime | None:
    """A store or frame timestamp as an aware UTC datetime, the API's convention."""
    if moment is None or pd.isna(moment):
        return None
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.to_pydatetime()


def _value(value: Any) -> Any:
    """A frame or store value with pandas' and numpy's missing markers as None."""
    if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


# ---- create ------------------------------------------------------------------------------


def _ticket_raw(ticket: TicketIn, now: datetime) -> dict[str, str | None]:
    """The ticket as a source's raw strings (what a CSV row of it would hold)."""
    created_at = ticket.created_at or now
    values = {
        "ticket_id": ticket.ticket_id,
        "subject": ticket.subject,
        "body": ticket.body,
        "created_at": created_at.isoformat(),
        "channel": ticket.channel,
        "customer_id": ticket.customer_id,
        "customer_tier": ticket.customer_tier,
        "customer_ltv": None if ticket.customer_ltv is None else repr(ticket.customer_ltv),
        "language": ticket.language,
        "campaign_id": ticket.campaign_id,
    }
    if ticket.ticket_id is None:
        # Ingest's rule for a source without ids: a hash of the text and time.
        del values["ticket_id"]
    return values


def _mapping(raw: dict[str, str | None]) -> ColumnMapping:
    return ColumnMapping(labeled=False, id_column="ticket_id" if "ticket_id" in raw else None)


def _new_batch() -> batches.IngestSummary:
    return batches.IngestSummary(batch_id=batches.new_batch_id(), kind="tickets", source=API_SOURCE)


def _taken(ticket_id: str) -> ConflictError:
    return ConflictError(f"ticket '{ticket_id}' already exists", "ticket_id")


def _store_checked(
    conn: Connection, raw: dict[str, str | None], settings: Settings
) -> pd.DataFrame:
    """Check and write the ticket through the whole ingest chain, as a one-row batch.

    Returns:
        The stored row in the chain's canonical columns.
    """
    frame = pd.DataFrame([raw], dtype=object)
    chunk = check_chunk(frame, _mapping(raw), contract("tickets", settings), API_SOURCE, 0)
    _refuse(chunk.rejected)
    prepared = batches.prepare_ticket_chunk(chunk)
    ticket_id = str(prepared.valid["ticket_id"].iloc[0])
    summary = _new_batch()
    try:
        batches.store_ticket_chunk(conn, prepared, summary)
    except sa.exc.IntegrityError:
        raise _taken(ticket_id) from None  # a concurrent create of the id committed first
    if summary.inserted != 1:
        raise _taken(ticket_id)  # ingest skips a stored id: an API ticket has no labels
    batches.finish_batch(conn, summary, {"mapping": mapping_to_dict(chunk.mapping)})
    return prepared.valid


def _store_plain(conn: Connection, raw: dict[str, str | None], row: dict[str, Any]) -> pd.DataFrame:
    """Write a ticket :mod:`~triage_ml.api.onerow` found valid: the row and batch row the
    chain would write (same values and content hash), without its per-call cost."""
    ticket_id = row["ticket_id"]
    summary = _new_batch()
    stored = {k: v for k, v in row.items() if k != "priority"}  # unlabeled: none stored
    stored["created_at"] = store.naive_utc(row["created_at"].to_pydatetime())
    try:
        events.insert_ticket(
            conn, {**stored, "batch_id": summary.batch_id, "ingested_at": store.utcnow()}
        )
    except sa.exc.IntegrityError:
        # The id is taken (no lookup first: the primary key says it, and a refusal rolls back).
        raise _taken(ticket_id) from None
    summary.read = summary.stored = summary.inserted = 1
    mapping = _mapping(raw).resolve(list(raw), API_SOURCE)
    batches.finish_batch(conn, summary, {"mapping": mapping_to_dict(mapping)})
    return onerow.as_frame(row, [*TRIAGE_COLUMNS, "priority", "content_hash"])


def _store_ticket(
    conn: Connection, ticket: TicketIn, settings: Settings, now: datetime
) -> pd.DataFrame:
    """Validate the ticket against the ``tickets`` contract and store it as a one-row batch.

    Returns:
        The stored row (canonical columns, parsed values).

    Raises:
        InvalidError: the contract refuses a field (named).
        ConflictError: the id is taken.
    """
    raw = _ticket_raw(ticket, now)
    row = onerow.check_ticket(raw, contract("tickets", settings))
    if row is None:
        return _store_checked(conn, raw, settings)
    return _store_plain(conn, raw, row)


def _answer_row(frame: pd.DataFrame) -> dict[str, Any]:
    """The one answer of ``frame`` as plain values, its time naive UTC as the store keeps it."""
    row = {k: _value(v) for k, v in frame.iloc[0].items()}
    row["scored_at"] = store.naive_utc(pd.Timestamp(row["scored_at"]).to_pydatetime())
    return row


def _write_answer(conn: Connection, answer: Answer) -> dict[str, Any]:
    """Store the champion's answer (and the shadow's) for a new ticket; returns the champion's."""
    served = _answer_row(answer.champion)
    events.insert_answer(conn, served, predictions)
    if answer.shadow is not None and not answer.shadow.empty:
        events.insert_answer(conn, _answer_row(answer.shadow), shadow_predictions)
    return served


def _new_state(
    settings: Settings, ticket_id: str, served: dict[str, Any], opened_at: datetime, now: datetime
) -> dict[str, Any]:
    priority = served.get("priority")
    return {
        "ticket_id": ticket_id,
        "status": Status.NEW.value,
        "category": served.get("category"),
        "priority": priority,
        "priority_source": "model",
        "tier": served.get("tier"),
        "needs_review": _value(served.get("needs_review")),
        "model_version": str(served["model_version"]),
        "opened_at": opened_at,
        "sla_due_at": lifecycle.sla_due(opened_at, priority, settings),
        "resolution": None,
        "closed_at": None,
        "updated_at": now,
    }


def create_ticket(
    conn: Connection, settings: Settings, triager: Triager, ticket: TicketIn, now: datetime
) -> TicketOut:
    """Store a new ticket, triage it with the champion (and shadow), and open its lifecycle.

    Raises:
        InvalidError: a field the ``tickets`` contract refuses (named).
        ConflictError: the ticket id is taken.
    """
    now = store.naive_utc(now)
    stored = _store_ticket(conn, ticket, settings, now)
    ticket_id = str(stored["ticket_id"].iloc[0])
    opened_at = store.naive_utc(stored["created_at"].iloc[0].to_pydatetime())
    served = _write_answer(conn, triager.answer(conn, stored[list(TRIAGE_COLUMNS)]))
    state = _new_state(settings, ticket_id, served, opened_at, now)
    events.insert_state(conn, state)
    events.add_event(
        conn,
        ticket_id,
        "created",
        from_status=None,
        to_status=Status.NEW.value,
        actor=None,
        at=now,
        details={"model_version": state["model_version"]},
    )
    logger.info("ticket %s created (champion %s)", ticket_id, state["model_version"])
    return _ticket_out({"ticket_id": ticket_id, "created_at": opened_at, **state}, served)


# ---- labels (corrections and final labels) -----------------------------------------------


@dataclass(frozen=True)
class _Labels:
    """One feedback row's content: the labels, who gave them, why, and (if fixed) the source."""

    category: str | None
    priority: str | None
    agent_id: str | None
    reason: str | None = None
    source: str | None = None


def _feedback_raw(state: dict[str, Any], labels: _Labels, now: datetime) -> dict[str, Any]:
    """The labels as a feedback file's raw row (what a CSV row of them would hold)."""
    return {
        "ticket_id": state["ticket_id"],
        "corrected_category": labels.category,
        "corrected_priority": labels.priority,
        "agent_id": labels.agent_id,
        "corrected_at": now.isoformat(),
        "reason": labels.reason,
        "label_source": labels.source,
        "model_version": state["model_version"],
    }


def _store_checked_labels(
    conn: Connection, raw: dict[str, Any], schema: pa.DataFrameSchema
) -> None:
    """Check and write the labels through the whole feedback chain, as a one-row batch."""
    frame = pd.DataFrame([raw], dtype=object)
    chunk = check_chunk(frame, LinkedMapping.of("feedback"), schema, API_SOURCE, 0)
    _refuse(chunk.rejected)
    summary = batches.IngestSummary(
        batch_id=batches.new_batch_id(), kind="feedback", source=API_SOURCE
    )
    batches.store_linked_chunk(conn, chunk, summary)
    if summary.quarantined:
        reason = (events.quarantine_reasons(conn, summary.batch_id) or ["feedback refused"])[0]
        raise InvalidError(reason, field=_field(reason))
    batches.finish_batch(conn, summary)


def _derived_source(conn: Connection, row: dict[str, Any]) -> str:
    """Ingest's label source for a row without one: confirmed when it repeats the answer
    served (by its model version), else corrected (see :mod:`triage_ml.ingest.provenance`)."""
    served = review_queries.answers(conn, predictions, [row["ticket_id"]])
    columns = ("ticket_id", "model_version", "corrected_category", "corrected_priority")
    rows = pd.DataFrame([{c: row[c] for c in columns}]).assign(label_source=None)
    return str(provenance.derived_sources(rows, served).iloc[0])


def _store_plain_labels(conn: Connection, row: dict[str, Any]) -> None:
    """Write labels :mod:`~triage_ml.api.onerow` found valid: the feedback row and batch row
    the chain would write (same id, values and label source), without its per-call cost."""
    summary = batches.IngestSummary(
        batch_id=batches.new_batch_id(), kind="feedback", source=API_SOURCE, read=1
    )
    source = row["label_source"] or _derived_source(conn, row)
    if events.feedback_stored(conn, row["feedback_id"]):
        summary.skipped = 1  # the very same labels at the very same time: ingest skips them
    else:
        corrected_at = store.naive_utc(row["corrected_at"])
        stored = {**row, "label_source": source, "corrected_at": corrected_at}
        events.insert_feedback(
            conn, {**stored, "batch_id": summary.batch_id, "ingested_at": store.utcnow()}
        )
        summary.stored = 1
    batches.finish_batch(conn, summary)


def _write_labels(
    conn: Connection, settings: Settings, state: dict[str, Any], labels: _Labels, now: datetime
) -> None:
    """Write one feedback row as a one-row ``feedback`` batch, as ingest's feedback chain does
    (its contract, content-hash id and provenance: without a source, agent-confirmed when it
    repeats the served answer, else agent-corrected)."""
    raw = _feedback_raw(state, labels, now)
    schema = contract("feedback", settings)
    row = onerow.check_feedback(raw, schema)
    if row is None:
        _store_checked_labels(conn, raw, schema)
    else:
        _store_plain_labels(conn, row)


def _current_state(
    conn: Connection, ticket_id: str, settings: Settings, now: datetime
) -> dict[str, Any]:
    """The ticket's state, locked for this transaction; a batch-ingested ticket's first one
    (status new, its own labels else the newest answer served) is created here.

    Raises:
        NotFoundError: no such ticket.
    """
    state = events.ticket_state(conn, ticket_id, lock=True)
    if state is not None:
        return state
    ticket = events.ticket_row(conn, ticket_id)
    if ticket is None:
        raise NotFoundError(f"unknown ticket '{ticket_id}'", "ticket_id")
    served = events.latest_predictions(conn, [ticket_id]).get(ticket_id, {})
    priority = ticket["priority"] or served.get("priority")
    opened_at = ticket["created_at"] or ticket["ingested_at"]
    state = {
        "ticket_id": ticket_id,
        "status": Status.NEW.value,
        "category": ticket["category"] or served.get("category"),
        "priority": priority,
        "priority_source": "original" if ticket["priority"] else "model",
        "tier": served.get("tier"),
        "needs_review": served.get("needs_review"),
        "model_version": served.get("model_version"),
        "opened_at": opened_at,
        "sla_due_at": lifecycle.sla_due(opened_at, priority, settings),
        "updated_at": now,
    }
    try:
        events.insert_state(conn, state)
    except sa.exc.IntegrityError:
        # Another request touched the ticket first, between our read and this write.
        raise ConflictError(
            f"ticket '{ticket_id}' was changed by a concurrent request; retry", "ticket_id"
        ) from None
    return {**state, "resolution": None, "closed_at": None}


def _priority_values(settings: Settings, state: dict[str, Any], priority: str) -> dict[str, Any]:
    """An agent's priority in effect: its source, and the SLA due time it moves."""
    return {
        "priority": priority,
        "priority_source": "agent",
        "sla_due_at": lifecycle.sla_due(state["opened_at"], priority, settings),
    }


# ---- update ------------------------------------------------------------------------------


def _correct(
    conn: Connection,
    settings: Settings,
    state: dict[str, Any],
    labels: _Labels,
    now: datetime,
) -> dict[str, Any]:
    """Record an agent's category/priority as feedback and an event; returns the new state."""
    _write_labels(conn, settings, state, labels, now)
    fields = {"category": labels.category, "priority": labels.priority}
    events.add_event(
        conn,
        state["ticket_id"],
        "corrected",
        from_status=state["status"],
        to_status=state["status"],
        actor=labels.agent_id,
        at=now,
        details={k: v for k, v in fields.items() if v is not None},
    )
    values: dict[str, Any] = {}
    if labels.category is not None:
        values["category"] = labels.category
    if labels.priority is not None:
        values.update(_priority_values(settings, state, labels.priority))
    return values


def _move(
    conn: Connection, state: dict[str, Any], wanted: Status, actor: str | None, now: datetime
) -> dict[str, Any]:
    """Record a status change (already checked) as an event; returns the new state values."""
    events.add_event(
        conn,
        state["ticket_id"],
        "status",
        from_status=state["status"],
        to_status=wanted.value,
        actor=actor,
        at=now,
        details=None,
    )
    values: dict[str, Any] = {"status": wanted.value}
    if wanted == Status.REOPENED:
        values["closed_at"] = None  # closed no more; the resolution stays as history
    return values


def update_ticket(
    conn: Connection,
    settings: Settings,
    triager: Triager,
    ticket_id: str,
    change: TicketUpdate,
    now: datetime,
) -> TicketOut:
    """Apply an agent's change: a status (through the lifecycle), a category, a priority.

    Raises:
        InvalidError: nothing to change, an unknown category, a priority off the scale.
        NotFoundError: no such ticket.
        ConflictError: the lifecycle does not allow the status change.
    """
    if change.status is None and change.category is None and change.priority is None:
        raise InvalidError("nothing to change: give a status, a category or a priority", "body")
    category = _checked_category(change.category, triager)
    priority = _checked_priority(change.priority, settings)
    now = store.naive_utc(now)
    state = _current_state(conn, ticket_id, settings, now)
    current = Status(state["status"])
    if change.status is not None:
        lifecycle.check_transition(current, change.status)
    values: dict[str, Any] = {"updated_at": now}
    if category is not None or priority is not None:
        labels = _Labels(category, priority, change.agent_id, change.reason)
        values.update(_correct(conn, settings, state, labels, now))
    if change.status is not None and change.status != current:
        values.update(_move(conn, state, change.status, change.agent_id, now))
    if len(values) > 1:  # a status set to the one it has changes nothing, not even the time
        events.update_state(conn, ticket_id, values)
    logger.info("ticket %s updated (status %s)", ticket_id, values.get("status", current.value))
    return _written(conn, {**state, **values})


# ---- close -------------------------------------------------------------------------------


def _labels_in_effect(labels: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The newest category and priority feedback gives (as training resolves them)."""
    category = next(
        (r["corrected_category"] for r in reversed(labels) if r["corrected_category"]), None
    )
    priority = next(
        (r["corrected_priority"] for r in reversed(labels) if r["corrected_priority"]), None
    )
    return category, priority


def _final_source(given: bool, corrected: bool, tier: str | None) -> str | None:
    """The final label's source; None lets the feedback chain derive corrected/confirmed."""
    if given or corrected:
        return None
    return AUTO_APPLIED if tier == AUTO else CONFIRMED


def _final_labels(
    conn: Connection,
    settings: Settings,
    state: dict[str, Any],
    close: TicketClose,
    given: tuple[str | None, str | None],
    now: datetime,
) -> tuple[str | None, str | None]:
    """Record the ticket's final labels as feedback unless feedback already says exactly that."""
    category = given[0] or state["category"]
    priority = given[1] or state["priority"]
    history = events.ticket_labels(conn, state["ticket_id"])
    if _labels_in_effect(history) == (category, priority) or (category, priority) == (None, None):
        return category, priority
    source = _final_source(given != (None, None), bool(history), state["tier"])
    _write_labels(
        conn, settings, state, _Labels(category, priority, close.agent_id, None, source), now
    )
    return category, priority


def _closed(
    conn: Connection,
    settings: Settings,
    state: dict[str, Any],
    close: TicketClose,
    final: tuple[str | None, str | None],
    given_priority: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Record the close event; returns the closed ticket's state values."""
    events.add_event(
        conn,
        state["ticket_id"],
        "closed",
        from_status=state["status"],
        to_status=Status.CLOSED.value,
        actor=close.agent_id,
        at=now,
        details={"category": final[0], "priority": final[1]},
    )
    values: dict[str, Any] = {
        "status": Status.CLOSED.value,
        "category": final[0],
        "closed_at": now,
        "resolution": close.resolution,
        "updated_at": now,
    }
    if given_priority is not None:
        values.update(_priority_values(settings, state, given_priority))
    return values


def close_ticket(
    conn: Connection,
    settings: Settings,
    triager: Triager,
    ticket_id: str,
    close: TicketClose,
    now: datetime,
) -> TicketOut:
    """Close a ticket with its final labels (the given ones, else those in effect) and
    resolution; the final labels are recorded as feedback (see :func:`_final_source`).

    Raises:
        InvalidError: an unknown category, a priority off the scale.
        NotFoundError: no such ticket.
        ConflictError: the ticket is closed already.
    """
    given = (
        _checked_category(close.category, triager),
        _checked_priority(close.priority, settings),
    )
    now = store.naive_utc(now)
    state = _current_state(conn, ticket_id, settings, now)
    lifecycle.check_close(Status(state["status"]))
    final = _final_labels(conn, settings, state, close, given, now)
    values = _closed(conn, settings, state, close, final, given[1], now)
    events.update_state(conn, ticket_id, values)
    logger.info("ticket %s closed (from %s)", ticket_id, state["status"])
    return _written(conn, {**state, **values})


# ---- reads -------------------------------------------------------------------------------


# The answers passed through as they are stored (None where missing).
_PLAIN_ANSWERS: tuple[str, ...] = (
    "subcategory",
    "subcategory_proba",
    "type",
    "type_proba",
    "team",
    "team_proba",
    "priority",
    "priority_proba",
    "priority_score",
    "sentiment",
    "sentiment_reason",
    "language",
)


def _triage(row: dict[str, Any]) -> Triage:
    """A stored (or just served) prediction row as the API's answer."""
    return Triage(
        model_version=str(row["model_version"]),
        category=str(row["category"]),
        category_proba=float(row["category_proba"]),
        top3=parse_stored(row.get("top3"), []),
        **{name: _value(row.get(name)) for name in _PLAIN_ANSWERS},
        priority_parts=parse_stored(row.get("priority_parts"), None),
        priority_review=bool(_value(row.get("priority_review"))),
        escalation=parse_stored(row.get("escalation"), []),
        route=str(row.get("route")),
        tier=str(row.get("tier")),
        needs_review=bool(row.get("needs_review")),
        possible_duplicates=parse_stored(row.get("possible_duplicates"), []),
        scored_at=_aware(row["scored_at"]),
    )


def _ticket_out(row: dict[str, Any], served: dict[str, Any] | None) -> TicketOut:
    """A ticket as listed: ``row`` holds ``ticket_id``, ``created_at``, optionally its own
    labels (``label_category`` / ``label_priority``) and its ticket_state columns (``status``
    None for a batch ticket the API never touched); ``served`` is the newest answer."""
    served = served or {}
    triage = _triage(served) if served else None
    if row.get("status") is None:
        return TicketOut(
            ticket_id=row["ticket_id"],
            status=None,
            category=row.get("label_category") or served.get("category"),
            priority=row.get("label_priority") or served.get("priority"),
            tier=served.get("tier"),
            needs_review=_value(served.get("needs_review")),
            sla_due_at=None,
            created_at=_aware(row.get("created_at")),
            triage=triage,
        )
    return TicketOut(
        ticket_id=row["ticket_id"],
        status=Status(row["status"]),
        category=row.get("category"),
        priority=row.get("priority"),
        tier=row.get("tier"),
        needs_review=_value(row.get("needs_review")),
        sla_due_at=_aware(row.get("sla_due_at")),
        created_at=_aware(row.get("created_at")),
        closed_at=_aware(row.get("closed_at")),
        resolution=row.get("resolution"),
        triage=triage,
    )


def _written(conn: Connection, state: dict[str, Any]) -> TicketOut:
    """The ticket as a write left it (``state``), with its created time and newest answer."""
    ticket_id = state["ticket_id"]
    ticket = events.ticket_row(conn, ticket_id) or {}
    served = events.latest_predictions(conn, [ticket_id]).get(ticket_id)
    return _ticket_out({**state, "created_at": ticket.get("created_at")}, served)


def _label_change(row: dict[str, Any]) -> LabelChange:
    return LabelChange(
        category=row["corrected_category"],
        priority=row["corrected_priority"],
        # Feedback stored before label sources existed was all agents' corrections.
        label_source=row["label_source"] or CORRECTED,
        agent_id=row["agent_id"],
        model_version=row["model_version"],
        at=_aware(row["corrected_at"]),
        reason=row["reason"],
    )


def _event(row: dict[str, Any]) -> Event:
    return Event(
        kind=row["kind"],
        from_status=row["from_status"],
        to_status=row["to_status"],
        actor=row["actor"],
        at=_aware(row["at"]),
    )


def get_ticket(conn: Connection, ticket_id: str) -> TicketDetail:
    """A ticket with its answers served (newest first), label history and lifecycle events.

    Raises:
        NotFoundError: no such ticket.
    """
    ticket = events.ticket_row(conn, ticket_id)
    if ticket is None:
        raise NotFoundError(f"unknown ticket '{ticket_id}'", "ticket_id")
    state = events.ticket_state(conn, ticket_id) or {}
    served = events.ticket_predictions(conn, ticket_id)
    row = {
        **state,
        "ticket_id": ticket_id,
        "created_at": ticket["created_at"],
        "label_category": ticket["category"],
        "label_priority": ticket["priority"],
    }
    out = _ticket_out(row, served[0] if served else None)
    return TicketDetail(
        **out.model_dump(),
        subject=ticket["subject"],
        body=ticket["body"],
        channel=ticket["channel"],
        customer_id=ticket["customer_id"],
        language=ticket["language"],
        predictions=[_triage(p) for p in served],
        labels=[_label_change(r) for r in events.ticket_labels(conn, ticket_id)],
        events=[_event(e) for e in events.ticket_events(conn, ticket_id)],
    )


def _encode_cursor(row: dict[str, Any]) -> str:
    created_at = row["created_at"]
    key = [None if created_at is None else created_at.isoformat(), row["ticket_id"]]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime | None, str]:
    """The (created_at, ticket_id) a ``next_cursor`` stands for.

    Raises:
        InvalidError: ``cursor`` is not one :func:`list_tickets` gave.
    """
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, ticket_id = json.loads(text)
        if not isinstance(ticket_id, str):
            raise TypeError(ticket_id)
        return (None if created is None else datetime.fromisoformat(created)), ticket_id
    except (ValueError, TypeError):
        raise InvalidError("cursor is not a next_cursor this API gave", "cursor") from None


def list_tickets(conn: Connection, settings: Settings, query: ListQuery) -> TicketPage:
    """A page of tickets matching ``query``, newest first, and the cursor of the next page.

    Raises:
        InvalidError: a cursor this API did not give.
    """
    limit = min(query.limit, settings.api.max_page_size)
    after = None if query.cursor is None else _decode_cursor(query.cursor)
    rows = events.list_tickets(conn, query, after, limit + 1)
    page = rows[:limit]
    served = events.latest_predictions(conn, [r["ticket_id"] for r in page])
    return TicketPage(
        items=[_ticket_out(r, served.get(r["ticket_id"])) for r in page],
        next_cursor=_encode_cursor(page[-1]) if len(rows) > limit else None,
    )
