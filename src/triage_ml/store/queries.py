"""The queries the stages need: reads, batch writes, predictions and decisions.

Portable SQL only (SQLite by default, PostgreSQL in production). Timestamps
are stored as naive UTC and handed back as tz-aware UTC pandas timestamps.
Every write that belongs to one batch runs inside one transaction opened by
the caller, so a failure leaves the store as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from triage_ml.store.engine import utcnow
from triage_ml.store.tables import (
    ACCEPTED,
    BLOCKED,
    PENDING,
    TICKET_FIELDS,
    alias_intents,
    alias_locks,
    batches,
    decisions,
    feedback,
    predictions,
    quarantine,
    surveys,
    tickets,
)

# Labels of the heads beyond category and priority (issue 27). Not in TICKET_FIELDS, so they stay
# out of a ticket's content hash: adding them to stored tickets keeps the hashes (and ids).
HEAD_LABEL_FIELDS: tuple[str, ...] = ("subcategory", "type", "team")


def _naive_utc(values: pd.Series) -> pd.Series:
    # Vectorised: naive UTC datetimes in an object Series, None where missing
    # (an object Series, or pandas would turn None back into NaT).
    stamps = pd.to_datetime(values, utc=True).dt.tz_convert(None)
    return pd.Series(stamps.dt.to_pydatetime(), index=values.index, dtype=object).where(
        stamps.notna(), None
    )


def _records(frame: pd.DataFrame, time_columns: Sequence[str]) -> list[dict[str, Any]]:
    out = frame.astype(object).where(frame.notna(), None)
    for column in time_columns:
        out[column] = _naive_utc(frame[column])
    columns = list(out.columns)
    # zip over columns is several times faster than DataFrame.to_dict("records").
    return [dict(zip(columns, row)) for row in zip(*(out[c].tolist() for c in columns))]


_IN_SIZE = (
    2_000  # ids per lookup: far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters
)


def _in_chunks(values: Sequence[str], size: int = _IN_SIZE) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@lru_cache(maxsize=32)
def _lookup_sql(
    dialect: sa.Dialect, table: sa.Table, key: str, columns: tuple[str, ...]
) -> tuple[str, tuple[str, ...] | None]:
    # Compiled once per (dialect, table, columns) and sent to the driver as
    # is: SQLAlchemy's per-call IN-list expansion cost more than the query
    # itself on the ingest hot path (docs/benchmarks.md).
    params = [sa.bindparam(f"p{i}") for i in range(_IN_SIZE)]
    statement = sa.select(*(table.c[c] for c in columns)).where(table.c[key].in_(params))
    compiled = statement.compile(dialect=dialect)
    return str(compiled), (tuple(compiled.positiontup) if compiled.positional else None)


def _lookup(
    conn: Connection, table: sa.Table, key: str, columns: tuple[str, ...], ids: Sequence[str]
) -> Iterator[Any]:
    """Rows of ``columns`` from ``table`` whose ``key`` is in ``ids``, in fixed-size IN lists."""
    sql, order = _lookup_sql(conn.dialect, table, key, columns)
    for chunk in _in_chunks(ids):
        part = list(chunk)
        part += [part[-1]] * (
            _IN_SIZE - len(part)
        )  # pad with a repeat: one statement fits every chunk
        named = {f"p{i}": value for i, value in enumerate(part)}
        yield from conn.exec_driver_sql(sql, tuple(named[p] for p in order) if order else named)


def existing_hashes(
    conn: Connection, table: sa.Table, key: str, ids: Sequence[str]
) -> dict[str, str]:
    """Map each id already stored in ``table`` to its content hash."""
    hash_column = "content_hash" if "content_hash" in table.c else key
    return {row[0]: row[1] for row in _lookup(conn, table, key, (key, hash_column), list(ids))}


def stored_versions(conn: Connection, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Map each stored ticket id to (content hash, batch id)."""
    rows = _lookup(conn, tickets, "ticket_id", ("ticket_id", "content_hash", "batch_id"), list(ids))
    return {row[0]: (row[1], row[2]) for row in rows}


def stored_head_labels(
    conn: Connection, ids: Sequence[str], columns: Sequence[str] = HEAD_LABEL_FIELDS
) -> pd.DataFrame:
    """Stored head labels (``columns`` of :data:`HEAD_LABEL_FIELDS`) of tickets, by ticket id."""
    fields = ("ticket_id", *columns)
    rows = [tuple(row) for row in _lookup(conn, tickets, "ticket_id", fields, list(ids))]
    return pd.DataFrame(rows, columns=list(fields)).set_index("ticket_id")


