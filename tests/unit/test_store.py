"""Unit tests of the ticket store: tables, upserts, timestamps, queries."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import store
from triage_ml.scoring import batch
from triage_model import features

pytestmark = pytest.mark.unit

NOW = pd.Timestamp("2026-03-01T00:00:00Z")


def tickets(n: int, **columns: object) -> pd.DataFrame:
    """``n`` minimal ticket rows ready for ``store.insert_rows``."""
    frame = pd.DataFrame(
        {
            "ticket_id": [f"T-{i:05d}" for i in range(n)],
            "created_at": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
            "body": [f"body {i}" for i in range(n)],
            "category": "Billing",
            "priority": "high",
            "content_hash": [f"h{i}" for i in range(n)],
            "batch_id": "b1",
            "ingested_at": NOW,
        }
    )
    return frame.assign(**columns)


def insert_tickets(engine: sa.Engine, frame: pd.DataFrame) -> int:
    """Insert tickets with accepted records of their batches (training reads only those)."""
    with engine.begin() as conn:
        known = store.existing_ids(
            conn, store.batches, "batch_id", frame["batch_id"].unique().tolist()
        )
        for batch_id in set(frame["batch_id"]) - known:
            store.record_batch(
                conn,
                {
                    "batch_id": batch_id,
                    "kind": "tickets",
                    "source": "test",
                    "rows_read": 1,
                    "rows_stored": 1,
                    "rows_quarantined": 0,
                    "rows_skipped": 0,
                    "status": store.ACCEPTED,
                    "report": None,
                },
            )
        return store.insert_rows(conn, store.tickets, frame, ("created_at", "ingested_at"))


def test_connect_creates_every_table(engine: sa.Engine) -> None:
    names = set(sa.inspect(engine).get_table_names())
    assert {
        "tickets",
        "feedback",
        "surveys",
        "batches",
        "quarantine",
        "predictions",
        "decisions",
    } <= names


def test_existing_hashes_handles_more_ids_than_one_statement_takes(engine: sa.Engine) -> None:
    assert insert_tickets(engine, tickets(2_000)) == 2_000
    wanted = [f"T-{i:05d}" for i in range(0, 2_500, 2)]
    with engine.connect() as conn:
        found = store.existing_hashes(conn, store.tickets, "ticket_id", wanted)
        ids = store.existing_ids(conn, store.tickets, "ticket_id", wanted)
    assert len(found) == 1_000 and found["T-01998"] == "h1998"
    assert ids == set(found)


def test_insert_of_nothing_writes_nothing(engine: sa.Engine) -> None:
    assert insert_tickets(engine, tickets(0)) == 0
    with engine.connect() as conn:
        assert store.count_rows(conn, store.tickets) == 0


def test_timestamps_are_stored_as_utc_and_read_back_tz_aware(engine: sa.Engine) -> None:
    stamps = pd.Series(
        [pd.Timestamp("2026-01-01T12:00:00+02:00"), pd.NaT, pd.Timestamp("2026-01-02T00:00:00Z")]
    )
    insert_tickets(engine, tickets(3).assign(created_at=stamps.astype("datetime64[ns, UTC]")))
    with engine.connect() as conn:
        raw = (
            conn.execute(sa.select(store.tickets.c.created_at).order_by(store.tickets.c.ticket_id))
            .scalars()
            .all()
        )
        frame = store.labeled_tickets(conn)
    assert raw == [datetime(2026, 1, 1, 10), None, datetime(2026, 1, 2)]
    assert str(frame["created_at"].dtype).endswith("UTC]")
    assert frame.set_index("ticket_id").at["T-00000", "created_at"] == pd.Timestamp(
        "2026-01-01T10:00:00Z"
    )


def test_update_tickets_writes_only_the_given_columns(engine: sa.Engine) -> None:
    insert_tickets(engine, tickets(3))
    change = pd.DataFrame(
        {
            "ticket_id": ["T-00001"],
            "body": ["new body"],
            "content_hash": ["x"],
            "batch_id": ["b2"],
            "ingested_at": [NOW],
            "created_at": [NOW],
        }
    )
    with engine.begin() as conn:
        assert store.update_tickets(conn, change) == 1
        assert store.update_tickets(conn, change.iloc[:0]) == 0
    with engine.connect() as conn:
        rows = {r.ticket_id: r for r in conn.execute(sa.select(store.tickets))}
    assert (rows["T-00001"].body, rows["T-00001"].category, rows["T-00001"].batch_id) == (
        "new body",
        "Billing",
        "b2",
    )
    assert rows["T-00000"].body == "body 0"


def test_quarantine_keeps_raw_rows_and_reasons_as_json(engine: sa.Engine) -> None:
    rows = [
        {"row_number": 3, "raw": {"body": "caf\u00e9", "when": NOW}, "reasons": ["body: too long"]}
    ]
    with engine.begin() as conn:
        assert store.quarantine_rows(conn, "b1", "tickets", rows) == 1
        assert store.quarantine_rows(conn, "b1", "tickets", []) == 0
    with engine.connect() as conn:
        row = conn.execute(sa.select(store.quarantine)).mappings().one()
    assert json.loads(row["raw"]) == {"body": "caf\u00e9", "when": str(NOW)}
    assert (row["row_number"], json.loads(row["reasons"]), row["kind"]) == (
        3,
        ["body: too long"],
        "tickets",
    )


def test_labeled_tickets_skips_unlabeled_and_orders_by_time(engine: sa.Engine) -> None:
    frame = tickets(4).assign(category=["Billing", None, "Sales", "Account"])
    insert_tickets(engine, frame.iloc[::-1])
    with engine.connect() as conn:
        labeled = store.labeled_tickets(conn)
    assert labeled["ticket_id"].tolist() == ["T-00000", "T-00002", "T-00003"]
    assert "batch_id" in labeled.columns


def test_write_predictions_is_idempotent_per_model_version(engine: sa.Engine) -> None:
    insert_tickets(engine, tickets(3))
    predictions = pd.DataFrame(
        {
            "ticket_id": ["T-00000", "T-00001"],
            "model_version": "1",
            "category": "Billing",
            "scored_at": NOW,
        }
    )
    with engine.begin() as conn:
        assert store.write_predictions(conn, predictions) == 2
        assert store.write_predictions(conn, predictions) == 0
        assert store.write_predictions(conn, predictions.assign(model_version="2")) == 2
    with engine.connect() as conn:
        assert store.unscored_tickets(conn, "1", limit=10)["ticket_id"].tolist() == ["T-00002"]
        assert store.unscored_tickets(conn, "3", limit=2, after="T-00000")[
            "ticket_id"
        ].tolist() == ["T-00001", "T-00002"]
        # None: tickets no version has scored (a new champion does not rescore unless asked).
        assert store.unscored_tickets(conn, None, limit=10)["ticket_id"].tolist() == ["T-00002"]


def test_partitions_cut_near_equal_key_ranges_that_cover_every_ticket(engine: sa.Engine) -> None:
    from triage_ml.scoring import batch

    insert_tickets(engine, tickets(7))
    with engine.connect() as conn:
        assert store.unscored_ids_at(conn, None, [2, 5]) == ["T-00002", "T-00005"]
        assert store.unscored_ids_at(conn, None, [6, 7]) == ["T-00006"]
    ranges = batch.partitions(engine, None, 3)
    assert ranges == [(None, "T-00001"), ("T-00001", "T-00003"), ("T-00003", None)]
    assert ids_per_range(engine, ranges) == [
        ["T-00000", "T-00001"],
        ["T-00002", "T-00003"],
        ["T-00004", "T-00005", "T-00006"],
    ]


def ids_per_range(
    engine: sa.Engine, ranges: list[tuple[str | None, str | None]]
) -> list[list[str]]:
    """The unscored ticket ids each key range holds."""
    with engine.connect() as conn:
        return [store.unscored_tickets(conn, None, 100, *r)["ticket_id"].tolist() for r in ranges]


@pytest.mark.parametrize(
    ("rows", "partition_rows", "workers", "sizes"),
    [
        (
            7,
            3,
            2,
            [1, 2, 2, 2],
        ),  # 3 ranges of at most 3 would leave one worker a second range alone
        (7, 4, 2, [3, 4]),
        (7, 100, 3, [2, 2, 3]),
        (7, 1, 2, [1] * 7),
        (0, 3, 2, [0]),
    ],
)
def test_partitions_share_the_tickets_equally_among_the_workers(
    engine: sa.Engine, rows: int, partition_rows: int, workers: int, sizes: list[int]
) -> None:
    from triage_ml.scoring import batch

    insert_tickets(engine, tickets(rows))
    parts = ids_per_range(engine, batch.partitions(engine, None, partition_rows, workers))
    assert [len(p) for p in parts] == sizes
    assert [i for part in parts for i in part] == [f"T-{i:05d}" for i in range(rows)]


def test_decisions_are_read_back_newest_first(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        first = store.record_decision(
            conn,
            {
                "action": "promote",
                "model_name": "m",
                "promoted": True,
                "reason": "better",
                "details": {"f1": 0.9},
            },
        )
        second = store.record_decision(
            conn, {"action": "reject", "model_name": "m", "promoted": False, "reason": "worse"}
        )
    with engine.connect() as conn:
        recent = store.recent_decisions(conn, limit=5)
        promoted = store.count_rows(conn, store.decisions, store.decisions.c.promoted.is_(True))
    assert [d["id"] for d in recent] == [second, first]
    assert json.loads(recent[1]["details"]) == {"f1": 0.9}
    assert promoted == 1


def test_customer_contacts_are_the_tickets_with_a_customer_to_the_microsecond(
    engine: sa.Engine,
) -> None:
    at = pd.Timestamp("2026-02-01T00:00:00.000001Z")
    insert_tickets(engine, tickets(3, created_at=[at, at, None], customer_id=["a", None, "b"]))
    with engine.connect() as conn:
        found = store.customer_contacts(conn).set_index("ticket_id")
    assert sorted(found.index) == ["T-00000", "T-00002"]
    assert found.at["T-00000", "created_at"] == at and pd.isna(found.at["T-00002", "created_at"])


def test_a_chunk_s_repeat_contacts_are_counted_from_one_index_on_sqlite(tmp_path) -> None:
    """One covering-index range per ticket: the count never reads the table or scans other
    customers."""
    engine = store.connect(f"sqlite:///{tmp_path / 'store.db'}")
    insert_tickets(engine, tickets(50, customer_id=[f"c{i % 7}" for i in range(50)]))
    statements: list[tuple[str, object]] = []
    sa.event.listen(
        engine,
        "before_cursor_execute",
        lambda conn, cursor, sql, params, *rest: statements.append((sql, params)),
    )
    with engine.connect() as conn:
        found = store.unscored_tickets(conn, None, 100, repeat_window_days=1)
        [(sql, params)] = statements
        plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()]
    engine.dispose()
    # Hourly tickets, each customer every 7 hours: 3 earlier contacts in a day.
    assert found["repeat_contacts"].tolist()[21:24] == [3.0, 3.0, 3.0], found[
        "repeat_contacts"
    ].tolist()
    counted = [step for step in plan if " contact" in step]  # SEARCH or SCAN of the aliased history
    assert counted and all(
        "USING COVERING INDEX ix_tickets_customer_history" in step for step in counted
    ), plan


def contact_history(seed: int, rows: int) -> pd.DataFrame:
    """Tickets of a few customers over four months, ids in no time order, with contacts on the
    window's edges."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01T00:00:00Z")
    times = start + pd.to_timedelta(rng.integers(0, 120 * 86_400 * 10**6, rows), unit="us")
    customers = rng.choice(np.array(["c1", "c2", "c3", "c4", None], dtype=object), rows)
    frame = tickets(rows, created_at=times, customer_id=customers).sample(frac=1, random_state=seed)
    frame["ticket_id"] = [f"T-{i:05d}" for i in range(rows)]
    # A ticket at .75 s; contacts right on and just before the start of its
    # window, and at the end: earlier in its own second (not counted) and
    # the microsecond before that second (counted).
    edge = frame["created_at"].iloc[0].floor("s") + pd.Timedelta(milliseconds=750)
    window, tick = pd.Timedelta(days=features.REPEAT_WINDOW_DAYS), pd.Timedelta(microseconds=1)
    second = edge.floor("s")
    frame.loc[frame.index[:5], ["created_at", "customer_id"]] = [
        (edge, "c9"),
        (second - window, "c9"),
        (second - window - tick, "c9"),
        (second + pd.Timedelta(milliseconds=100), "c9"),
        (second - tick, "c9"),
    ]
    frame.loc[frame.index[5], "created_at"] = pd.NaT
    return frame


