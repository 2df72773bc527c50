"""Duplicate suggestions: recent open tickets of the same customer or with the same text."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import store
from triage_ml.api import webhooks
from triage_ml.api.schemas import TicketOut, Triage
from triage_ml.ingest.mapping import ColumnMapping
from triage_ml.scoring import batch, duplicates, files
from triage_ml.settings import DuplicateSettings
from triage_ml.store import tables
from triage_model.features import model_text

pytestmark = pytest.mark.unit

NOW = pd.Timestamp("2026-03-01T12:00:00Z")
ISSUE = (
    "My invoice for March shows the same charge twice, 49.99 EUR on the 3rd and again on "
    "the 4th. Please refund the second payment, I only have one subscription."
)
RESENT = (
    "My invoice for March shows the same charge twice: 49.99 EUR on the 3rd and again on "
    "the 4th. Please refund the second payment, I only have one subscription!! Any update?"
)
OTHER = "The mobile app crashes when I open the settings page on Android 14 after the update."
SETTINGS = DuplicateSettings(threshold=0.8, window_days=14, max_suggestions=3)


def ticket(ticket_id: str, days_ago: float, body: str, customer: str | None = "C-1") -> dict:
    """One stored ticket row, created ``days_ago`` before NOW."""
    return {
        "ticket_id": ticket_id,
        "created_at": NOW - pd.Timedelta(days=days_ago),
        "customer_id": customer,
        "subject": "Billing question",
        "body": body,
        "content_hash": f"hash-{ticket_id}",
        "batch_id": "b1",
        "ingested_at": NOW,
    }


def stored(engine: sa.Engine, rows: list[dict], closed: tuple[str, ...] = ()) -> None:
    """Store ``rows`` as tickets, and a closed ``ticket_state`` for the ids in ``closed``."""
    with engine.begin() as conn:
        store.insert_rows(conn, store.tickets, pd.DataFrame(rows), ("created_at", "ingested_at"))
        for ticket_id in closed:
            moment = NOW.tz_convert(None).to_pydatetime()
            conn.execute(
                tables.ticket_state.insert(),
                [
                    {
                        "ticket_id": ticket_id,
                        "status": "closed",
                        "opened_at": moment,
                        "updated_at": moment,
                    }
                ],
            )


def suggested(engine: sa.Engine, rows: list[dict], settings: DuplicateSettings = SETTINGS):
    """The parsed suggestions for each of ``rows`` (stored or not)."""
    with engine.connect() as conn:
        answers = duplicates.possible_duplicates(conn, pd.DataFrame(rows), settings)
    return [json.loads(answer) for answer in answers]


def test_a_resend_of_the_same_customer_in_the_window_is_suggested(engine: sa.Engine) -> None:
    new = ticket("NEW", 0, RESENT)
    stored(engine, [ticket("OLD", 3, ISSUE), ticket("UNRELATED", 2, OTHER), new])
    [found] = suggested(engine, [new])
    assert [s["ticket_id"] for s in found] == ["OLD"]
    assert found[0]["same_customer"] is True
    assert SETTINGS.threshold <= found[0]["similarity"] < 1


def test_closed_later_outside_the_window_and_itself_are_never_suggested(
    engine: sa.Engine,
) -> None:
    new = ticket("NEW", 0, ISSUE)
    rows = [
        ticket("CLOSED", 1, ISSUE),
        ticket("LATER", -1, ISSUE),
        ticket("ANCIENT", 15, ISSUE),
        ticket("OPEN", 14, ISSUE),  # exactly at the window's start: in
        new,
    ]
    stored(engine, rows, closed=("CLOSED",))
    [found] = suggested(engine, [new])
    assert [s["ticket_id"] for s in found] == ["OPEN"]
    assert found[0]["similarity"] == pytest.approx(1.0, abs=1e-3)


@pytest.fixture
def lite(tmp_path) -> sa.Engine:
    """An empty SQLite store, for the tests whose SQL the two-store tests already cover."""
    eng = store.connect(f"sqlite:///{tmp_path / 'lite.db'}")
    yield eng
    eng.dispose()


def test_another_customers_identical_text_is_suggested(engine: sa.Engine) -> None:
    new = ticket("NEW", 0, ISSUE, customer="C-2")
    stored(engine, [ticket("OLD", 2, ISSUE, customer="C-1"), new])
    [found] = suggested(engine, [new])
    assert found == [{"ticket_id": "OLD", "similarity": 1.0, "same_customer": False}]


def test_same_customer_on_another_issue_and_short_shared_texts_are_not_suggested(
    lite: sa.Engine,
) -> None:
    new, short = ticket("NEW", 0, OTHER), ticket("SHORT", 0, "call me", customer="C-3")
    stored(lite, [ticket("OLD", 2, ISSUE), ticket("HELLO", 1, "call me", customer="C-2")])
    assert suggested(lite, [new, short]) == [[], []]


def test_a_chunk_is_answered_per_ticket_most_similar_first_at_most_max(lite: sa.Engine) -> None:
    rows = [ticket(f"OLD-{i}", 1 + i, ISSUE + " x" * i) for i in range(4)]
    rows += [ticket("NEW", 0, ISSUE), ticket("LONE", 0, OTHER, customer=None)]
    stored(lite, rows)
    found = suggested(lite, [*rows[-2:], ticket("NOTIME", 0, ISSUE) | {"created_at": None}])
    assert [s["ticket_id"] for s in found[0]] == ["OLD-0", "OLD-1", "OLD-2"]
    sims = [s["similarity"] for s in found[0]]
    assert sims == sorted(sims, reverse=True)
    assert found[1:] == [[], []]


def test_disabled_answers_an_empty_list_without_a_query() -> None:
    rows = [ticket("NEW", 0, ISSUE)]
    off = DuplicateSettings(enabled=False)
    # No store at all: a query would fail on the None connection.
    assert duplicates.possible_duplicates(None, pd.DataFrame(rows), off) == ["[]"]  # type: ignore[arg-type]


def test_masked_names_and_addresses_do_not_make_tickets_alike() -> None:
    frame = pd.DataFrame(
        {
            "subject": ["", ""],
            "body": [
                "Write to anna.schmidt@example.com\n\nBest regards,\nAnna Schmidt",
                "Write to anna.schmidt@example.org\n\nBest regards,\nAnna Schmidt-Meyer",
            ],
        }
    )
    vectors = duplicates.text_vectors(frame)
    assert (vectors[0].multiply(vectors[1])).sum() == pytest.approx(1.0, abs=1e-6)


def test_vectors_give_the_librarys_cosines() -> None:
    frame = pd.DataFrame(
        {"subject": ["Refund", None, "App"], "body": [ISSUE, RESENT, OTHER + "\n\nThanks,\nAnna"]}
    )
    ours = duplicates.text_vectors(frame)
    library = duplicates.VECTORIZER.transform(model_text(frame))
    expected = (library @ library.T).toarray()
    assert (ours @ ours.T).toarray() == pytest.approx(expected, abs=1e-5)
    assert 0.8 < expected[0, 1] < 1 and expected[0, 2] < 0.5


class OlderModel:
    """A model logged before issue 27: the nine answers it had, nothing more."""

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "category": "Billing",
                "category_proba": 0.9,
                "top3": '[{"category": "Billing", "proba": 0.9}]',
                "priority": "high",
                "priority_proba": 0.8,
                "sentiment": 0.0,
                "route": "billing-queue",
                "needs_review": False,
                "tier": "suggest",
            },
            index=range(len(frame)),
        )


def test_batch_scoring_stores_duplicates_and_nulls_for_answers_a_model_lacks(
    lite: sa.Engine,
) -> None:
    rows = [
        ticket("A-OLD", 3, ISSUE),
        ticket("B-NEW", 0, RESENT),
        ticket("C-LONE", 1, OTHER, "C-2"),
    ]
    stored(lite, rows)
    shadow = batch.ShadowModel(OlderModel(), "4")
    summary = batch.score_partition(
        lite, OlderModel(), "3", chunk_rows=3, shadow=shadow, duplicate_settings=SETTINGS
    )
    assert (summary.scored, summary.chunks, summary.shadow_scored) == (3, 1, 3)
    with lite.connect() as conn:
        served = pd.read_sql(sa.select(tables.predictions), conn).set_index("ticket_id")
        shadowed = pd.read_sql(sa.select(tables.shadow_predictions), conn)
    [found] = json.loads(served.loc["B-NEW", "possible_duplicates"])
    assert found["ticket_id"] == "A-OLD" and found["same_customer"] is True
    assert served.loc[["A-OLD", "C-LONE"], "possible_duplicates"].tolist() == ["[]", "[]"]
    lacking = ["subcategory", "type", "team", "language", "escalation", "priority_parts"]
    assert served[lacking].isna().all().all()
    assert shadowed["possible_duplicates"].isna().all()  # the shadow's answers carry none


def test_a_scored_file_carries_every_answer_and_its_duplicates(lite: sa.Engine, tmp_path) -> None:
    stored(lite, [ticket("A-OLD", 3, ISSUE)])
    source = tmp_path / "new.csv"
    row = ticket("B-NEW", 0, RESENT)
    pd.DataFrame([{k: row[k] for k in ("ticket_id", "customer_id", "subject", "body")}]).assign(
        created_at=row["created_at"].isoformat()
    ).to_csv(source, index=False)
    against = files.DuplicateSource(lite, SETTINGS)
    mapping, levels = ColumnMapping(labeled=False), ("low", "medium", "high", "urgent")
    scored = {}
    for suffix in (".jsonl", ".parquet"):
        output = tmp_path / f"scored{suffix}"
        files.score_file(OlderModel(), "3", source, output, mapping, levels, 10, (), against)
        scored[suffix] = (
            pd.read_json(output, lines=True) if suffix == ".jsonl" else pd.read_parquet(output)
        )
    for frame in scored.values():
        assert set(batch.ANSWER_COLUMNS) <= set(frame.columns)
        [found] = list(frame["possible_duplicates"].iloc[0])
        assert found["ticket_id"] == "A-OLD" and found["same_customer"]
        assert frame[["escalation", "priority_parts", "subcategory"]].isna().all().all()


def test_the_helpdesk_write_back_tags_escalations_and_possible_duplicates() -> None:
    answer = {
        "model_version": "3",
        "category": "Billing",
        "category_proba": 0.9,
        "top3": [],
        "priority": "high",
        "priority_proba": 0.8,
        "sentiment": None,
        "route": "billing-queue",
        "tier": "suggest",
        "needs_review": False,
        "escalation": ["legal", "repeat_contact"],
        "possible_duplicates": [{"ticket_id": "A-OLD", "similarity": 0.91, "same_customer": True}],
        "scored_at": NOW.to_pydatetime(),
    }
    out = TicketOut(
        ticket_id="B-NEW",
        status=None,
        category="Billing",
        priority="high",
        tier="suggest",
        needs_review=False,
        sla_due_at=None,
        created_at=None,
        triage=Triage(**answer),
    )
    assert webhooks.triage_tags(out) == [
        "triage_billing",
        "tier_suggest",
        "escalation_legal",
        "escalation_repeat_contact",
        "triage_possible_duplicate",
    ]