CONTACT_COLUMNS: tuple[str, ...] = ("ticket_id", "customer_id", "created_at")


def customer_contacts(conn: Connection) -> pd.DataFrame:
    """``ticket_id``, ``customer_id`` and ``created_at`` of every ticket with a customer."""
    statement = sa.select(*(tickets.c[c] for c in CONTACT_COLUMNS)).where(
        tickets.c.customer_id.is_not(None)
    )
    return _frame(conn, statement, ("created_at",))


def existing_ids(conn: Connection, table: sa.Table, key: str, ids: Iterable[str]) -> set[str]:
    """The subset of ``ids`` present in ``table``."""
    return set(existing_hashes(conn, table, key, list(ids)))


_SQLITE_TIME_FORMAT = (
    "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's own storage format for DateTime on SQLite
)


def _driver_times(values: pd.Series, dialect: sa.Dialect) -> pd.Series:
    stamps = pd.to_datetime(values, utc=True).dt.tz_convert(None)
    if dialect.name == "sqlite":
        text = stamps.dt.strftime(_SQLITE_TIME_FORMAT)
        return text.astype(object).where(stamps.notna(), None)
    return pd.Series(stamps.dt.to_pydatetime(), index=values.index, dtype=object).where(
        stamps.notna(), None
    )


def insert_rows(
    conn: Connection, table: sa.Table, frame: pd.DataFrame, time_columns: Sequence[str]
) -> int:
    """Insert every row of ``frame`` into ``table``; returns the row count.

    This is the ingest and scoring hot path. SQLAlchemy's per-row parameter
    processing was most of the ingest time, so the compiled
    INSERT is sent to the driver's executemany with values already in the
    form the dialect stores (timestamps formatted as SQLAlchemy does).
    """
    if frame.empty:
        return 0
    # Time columns are formatted straight from datetime64: boxing them as
    # Timestamp objects first cost more than the rest of the conversion.
    plain = frame.drop(columns=list(time_columns))
    out = plain.astype(object).where(plain.notna(), None)
    for column in time_columns:
        out[column] = _driver_times(frame[column], conn.dialect)
    columns = list(out.columns)
    compiled = table.insert().compile(dialect=conn.dialect, column_keys=columns)
    if compiled.positional:
        params: list[Any] = list(zip(*(out[key].tolist() for key in compiled.positiontup)))
    else:
        params = [dict(zip(columns, row)) for row in zip(*(out[c].tolist() for c in columns))]
    conn.exec_driver_sql(str(compiled), params)
    return len(frame)


def update_tickets(conn: Connection, frame: pd.DataFrame) -> int:
    """Overwrite stored tickets whose content changed (upsert by ticket id)."""
    if frame.empty:
        return 0
    # A file without created_at updates the other columns and leaves the stored time alone.
    records = _records(frame, [c for c in ("created_at", "ingested_at") if c in frame.columns])
    columns = [c for c in frame.columns if c != "ticket_id"]
    statement = (
        tickets.update()
        .where(tickets.c.ticket_id == sa.bindparam("key"))
        .values({c: sa.bindparam(c) for c in columns})
    )
    conn.execute(statement, [{**r, "key": r["ticket_id"]} for r in records])
    return len(records)


def record_batch(conn: Connection, batch: dict[str, Any]) -> None:
    """Write one batch summary row."""
    conn.execute(batches.insert(), [{**batch, "created_at": utcnow()}])


def quarantine_rows(
    conn: Connection, batch_id: str, kind: str, rows: Sequence[dict[str, Any]]
) -> int:
    """Store rejected rows with their raw content and reasons."""
    if not rows:
        return 0
    now = utcnow()
    records = [
        {
            "batch_id": batch_id,
            "kind": kind,
            "row_number": r["row_number"],
            "raw": json.dumps(r["raw"], default=str, ensure_ascii=False),
            "reasons": json.dumps(r["reasons"], ensure_ascii=False),
            "created_at": now,
        }
        for r in rows
    ]
    conn.execute(quarantine.insert(), records)
    return len(records)


def _frame(
    conn: Connection, statement: sa.Select, time_columns: Sequence[str] = ()
) -> pd.DataFrame:
    result = conn.execute(statement)
    return _rows_frame(result.fetchall(), list(result.keys()), time_columns)


