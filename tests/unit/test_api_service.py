"""The events API's service on a real store (SQLite and PostgreSQL): the life of a ticket,
its label history and events, lists, and bad input that leaves the store as it was."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import store
from triage_ml.api import service
from triage_ml.api.errors import ApiError
from triage_ml.api.schemas import ListQuery, Status, TicketClose, TicketIn, TicketUpdate
from triage_ml.ingest import batches
from triage_ml.ingest.mapping import ColumnMapping
from triage_ml.settings import Settings
from triage_ml.store import events
from triage_ml.store.tables import AUTO_APPLIED, CONFIRMED, CORRECTED
from triage_ml.training import dataset

pytestmark = pytest.mark.unit

CATEGORIES = ("Account", "Billing", "Shipping")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Answer:
    """The shape of ``triage_ml.api.triage.Answer``."""

    champion: pd.DataFrame
    shadow: pd.DataFrame | None


class FixedTriager:
    """A stand-in for the real Triager: answers from keywords of the body, like a tiny model.

    "ship" -> Shipping, "login" -> Account, else Billing; "urgent" -> priority urgent and tier
    review, "auto" -> tier auto; otherwise high and suggest. With ``shadow``, a challenger
    (version "8") answers too.
    """

    champion_version = "7"

    def __init__(self, shadow: bool = False) -> None:
        self.shadow = shadow
        self.seen: list[pd.DataFrame] = []

    def categories(self) -> frozenset[str]:
        return frozenset(CATEGORIES)

    def refresh_if_due(self) -> None:
        return None

    def _row(self, ticket: pd.Series, version: str) -> dict:
        body = str(ticket["body"]).lower()
        category = "Shipping" if "ship" in body else "Account" if "login" in body else "Billing"
        tier = "review" if "urgent" in body else "auto" if "auto" in body else "suggest"
        others = [c for c in CATEGORIES if c != category]
        return {
            "ticket_id": ticket["ticket_id"],
            "category": category,
            "category_proba": 0.8,
            "top3": json.dumps(
                [
                    {"category": c, "proba": p}
                    for c, p in zip([category, *others], (0.8, 0.15, 0.05))
                ]
            ),
            "priority": "urgent" if "urgent" in body else "high",
            "priority_proba": 0.7,
            "sentiment": -0.2,
            "route": f"{category.lower()}-queue",
            "needs_review": tier == "review",
            "tier": tier,
            # Issue 27's answers: "urgent" raises a legal signal, "ship" reads as German.
            "language": "de" if "ship" in body else "en",
            "escalation": json.dumps(["legal"] if "urgent" in body else []),
            "priority_score": 80.0 if "urgent" in body else 40.0,
            "priority_parts": json.dumps({"model": 40.0, "value": None, "sentiment": None}),
            "priority_review": "urgent" in body,
            "possible_duplicates": "[]",
            "model_version": version,
            "scored_at": pd.Timestamp.now(tz="UTC"),
        }

    def answer(self, conn: sa.Connection, ticket: pd.DataFrame) -> Answer:
        # The contract: one row of store columns, already stored in the caller's transaction.
        assert list(ticket.columns) == list(service.TRIAGE_COLUMNS) and len(ticket) == 1
        assert events.ticket_row(conn, str(ticket["ticket_id"].iloc[0])) is not None
        self.seen.append(ticket)
        row = ticket.iloc[0]
        shadow = pd.DataFrame([self._row(row, "8")]) if self.shadow else None
        return Answer(pd.DataFrame([self._row(row, "7")]), shadow)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture(params=["one-row", "chain"])
def label_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Labels written by the one-row path, or (as when it doubts them) by the whole chain."""
    if request.param == "chain":
        monkeypatch.setattr(service.onerow, "check_feedback", lambda raw, schema: None)
    return request.param