def test_scored_repeat_contacts_equal_those_counted_from_the_whole_history(
    engine: sa.Engine,
) -> None:
    insert_tickets(engine, contact_history(seed=7, rows=80))
    with engine.connect() as conn:
        everything = store.unscored_tickets(conn, None, limit=1_000)
        unbounded = pd.Series(
            features.repeat_contacts(everything, store.customer_contacts(conn)),
            index=everything["ticket_id"],
        )
    assert unbounded.isna().any() and (unbounded > 2).any() and unbounded["T-00000"] == 2
    for chunk_rows in (1, 7, 1_000):
        chunks = pd.concat(batch.unscored_chunks(engine, None, chunk_rows))
        scored = chunks.set_index("ticket_id")["repeat_contacts"]
        pd.testing.assert_series_equal(scored, unbounded, check_names=False)


def test_update_tickets_without_created_at_keeps_the_stored_time(engine: sa.Engine) -> None:
    # A re-ingest from a file with no created_at column used to fail with KeyError 'created_at'.
    insert_tickets(engine, tickets(2))
    with engine.connect() as conn:
        before = conn.execute(
            sa.select(store.tickets.c.created_at).where(store.tickets.c.ticket_id == "T-00001")
        ).scalar_one()
    change = pd.DataFrame(
        {"ticket_id": ["T-00001"], "body": ["changed"], "batch_id": ["b3"], "ingested_at": [NOW]}
    )
    with engine.begin() as conn:
        assert store.update_tickets(conn, change) == 1
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(store.tickets).where(store.tickets.c.ticket_id == "T-00001")
        ).one()
    assert (row.body, row.created_at) == ("changed", before)