def _rows_frame(
    rows: Sequence[Any], columns: Sequence[str], time_columns: Sequence[str]
) -> pd.DataFrame:
    """Result rows as a frame, ``time_columns`` tz-aware UTC (SQLite's driver gives text)."""
    # Plain tuples: given SQLAlchemy rows, pandas asks each for a ``dtype``
    # attribute, which a row answers by raising and catching a KeyError.
    frame = pd.DataFrame([tuple(row) for row in rows], columns=list(columns))
    for column in time_columns:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def labeled_tickets(conn: Connection) -> pd.DataFrame:
    """Labeled tickets of batches not blocked by batch validation, with their batch id and
    head labels (:data:`HEAD_LABEL_FIELDS`, None where a ticket has none)."""
    fields = (*TICKET_FIELDS, *HEAD_LABEL_FIELDS, "batch_id")
    columns = [tickets.c[name] for name in fields]
    statement = (
        sa.select(*columns)
        .join(batches, batches.c.batch_id == tickets.c.batch_id)
        .where(tickets.c.category.is_not(None), batches.c.status != BLOCKED)
        .order_by(tickets.c.created_at, tickets.c.ticket_id)
    )
    return _frame(conn, statement, ("created_at",))


def count_labeled(conn: Connection) -> int:
    """Number of the tickets :func:`labeled_tickets` reads, without reading them."""
    statement = (
        sa.select(sa.func.count())
        .select_from(tickets)
        .join(batches, batches.c.batch_id == tickets.c.batch_id)
        .where(tickets.c.category.is_not(None), batches.c.status != BLOCKED)
    )
    return int(conn.execute(statement).scalar_one())


def recent_batch_volumes(conn: Connection, kind: str, limit: int = 5) -> list[int]:
    """Rows read by the newest accepted batches of ``kind``."""
    statement = (
        sa.select(batches.c.rows_read)
        .where(batches.c.kind == kind, batches.c.status == ACCEPTED)
        .order_by(batches.c.created_at.desc())
        .limit(limit)
    )
    return [int(v) for v in conn.execute(statement).scalars()]


def category_shares(conn: Connection) -> dict[str, float]:
    """Share of each category among labeled tickets of accepted batches."""
    statement = (
        sa.select(tickets.c.category, sa.func.count())
        .join(batches, batches.c.batch_id == tickets.c.batch_id)
        .where(tickets.c.category.is_not(None), batches.c.status == ACCEPTED)
        .group_by(tickets.c.category)
    )
    counts = {str(c): int(n) for c, n in conn.execute(statement)}
    total = sum(counts.values())
    return {c: n / total for c, n in counts.items()} if total else {}


def mean_body_length(conn: Connection) -> float | None:
    """Mean body length of stored tickets, or None for an empty store."""
    value = conn.execute(sa.select(sa.func.avg(sa.func.length(tickets.c.body)))).scalar()
    return None if value is None else float(value)