def ticket(ticket_id: str | None, body: str, hours: float = 0, **extra) -> TicketIn:
    fields = {
        "ticket_id": ticket_id,
        "subject": "Hello",
        "body": body,
        "created_at": T0 + timedelta(hours=hours),
        "channel": "email",
        "customer_id": "cust-1",
        "customer_tier": "gold",
        "customer_ltv": 120.5,
        "language": "en",
    }
    return TicketIn(**{**fields, **extra})


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: store.count_rows(conn, t) for t in store.metadata.sorted_tables}


def create(engine: sa.Engine, settings: Settings, triager, payload: TicketIn):
    with engine.begin() as conn:
        return service.create_ticket(conn, settings, triager, payload, NOW)


def update(engine: sa.Engine, settings: Settings, ticket_id: str, **change):
    with engine.begin() as conn:
        return service.update_ticket(
            conn, settings, FixedTriager(), ticket_id, TicketUpdate(**change), NOW
        )


def close(engine: sa.Engine, settings: Settings, ticket_id: str, **given):
    with engine.begin() as conn:
        return service.close_ticket(
            conn, settings, FixedTriager(), ticket_id, TicketClose(**given), NOW
        )


def detail(engine: sa.Engine, ticket_id: str):
    with engine.connect() as conn:
        return service.get_ticket(conn, ticket_id)


def api_batches(engine: sa.Engine, kind: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(store.batches).where(
                store.batches.c.kind == kind, store.batches.c.source == "api"
            )
        )
        return [dict(r) for r in rows.mappings()]


# ---- the life of a ticket ------------------------------------------------------------------


def test_create_triages_stores_and_opens_the_lifecycle(
    engine: sa.Engine, settings: Settings
) -> None:
    triager = FixedTriager(shadow=True)
    out = create(engine, settings, triager, ticket("T-1", "Where is my invoice?"))
    assert (out.ticket_id, out.status, out.category, out.priority) == (
        "T-1",
        Status.NEW,
        "Billing",
        "high",
    )
    assert (out.tier, out.needs_review) == ("suggest", False)
    assert out.created_at == T0
    assert out.sla_due_at == T0 + timedelta(hours=24)  # "high" is due in a day by default
    assert out.triage.model_version == "7" and out.triage.route == "billing-queue"
    assert [c.category for c in out.triage.top3] == ["Billing", "Account", "Shipping"]
    assert (out.triage.language, out.triage.escalation, out.triage.priority_review) == (
        "en",
        [],
        False,
    )
    assert out.triage.priority_parts == {"model": 40.0, "value": None, "sentiment": None}
    assert out.triage.possible_duplicates == [] and out.triage.subcategory is None
    found = counts(engine)
    assert (found["tickets"], found["predictions"], found["shadow_predictions"]) == (1, 1, 1)
    assert (found["ticket_state"], found["ticket_events"], found["batches"]) == (1, 1, 1)
    [batch] = api_batches(engine, "tickets")
    assert (
        batch["rows_read"],
        batch["rows_stored"],
        batch["rows_quarantined"],
        batch["rows_skipped"],
    ) == (1, 1, 0, 0)
    assert batch["status"] == store.ACCEPTED
    with engine.connect() as conn:
        row = events.ticket_row(conn, "T-1")
    assert row["batch_id"] == batch["batch_id"] and row["category"] is None  # unlabeled
    assert row["customer_ltv"] == 120.5 and row["body"] == "Where is my invoice?"


