"""The synthetic data's further labels, German text and known duplicates (issue 27)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import ingest, store, synth
from triage_ml.cli.options import column_mapping
from triage_ml.ingest import IngestOptions
from triage_ml.settings import DEFAULT_ROUTES
from triage_ml.synth import duplicates, heads
from triage_ml.synth.templates import load_german_templates, load_templates
from triage_model.language import detect

pytestmark = pytest.mark.unit

HEAD_COLUMNS = ("subcategory", "type", "team")


@pytest.fixture(scope="module")
def data() -> synth.SyntheticData:
    return synth.generate(3_000, months=3, seed=2)


@pytest.fixture(scope="module")
def tickets(data: synth.SyntheticData) -> pd.DataFrame:
    return data.tickets


def final_category(data: synth.SyntheticData) -> pd.Series:
    """Each ticket's category once its latest correction is applied, as the store resolves it."""
    fixes = data.feedback.dropna(subset=["corrected_category"]).sort_values("corrected_at")
    latest = fixes.groupby("ticket_id")["corrected_category"].last()
    return data.tickets["ticket_id"].map(latest).fillna(data.tickets["category"])


def test_labeled_tickets_carry_subcategory_type_and_team(tickets: pd.DataFrame) -> None:
    assert list(tickets.columns[-4:]) == [*HEAD_COLUMNS, "duplicate_of"]
    for column in HEAD_COLUMNS:
        assert pd.api.types.is_string_dtype(tickets[column]) and tickets[column].notna().all()
    assert set(tickets["type"]) == set(heads.TICKET_TYPES)
    assert set(tickets["team"]) <= set(heads.TEAMS)
    labels = {t.label for topics in load_templates().topics for t in topics}
    assert set(tickets["subcategory"]) <= labels and tickets["subcategory"].nunique() > 30


def test_every_subcategory_has_one_parent_category(data: synth.SyntheticData) -> None:
    tickets = data.tickets.assign(category=final_category(data))
    parents = tickets.groupby("subcategory")["category"].nunique()
    assert (parents == 1).all(), parents[parents > 1].index.tolist()
    topics = load_templates().topics
    for category, category_topics in zip(synth.CATEGORIES, topics, strict=True):
        under = set(tickets.loc[tickets["category"] == category, "subcategory"])
        assert under <= {t.label for t in category_topics}, category


def test_only_a_corrected_ticket_pairs_its_original_category_with_another(
    data: synth.SyntheticData,
) -> None:
    parent = {t.label: c for c, ts in zip(synth.CATEGORIES, load_templates().topics) for t in ts}
    tickets = data.tickets
    mismatched = tickets["subcategory"].map(parent) != tickets["category"]
    corrected = final_category(data) != tickets["category"]
    assert mismatched.any() and (mismatched == corrected).all()


def test_type_follows_the_subcategory_with_a_little_noise(tickets: pd.DataFrame) -> None:
    expected = {t.label: t.ticket_type for topics in load_templates().topics for t in topics}
    agree = (tickets["subcategory"].map(expected) == tickets["type"]).mean()
    assert 0.9 < agree < 0.99


def test_team_has_structure_the_category_map_cannot_know(data: synth.SyntheticData) -> None:
    tickets = data.tickets.assign(category=final_category(data))
    mapped = tickets["category"].map(DEFAULT_ROUTES)
    assert 0.05 < (tickets["team"] != mapped).mean() < 0.25
    enterprise = (tickets["category"] == "Technical") & (tickets["customer_tier"] == "enterprise")
    assert (tickets.loc[enterprise, "team"] == heads.TIER2).mean() > 0.9
    security = tickets["subcategory"] == "Security concern"
    assert (tickets.loc[security, "team"] == heads.TRUST_AND_SAFETY).mean() > 0.9
    legal = tickets["body"].str.contains("lawyer|chargeback|Anwalt", case=False)
    billing = tickets["category"] == "Billing"
    assert (tickets.loc[billing & legal, "team"] == heads.BILLING_ESCALATIONS).mean() > 0.5


def test_a_duplicate_points_to_an_earlier_ticket_of_its_customer(tickets: pd.DataFrame) -> None:
    resent = tickets[tickets["duplicate_of"].notna()]
    assert 0.01 < len(resent) / len(tickets) < 0.03
    originals = tickets.set_index("ticket_id").loc[resent["duplicate_of"]]
    gap = resent["created_at"].to_numpy() - originals["created_at"].to_numpy()
    assert (gap >= pd.Timedelta(seconds=duplicates.MIN_DELAY_S)).all()
    assert (gap <= pd.Timedelta(seconds=duplicates.RESEND_WINDOW_S)).all()
    assert (resent["customer_id"].to_numpy() == originals["customer_id"].to_numpy()).all()
    assert originals["duplicate_of"].isna().all()  # no chains
    assert (resent["subcategory"].to_numpy() == originals["subcategory"].to_numpy()).mean() > 0.8
    follow_ups = tuple(
        line for lines in load_templates().duplicates.follow_ups.values() for line in lines
    )
    assert resent["body"].map(lambda body: body.startswith(follow_ups)).all()
    # Lightly reworded: most of the original's words are still there.
    for body, original in zip(resent["body"], originals["body"], strict=True):
        words = set(original.split())
        assert len(words & set(body.split())) >= 0.6 * len(words)


def test_some_german_customers_write_in_german(tickets: pd.DataFrame) -> None:
    def german_share(frame: pd.DataFrame) -> float:
        codes, _ = detect((frame["subject"] + "\n" + frame["body"]).tolist(), ("en", "de"))
        return sum(code == "de" for code in codes) / len(codes)

    german = tickets[(tickets["language"] == "de") & tickets["duplicate_of"].isna()]
    assert 0.4 < german_share(german) < 0.85
    assert german_share(tickets[tickets["language"] == "en"].head(300)) < 0.02


def test_german_templates_cover_every_topic() -> None:
    english, german = load_templates(), load_german_templates()
    assert [len(t) for t in german.topics] == [len(t) for t in english.topics]
    for en_topics, de_topics in zip(english.topics, german.topics, strict=True):
        for en, de in zip(en_topics, de_topics, strict=True):
            assert (en.name, en.label, en.ticket_type) == (de.name, de.label, de.ticket_type)
            assert de.sentences and de.subjects and de.sentences != en.sentences


def test_new_tickets_carry_duplicates_but_no_labels() -> None:
    new = synth.generate_unlabeled(1_500, seed=3)
    assert not set(HEAD_COLUMNS) & set(new.columns)
    resent = new[new["duplicate_of"].notna()]
    assert len(resent) > 0 and set(resent["duplicate_of"]) <= set(new["ticket_id"])


def test_new_tickets_with_duplicate_of_ingest_cleanly(tmp_path: Path) -> None:
    # The labeled file (with its label columns and duplicate_of) is ingested by test_ingest.py.
    new_file = tmp_path / "new.csv"
    synth.generate_unlabeled(100, seed=8).to_csv(new_file, index=False)
    engine = store.connect(f"sqlite:///{tmp_path / 'store.db'}")
    summary = ingest.ingest_tickets(
        engine, new_file, column_mapping(labeled=False), IngestOptions(synth.PRIORITIES)
    )
    assert (summary.stored, summary.quarantined) == (100, 0)
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("tickets")}
    assert "duplicate_of" not in columns
    engine.dispose()