def list_batches(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ingest batches with their counts, status and validation failures."""
    statement = sa.select(batches).order_by(batches.c.created_at.desc()).limit(limit)
    out = []
    for row in conn.execute(statement).mappings():
        record = dict(row)
        report = json.loads(record.pop("report") or "{}")
        record["failures"] = report.get("expectations", {}).get("failures", [])
        record["data_docs"] = report.get("expectations", {}).get("data_docs")
        out.append(record)
    return out


def set_batch_status(conn: Connection, batch_id: str, status: str, note: str) -> bool:
    """Change a batch's status (accept a blocked one after review); False if there is none."""
    row = conn.execute(sa.select(batches.c.report).where(batches.c.batch_id == batch_id)).first()
    if row is None:
        return False
    report = json.loads(row.report or "{}")
    report.setdefault("status_changes", []).append(
        {"status": status, "note": note, "at": utcnow().isoformat()}
    )
    conn.execute(
        batches.update()
        .where(batches.c.batch_id == batch_id)
        .values(status=status, report=json.dumps(report))
    )
    return True


def all_feedback(conn: Connection) -> pd.DataFrame:
    """Every stored agent correction, oldest first."""
    statement = sa.select(feedback).order_by(feedback.c.corrected_at, feedback.c.feedback_id)
    return _frame(conn, statement, ("corrected_at", "ingested_at"))


def all_surveys(conn: Connection) -> pd.DataFrame:
    """Every stored CSAT survey."""
    return _frame(
        conn, sa.select(surveys).order_by(surveys.c.answered_at), ("answered_at", "ingested_at")
    )


def _unscored(model_version: str | None) -> Any:
    """Tickets with no prediction by ``model_version`` (None: by no version at all)."""
    scored = sa.select(predictions.c.ticket_id).where(
        predictions.c.ticket_id == tickets.c.ticket_id
    )
    if model_version is not None:
        scored = scored.where(predictions.c.model_version == model_version)
    return ~sa.exists(scored)


def unscored_tickets(
    conn: Connection,
    model_version: str | None,
    limit: int,
    after: str | None = None,
    upto: str | None = None,
    repeat_window_days: int | None = None,
) -> pd.DataFrame:
    """Up to ``limit`` unscored tickets with ``after < ticket_id <= upto`` (see :func:`_unscored`).

    Keyset pagination on ticket_id keeps every read constant in memory and cost.
    With ``repeat_window_days``, each ticket comes with its ``repeat_contacts``
    (see :func:`repeat_contacts_column`).
    """
    columns: list[Any] = [
        tickets.c[name] for name in TICKET_FIELDS if name not in ("category", "priority")
    ]
    if repeat_window_days is not None:
        columns.append(repeat_contacts_column(conn.dialect.name, repeat_window_days))
    statement = sa.select(*columns).where(_unscored(model_version))
    if after is not None:
        statement = statement.where(tickets.c.ticket_id > after)
    if upto is not None:
        statement = statement.where(tickets.c.ticket_id <= upto)
    statement = statement.order_by(tickets.c.ticket_id).limit(limit)
    frame = _frame(conn, statement, ("created_at",))
    if repeat_window_days is not None:
        frame["repeat_contacts"] = frame["repeat_contacts"].astype(
            float
        )  # None (unknown) becomes NaN
    return frame


def repeat_contacts_column(dialect: str, window_days: int) -> sa.ColumnElement[Any]:
    """Per ticket, how many stored tickets its customer opened in the ``window_days`` before it.

    The database's count of what :func:`triage_ml.features.repeat_contacts`
    counts in memory, by the same rule: whole seconds, a contact counts when
    created at or after the ticket's second minus the window and before that
    second; NULL when the ticket has no customer or no time. Counted here,
    each ticket is one range of ``ix_tickets_customer_history``, where
    counting in memory had to fetch its customers' whole window of history
    as rows first (about twice as slow: docs/benchmarks.md).
    """
    contact = tickets.alias("contact")
    ticket_time = tickets.c.created_at
    if dialect == "sqlite":
        # Stored as text in _SQLITE_TIME_FORMAT: its first 19 characters are the
        # second, and text order is time order ('S' sorts before 'S.ffffff').
        second: Any = sa.func.substr(ticket_time, 1, 19)
        since: Any = sa.func.datetime(second, f"-{int(window_days)} days")
    else:
        second = sa.func.date_trunc("second", ticket_time, type_=sa.DateTime)
        since = second - sa.literal_column(f"INTERVAL '{int(window_days)} days'", sa.Interval)
    count = (
        sa.select(sa.func.count())
        .select_from(contact)
        .where(
            contact.c.customer_id == tickets.c.customer_id,
            contact.c.created_at >= since,
            contact.c.created_at < second,
        )
        .scalar_subquery()
    )
    unknown = tickets.c.customer_id.is_(None) | ticket_time.is_(None)
    return sa.case((unknown, sa.null()), else_=count).label("repeat_contacts")


def count_unscored(conn: Connection, model_version: str | None) -> int:
    """How many tickets :func:`_unscored` holds."""
    return count_rows(conn, tickets, _unscored(model_version))


def unscored_ids_at(conn: Connection, model_version: str | None, positions: list[int]) -> list[str]:
    """Ids at these 0-based positions of the unscored tickets in id order (none past the end)."""
    base = (
        sa.select(tickets.c.ticket_id).where(_unscored(model_version)).order_by(tickets.c.ticket_id)
    )
    found = (conn.execute(base.limit(1).offset(position)).scalar() for position in positions)
    return [str(ticket_id) for ticket_id in found if ticket_id is not None]


def write_predictions(conn: Connection, frame: pd.DataFrame, table: sa.Table = predictions) -> int:
    """Insert predictions that are not stored yet into ``table`` (``predictions``, or the
    shadow challenger's ``shadow_predictions``); returns how many were new."""
    if frame.empty:
        return 0
    version = str(frame["model_version"].iloc[0])
    stored: set[str] = set()
    for part in _in_chunks(frame["ticket_id"].tolist()):
        stored.update(
            conn.execute(
                sa.select(table.c.ticket_id).where(
                    table.c.model_version == version, table.c.ticket_id.in_(part)
                )
            ).scalars()
        )
    fresh = frame[~frame["ticket_id"].isin(stored)]
    return insert_rows(conn, table, fresh, ("scored_at",))


def record_decision(conn: Connection, decision: dict[str, Any]) -> int:
    """Append a promotion/rollback decision to the audit table; returns its id."""
    row = {**decision, "decided_at": utcnow()}
    if isinstance(row.get("details"), dict):
        row["details"] = json.dumps(row["details"], default=str)
    result = conn.execute(decisions.insert().returning(decisions.c.id), row)
    return int(result.scalar_one())


def lock_aliases(engine: Engine, conn: Connection, model_name: str) -> None:
    """Take the write lock on ``model_name``'s aliases for the rest of ``conn``'s transaction.

    Another transaction that calls this for the same model blocks until this
    one commits or rolls back.
    """
    try:
        with engine.begin() as setup:
            setup.execute(alias_locks.insert(), [{"model_name": model_name, "locked_at": utcnow()}])
    except sa.exc.IntegrityError:
        pass  # the row exists already: the usual case
    conn.execute(
        alias_locks.update()
        .where(alias_locks.c.model_name == model_name)
        .values(locked_at=utcnow())
    )


def write_intent(conn: Connection, intent: dict[str, Any]) -> int:
    """Add a pending alias-move intent; returns its id (committed by the caller)."""
    row = {**intent, "state": PENDING, "started_at": utcnow()}
    result = conn.execute(alias_intents.insert().returning(alias_intents.c.id), row)
    return int(result.scalar_one())


def close_intent(conn: Connection, intent_id: int, state: str) -> None:
    """Mark an intent ``done`` or ``undone``."""
    conn.execute(
        alias_intents.update()
        .where(alias_intents.c.id == intent_id)
        .values(state=state, closed_at=utcnow())
    )


def pending_intents(conn: Connection, model_name: str) -> list[dict[str, Any]]:
    """The model's intents still pending, oldest first."""
    statement = (
        sa.select(alias_intents)
        .where(alias_intents.c.model_name == model_name, alias_intents.c.state == PENDING)
        .order_by(alias_intents.c.id)
    )
    return [dict(row) for row in conn.execute(statement).mappings()]


def last_promotion(conn: Connection, model_name: str) -> dict[str, Any] | None:
    """The newest audit row of ``model_name`` that moved the champion, or None."""
    statement = (
        sa.select(decisions)
        .where(decisions.c.model_name == model_name, decisions.c.promoted.is_(True))
        .order_by(decisions.c.id.desc())
        .limit(1)
    )
    row = conn.execute(statement).mappings().first()
    return None if row is None else dict(row)


def version_decision(conn: Connection, model_name: str, version: str) -> dict[str, Any] | None:
    """The newest audit row about ``version`` (as ``challenger_version``), or None."""
    statement = (
        sa.select(decisions)
        .where(decisions.c.model_name == model_name, decisions.c.challenger_version == version)
        .order_by(decisions.c.id.desc())
        .limit(1)
    )
    row = conn.execute(statement).mappings().first()
    return None if row is None else dict(row)


def recent_decisions(conn: Connection, limit: int = 5) -> list[dict[str, Any]]:
    """The newest audit rows, newest first."""
    statement = sa.select(decisions).order_by(decisions.c.id.desc()).limit(limit)
    return [dict(row) for row in conn.execute(statement).mappings()]


def count_rows(conn: Connection, table: sa.Table, *where: Any) -> int:
    """Number of rows in ``table`` matching ``where``."""
    return int(
        conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
    )


def repeat_contacts_of(conn: Connection, ticket_id: str, window_days: int) -> float | None:
    """The stored ticket's ``repeat_contacts``, counted as batch scoring counts it.

    Returns:
        The count (see :func:`repeat_contacts_column`), or None when the ticket has no
        customer or no time, or is not stored.
    """
    statement = sa.select(repeat_contacts_column(conn.dialect.name, window_days)).where(
        tickets.c.ticket_id == ticket_id
    )
    found = conn.execute(statement).scalar()
    return None if found is None else float(found)