def test_update_and_close_record_corrections_status_and_final_labels(
    engine: sa.Engine, settings: Settings, label_path: str
) -> None:
    create(engine, settings, FixedTriager(), ticket("T-1", "Where is my invoice?"))
    assert update(engine, settings, "T-1", status="open", agent_id="a-1").status == Status.OPEN
    before = counts(engine)
    assert update(engine, settings, "T-1", status="open").status == Status.OPEN  # a no-op
    assert counts(engine) == before
    corrected = update(
        engine, settings, "T-1", category="Shipping", agent_id="a-1", reason="parcel"
    )
    assert (corrected.category, corrected.status) == ("Shipping", Status.OPEN)
    moved = update(engine, settings, "T-1", priority="URGENT", agent_id="a-2")
    assert (moved.priority, moved.sla_due_at) == ("urgent", T0 + timedelta(hours=8))
    closed = close(engine, settings, "T-1", resolution="sent again", agent_id="a-2")
    assert (closed.status, closed.closed_at, closed.resolution) == (
        Status.CLOSED,
        NOW,
        "sent again",
    )
    assert (closed.category, closed.priority) == ("Shipping", "urgent")

    got = detail(engine, "T-1")
    # The labels in effect already came from feedback, so closing added no row.
    assert [(r.category, r.priority, r.label_source, r.agent_id) for r in got.labels] == [
        ("Shipping", None, CORRECTED, "a-1"),
        (None, "urgent", CORRECTED, "a-2"),
    ]
    assert got.labels[0].model_version == "7" and got.labels[0].reason == "parcel"
    assert [(e.kind, e.from_status, e.to_status) for e in got.events] == [
        ("created", None, Status.NEW),
        ("status", Status.NEW, Status.OPEN),
        ("corrected", Status.OPEN, Status.OPEN),
        ("corrected", Status.OPEN, Status.OPEN),
        ("closed", Status.OPEN, Status.CLOSED),
    ]
    assert [p.model_version for p in got.predictions] == [
        "7"
    ] and got.body == "Where is my invoice?"
    assert [(b["rows_read"], b["rows_stored"]) for b in api_batches(engine, "feedback")] == [
        (1, 1)
    ] * 2
    reopened = update(engine, settings, "T-1", status="reopened")
    assert (reopened.status, reopened.closed_at) == (Status.REOPENED, None)


def test_close_records_the_final_labels_with_their_provenance(
    engine: sa.Engine, settings: Settings, label_path: str
) -> None:
    triager = FixedTriager()
    for ticket_id, body in [
        ("A", "auto refund"),
        ("S", "invoice"),
        ("G", "invoice"),
        ("C", "invoice"),
    ]:
        create(engine, settings, triager, ticket(ticket_id, body))
    close(engine, settings, "A")  # tier auto, nobody looked: auto-applied
    close(engine, settings, "S")  # tier suggest, nothing given: the agent accepted it
    close(engine, settings, "G", category="Billing", agent_id="a-3")  # the served answer, given
    close(engine, settings, "C", category="Account", priority="low", agent_id="a-3")
    sources = {
        t: [(r.category, r.priority, r.label_source) for r in detail(engine, t).labels]
        for t in "ASGC"
    }
    assert sources == {
        "A": [("Billing", "high", AUTO_APPLIED)],
        "S": [("Billing", "high", CONFIRMED)],
        "G": [("Billing", "high", CONFIRMED)],
        "C": [("Account", "low", CORRECTED)],
    }
    assert detail(engine, "C").sla_due_at == T0 + timedelta(hours=336)


def test_api_rows_are_the_rows_batch_ingest_writes(
    engine: sa.Engine, settings: Settings, tmp_path: Path
) -> None:
    payload = ticket("T-9", "Parcel never shipped", campaign_id="spring")
    create(engine, settings, FixedTriager(), payload)
    update(engine, settings, "T-9", category="Billing", agent_id="a-1")
    csv = tmp_path / "tickets.csv"
    pd.DataFrame(
        [
            {
                "ticket_id": "T-9",
                "subject": "Hello",
                "body": "Parcel never shipped",
                "created_at": "2026-11-02 09:00:00",
                "channel": "email",
                "customer_id": "cust-1",
                "customer_tier": "gold",
                "customer_ltv": "120.5",
                "language": "en",
                "campaign_id": "spring",
            }
        ]
    ).to_csv(csv, index=False)
    options = batches.IngestOptions(priority_levels=settings.priority_levels)
    again = batches.ingest_tickets(engine, csv, ColumnMapping(labeled=False), options)
    assert (again.read, again.stored, again.skipped) == (1, 0, 1)  # same content hash: unchanged
    with engine.connect() as conn:
        [stored] = events.ticket_labels(conn, "T-9")
    feedback_csv = tmp_path / "feedback.csv"
    fields = (
        "ticket_id",
        "corrected_category",
        "corrected_priority",
        "agent_id",
        "corrected_at",
        "reason",
    )
    pd.DataFrame([{k: stored[k] for k in fields}]).to_csv(feedback_csv, index=False)
    replay = batches.ingest_feedback(engine, feedback_csv, options)
    assert (replay.read, replay.stored, replay.skipped) == (1, 0, 1)  # same feedback id


def test_the_fast_path_and_the_chain_write_the_same_rows(
    engine: sa.Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = ticket("F-1", "  Grüße, my parcel 🙂 ", campaign_id="spring")
    verdicts: list = []

    def spy(raw: dict, schema: object) -> dict | None:
        verdicts.append(plain(raw, schema))
        return verdicts[-1]

    plain = service.onerow.check_ticket
    monkeypatch.setattr(service.onerow, "check_ticket", spy)
    create(engine, settings, FixedTriager(), payload)
    assert verdicts[-1] is not None  # it took the one-row path
    monkeypatch.setattr(service.onerow, "check_ticket", lambda raw, schema: None)
    create(engine, settings, FixedTriager(), payload.model_copy(update={"ticket_id": "F-2"}))
    with engine.connect() as conn:
        fast, chained = (
            dict(
                conn.execute(sa.select(store.tickets).where(store.tickets.c.ticket_id == i))
                .mappings()
                .one()
            )
            for i in ("F-1", "F-2")
        )
        reports = [b["report"] for b in api_batches(engine, "tickets")]
    skip = {"ticket_id", "batch_id", "ingested_at", "content_hash"}
    assert {k: v for k, v in fast.items() if k not in skip} == {
        k: v for k, v in chained.items() if k not in skip
    }
    assert fast["body"] == "Grüße, my parcel 🙂" and fast["created_at"] == T0.replace(tzinfo=None)
    assert reports[0] == reports[1]
    # The hash covers the content, not the id: the same ticket, the same hash.
    assert fast["content_hash"] == chained["content_hash"]


def test_what_the_fast_path_doubts_is_created_through_the_chain(
    engine: sa.Engine, settings: Settings
) -> None:
    made_up = create(engine, settings, FixedTriager(), ticket(None, "Parcel lost"))
    assert made_up.ticket_id.startswith("h-") and len(made_up.ticket_id) == 26
    nbsp = create(engine, settings, FixedTriager(), ticket("N-1", "x", subject="\u00a0Hi"))
    assert nbsp.status == Status.NEW
    assert [b["rows_stored"] for b in api_batches(engine, "tickets")] == [1, 1]


def test_a_retrain_sees_the_agents_correction(engine: sa.Engine, settings: Settings) -> None:
    triager = FixedTriager()
    create(engine, settings, triager, ticket("T-1", "Where is my invoice?"))
    create(engine, settings, triager, ticket("T-2", "Login fails", hours=1))
    update(engine, settings, "T-1", category="Shipping", agent_id="a-1")
    close(engine, settings, "T-1", resolution="done")
    snapshot = dataset.load_snapshot(engine, False)
    rows = snapshot.frame.set_index("ticket_id")
    assert "T-2" not in rows.index  # never labeled by anyone
    assert rows.loc["T-1", "category"] == "Shipping"
    assert rows.loc["T-1", "category_source"] == CORRECTED


def test_a_batch_ticket_gets_its_state_when_first_touched(
    engine: sa.Engine, settings: Settings, tmp_path: Path
) -> None:
    csv = tmp_path / "tickets.csv"
    pd.DataFrame(
        [
            {
                "ticket_id": "B-1",
                "subject": "Hi",
                "body": "My parcel",
                "created_at": "2026-11-01 08:00:00",
            }
        ]
    ).to_csv(csv, index=False)
    options = batches.IngestOptions(priority_levels=settings.priority_levels)
    batches.ingest_tickets(engine, csv, ColumnMapping(labeled=False), options)
    served = FixedTriager()._row(pd.Series({"ticket_id": "B-1", "body": "my parcel shipped"}), "5")
    with engine.begin() as conn:
        store.write_predictions(conn, pd.DataFrame([served]))
    untouched = detail(engine, "B-1")
    assert (untouched.status, untouched.category, untouched.triage.model_version) == (
        None,
        "Shipping",
        "5",
    )
    out = update(engine, settings, "B-1", status="in_progress", agent_id="a-1")
    assert (out.status, out.category, out.priority) == (Status.IN_PROGRESS, "Shipping", "high")
    assert out.sla_due_at == datetime(2026, 11, 2, 8, tzinfo=UTC)  # opened at its created_at
    with engine.connect() as conn:
        assert events.ticket_state(conn, "B-1")["model_version"] == "5"


# ---- lists ---------------------------------------------------------------------------------


def page_through(engine: sa.Engine, settings: Settings, **filters) -> list[str]:
    seen: list[str] = []
    cursor = None
    with engine.connect() as conn:
        while True:
            page = service.list_tickets(
                conn, settings, ListQuery(limit=2, cursor=cursor, **filters)
            )
            assert len(page.items) <= 2
            seen += [item.ticket_id for item in page.items]
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor


def test_list_filters_and_cursor_paging(
    engine: sa.Engine, settings: Settings, tmp_path: Path
) -> None:
    triager = FixedTriager()
    bodies = {
        "L1": "invoice",
        "L2": "ship it",
        "L3": "urgent login",
        "L4": "auto invoice",
        "L5": "ship",
    }
    for hours, (ticket_id, body) in enumerate(bodies.items()):
        create(engine, settings, triager, ticket(ticket_id, body, hours=hours))
    # Two tickets at the same instant, so paging must break the tie on the id.
    create(engine, settings, triager, ticket("L6a", "invoice", hours=10))
    create(engine, settings, triager, ticket("L6b", "invoice", hours=10))
    csv = tmp_path / "batch.csv"
    pd.DataFrame(
        [
            {
                "ticket_id": "B-1",
                "body": "x",
                "created_at": "2026-11-02 12:30:00",
                "category": "Account",
            }
        ]
    ).to_csv(csv, index=False)
    with engine.begin() as conn:
        batches.ingest_tickets_into(
            conn, csv, ColumnMapping(), batches.IngestOptions(settings.priority_levels), False
        )
    update(engine, settings, "L2", status="open")
    update(engine, settings, "L1", category="Account", agent_id="a-1")

    newest_first = ["L6b", "L6a", "L5", "B-1", "L4", "L3", "L2", "L1"]
    assert page_through(engine, settings) == newest_first
    assert page_through(engine, settings, status="open") == ["L2"]
    assert page_through(engine, settings, category="Shipping") == ["L5", "L2"]
    assert page_through(engine, settings, category="Account") == ["B-1", "L3", "L1"]
    assert page_through(engine, settings, priority="urgent") == ["L3"]
    assert page_through(engine, settings, tier="auto") == ["L4"]
    assert page_through(engine, settings, review=True) == ["L3"]
    assert page_through(engine, settings, escalated=True) == ["L3"]
    assert len(page_through(engine, settings, escalated=False)) == 7  # with the batch ticket
    assert page_through(engine, settings, language="DE") == ["L5", "L2"]
    assert len(page_through(engine, settings, review=False)) == 6  # the batch ticket: no answer
    window = {"created_from": T0 + timedelta(hours=1), "created_to": T0 + timedelta(hours=4)}
    assert page_through(engine, settings, **window) == ["B-1", "L4", "L3", "L2"]
    with engine.connect() as conn:
        page = service.list_tickets(conn, settings, ListQuery(limit=50))
    batch_item = next(i for i in page.items if i.ticket_id == "B-1")
    assert (batch_item.status, batch_item.category, batch_item.triage) == (None, "Account", None)


@pytest.mark.parametrize("cursor", ["not-a-cursor", "W10", "WyJ4Il0", "WzEsIDJd", "!!"])
def test_a_cursor_the_api_did_not_give_is_refused(
    engine: sa.Engine, settings: Settings, cursor: str
) -> None:
    with engine.connect() as conn, pytest.raises(ApiError) as refused:
        service.list_tickets(conn, settings, ListQuery(cursor=cursor))
    assert (refused.value.status, refused.value.field) == (422, "cursor")


# ---- bad input -----------------------------------------------------------------------------

Call = Callable[[sa.Connection, Settings], object]
TRIAGER = FixedTriager()


def _update(ticket_id: str, **change) -> Call:
    return lambda conn, s: service.update_ticket(
        conn, s, TRIAGER, ticket_id, TicketUpdate(**change), NOW
    )


def _close(ticket_id: str, **given) -> Call:
    return lambda conn, s: service.close_ticket(
        conn, s, TRIAGER, ticket_id, TicketClose(**given), NOW
    )


def _create(payload: TicketIn) -> Call:
    return lambda conn, s: service.create_ticket(conn, s, TRIAGER, payload, NOW)


BAD = {
    "unknown ticket update": (_update("nope", status="open"), 404, "ticket_id"),
    "unknown ticket close": (_close("nope"), 404, "ticket_id"),
    "unknown ticket get": (lambda conn, s: service.get_ticket(conn, "nope"), 404, "ticket_id"),
    "illegal transition": (_update("T-1", status="reopened"), 409, "status"),
    "illegal transition of a batch ticket": (_update("B-1", status="reopened"), 409, "status"),
    "close through an update": (_update("T-1", status="closed"), 422, "status"),
    "close a closed ticket": (_close("T-2"), 409, "status"),
    "empty body": (_update("T-1"), 422, "body"),
    "nothing to change": (_update("T-1", agent_id="a-1", reason="why"), 422, "body"),
    "unknown category": (_update("T-1", category="Refunds"), 422, "category"),
    "priority off the scale": (_update("T-1", priority="P9"), 422, "priority"),
    "unknown category at close": (_close("T-1", category="Refunds"), 422, "category"),
    "duplicate id": (_create(ticket("T-1", "again")), 409, "ticket_id"),
    "empty text": (_create(ticket("T-3", "   ")), 422, "body"),
    "a future created_at": (_create(ticket("T-4", "x", hours=24 * 365)), 422, "created_at"),
    "a control character": (_create(ticket("T-5", "bell \x07 here")), 422, "body"),
    "a control character in a reason": (
        _update("T-1", category="Account", reason="bell \x07"),
        422,
        "reason",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_and_leaves_the_store_unchanged(
    engine: sa.Engine, settings: Settings, tmp_path: Path, case: str
) -> None:
    create(engine, settings, TRIAGER, ticket("T-1", "invoice"))
    create(engine, settings, TRIAGER, ticket("T-2", "invoice", hours=1))
    close(engine, settings, "T-2")
    csv = tmp_path / "batch.csv"
    pd.DataFrame([{"ticket_id": "B-1", "body": "x", "created_at": "2026-11-02"}]).to_csv(
        csv, index=False
    )
    batches.ingest_tickets(
        engine, csv, ColumnMapping(labeled=False), batches.IngestOptions(settings.priority_levels)
    )
    before = counts(engine)
    call, status, field = BAD[case]
    with pytest.raises(ApiError) as refused, engine.begin() as conn:
        call(conn, settings)
    assert (refused.value.status, refused.value.field) == (status, field), refused.value.message
    assert counts(engine) == before
