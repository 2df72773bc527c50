"""Unit tests of the synthetic ticket generator (small, fast samples)."""

from __future__ import annotations

import json
import re
import string
from datetime import datetime
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from triage_ml import synth
from triage_ml.synth import CATEGORIES, CHANNELS, LANGUAGES, PRIORITIES, TIERS, SyntheticData
from triage_ml.synth.templates import Templates, load_templates, parse_templates
from triage_ml.synth.text import slot_makers

pytestmark = pytest.mark.unit

TICKET_COLUMNS = [
    "ticket_id",
    "created_at",
    "channel",
    "customer_id",
    "customer_tier",
    "customer_ltv",
    "language",
    "subject",
    "body",
    "category",
    "priority",
    "subcategory",
    "type",
    "team",
    "duplicate_of",
]
LABELS = ("category", "priority", "subcategory", "type", "team")
START = pd.Timestamp("2026-01-01T00:00:00Z")


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return synth.generate(2_000, months=6, seed=3)


def _effective(data: SyntheticData, field: str, original: str) -> pd.Series:
    """Latest non-empty correction per ticket, else the original label."""
    fb = data.feedback.dropna(subset=[field]).sort_values("corrected_at")
    latest = fb.groupby("ticket_id")[field].last()
    return data.tickets["ticket_id"].map(latest).fillna(data.tickets[original])


def test_same_seed_gives_identical_frames() -> None:
    a, b = synth.generate(300, months=2, seed=11), synth.generate(300, months=2, seed=11)
    pd.testing.assert_frame_equal(a.tickets, b.tickets)
    pd.testing.assert_frame_equal(a.feedback, b.feedback)
    pd.testing.assert_frame_equal(a.surveys, b.surveys)


def test_same_seed_gives_byte_identical_csvs(tmp_path: Path) -> None:
    first = synth.write(synth.generate(300, seed=5), tmp_path / "a")
    second = synth.write(synth.generate(300, seed=5), tmp_path / "b")
    for name in ("tickets", "feedback", "surveys"):
        assert first[name].read_bytes() == second[name].read_bytes()


def test_different_seeds_give_different_data() -> None:
    a, b = synth.generate(300, seed=1), synth.generate(300, seed=2)
    assert a.tickets["body"].tolist() != b.tickets["body"].tolist()
    assert a.tickets["created_at"].tolist() != b.tickets["created_at"].tolist()


def test_ticket_columns_and_dtypes(data: SyntheticData) -> None:
    tickets = data.tickets
    assert list(tickets.columns) == TICKET_COLUMNS
    for column in (
        "ticket_id",
        "channel",
        "customer_id",
        "customer_tier",
        "language",
        "subject",
        "body",
        "category",
        "priority",
        "subcategory",
        "type",
        "team",
    ):
        assert pd.api.types.is_string_dtype(tickets[column]), column
        assert tickets[column].notna().all(), column
    assert isinstance(tickets["created_at"].dtype, pd.DatetimeTZDtype)
    assert str(tickets["created_at"].dt.tz) == "UTC"
    assert pd.api.types.is_float_dtype(tickets["customer_ltv"])
    assert (tickets["customer_ltv"] >= 0).all()


def test_side_table_columns_and_dtypes(data: SyntheticData) -> None:
    assert list(data.feedback.columns) == [
        "ticket_id",
        "corrected_category",
        "corrected_priority",
        "agent_id",
        "corrected_at",
        "reason",
    ]
    assert list(data.surveys.columns) == ["ticket_id", "csat", "comment", "answered_at"]
    assert str(data.feedback["corrected_at"].dt.tz) == "UTC"
    assert str(data.surveys["answered_at"].dt.tz) == "UTC"
    assert pd.api.types.is_integer_dtype(data.surveys["csat"])


def test_values_are_in_allowed_sets(data: SyntheticData) -> None:
    tickets = data.tickets
    assert set(tickets["category"]) == set(CATEGORIES)
    assert set(tickets["priority"]) == set(PRIORITIES)
    assert set(tickets["channel"]) == set(CHANNELS)
    assert set(tickets["customer_tier"]) == set(TIERS)
    assert set(tickets["language"]) == set(LANGUAGES)
    assert (tickets["body"].str.len() > 0).all()


def test_created_at_sorted_and_inside_window(data: SyntheticData) -> None:
    created = data.tickets["created_at"]
    assert created.is_monotonic_increasing
    assert created.min() >= START
    assert created.max() < START + pd.DateOffset(months=6)
    assert created.max() > START + pd.DateOffset(months=5)


def test_custom_naive_start_is_utc() -> None:
    tickets = synth.generate(200, months=1, seed=0, start=datetime(2025, 3, 1)).tickets
    assert tickets["created_at"].min() >= pd.Timestamp("2025-03-01T00:00:00Z")
    assert tickets["created_at"].max() < pd.Timestamp("2025-04-01T00:00:00Z")


def test_ticket_ids_unique_and_formatted(data: SyntheticData) -> None:
    ids = data.tickets["ticket_id"]
    assert ids.is_unique
    assert ids.str.fullmatch(r"TCK-\d{7}").all()


def test_customers_repeat_with_fixed_attributes(data: SyntheticData) -> None:
    per_customer = data.tickets.groupby("customer_id").agg(
        n=("ticket_id", "size"),
        tiers=("customer_tier", "nunique"),
        ltvs=("customer_ltv", "nunique"),
    )
    assert (per_customer["tiers"] == 1).all() and (per_customer["ltvs"] == 1).all()
    assert per_customer["n"].max() >= 5
    assert (per_customer["n"] > 1).sum() > 100
    median_ltv = data.tickets.groupby("customer_tier")["customer_ltv"].median()
    assert (
        median_ltv["free"]
        < median_ltv["standard"]
        < median_ltv["premium"]
        < median_ltv["enterprise"]
    )


def test_feedback_rows_are_valid_corrections(data: SyntheticData) -> None:
    fb = data.feedback.merge(data.tickets[["ticket_id", "created_at"]], on="ticket_id", how="left")
    assert len(fb) == len(data.feedback) and fb["created_at"].notna().all()
    assert (fb["corrected_at"] > fb["created_at"]).all()
    assert (fb["corrected_category"].notna() | fb["corrected_priority"].notna()).all()
    assert set(fb["corrected_category"].dropna()) <= set(CATEGORIES)
    assert set(fb["corrected_priority"].dropna()) <= set(PRIORITIES)
    assert fb["agent_id"].str.fullmatch(r"agent-\d{2}").all()
    assert (fb["corrected_priority"].notna() & fb["corrected_category"].isna()).any()


def test_conflicting_corrections_exist_and_later_one_differs(data: SyntheticData) -> None:
    fb = data.feedback.dropna(subset=["corrected_category"]).sort_values("corrected_at")
    distinct = fb.groupby("ticket_id")["corrected_category"].nunique()
    assert (distinct > 1).sum() >= 1


def test_surveys_are_valid(data: SyntheticData) -> None:
    sv = data.surveys.merge(data.tickets[["ticket_id", "created_at"]], on="ticket_id", how="left")
    assert sv["created_at"].notna().all()
    assert sv["ticket_id"].is_unique
    assert (sv["answered_at"] > sv["created_at"]).all()
    assert sv["csat"].between(1, 5).all()
    assert 0.2 <= len(sv) / len(data.tickets) <= 0.4
    assert sv["csat"].nunique() == 5


def test_unlabeled_tickets() -> None:
    start = pd.Timestamp("2026-07-01T00:00:00Z")
    new = synth.generate_unlabeled(300, seed=0, start=start.to_pydatetime(), days=7)
    labeled = synth.generate(300, seed=0)
    assert list(new.columns) == [c for c in TICKET_COLUMNS if c not in LABELS]
    assert new["ticket_id"].str.startswith("NEW-").all() and new["ticket_id"].is_unique
    assert not set(new["ticket_id"]) & set(labeled.tickets["ticket_id"])
    assert (new["created_at"] > start).all()
    assert (new["created_at"] < start + pd.Timedelta(days=7)).all()
    assert new["created_at"].is_monotonic_increasing
    pd.testing.assert_frame_equal(
        new, synth.generate_unlabeled(300, seed=0, start=start.to_pydatetime())
    )


def test_unlabeled_customers_keep_their_tier() -> None:
    labeled = synth.generate(1_000, seed=0).tickets
    new = synth.generate_unlabeled(300, seed=4)
    both = new.merge(
        labeled.drop_duplicates("customer_id"), on="customer_id", suffixes=("_new", "_old")
    )
    assert len(both) > 0
    assert (both["customer_tier_new"] == both["customer_tier_old"]).all()
    assert (both["customer_ltv_new"] == both["customer_ltv_old"]).all()


def test_write_round_trip(tmp_path: Path) -> None:
    data = synth.generate(300, seed=9)
    paths = synth.write(data, tmp_path / "out")
    assert set(paths) == {"tickets", "feedback", "surveys"}
    tickets = pd.read_csv(paths["tickets"], encoding="utf-8", keep_default_na=False)
    assert list(tickets.columns) == TICKET_COLUMNS
    assert tickets["ticket_id"].tolist() == data.tickets["ticket_id"].tolist()
    assert tickets["body"].tolist() == data.tickets["body"].tolist()
    assert tickets["category"].tolist() == data.tickets["category"].tolist()
    assert (
        pd.to_datetime(tickets["created_at"], utc=True).tolist()
        == data.tickets["created_at"].tolist()
    )
    feedback = pd.read_csv(paths["feedback"])
    surveys = pd.read_csv(paths["surveys"])
    assert len(feedback) == len(data.feedback) and len(surveys) == len(data.surveys)
    assert surveys["csat"].tolist() == data.surveys["csat"].tolist()


def test_label_noise_exists_and_is_partly_corrected(data: SyntheticData) -> None:
    effective = _effective(data, "corrected_category", "category")
    changed = (effective != data.tickets["category"]).mean()
    assert 0.015 < changed < 0.08
    assert (_effective(data, "corrected_priority", "priority") != data.tickets["priority"]).any()


def test_label_distributions_are_plausible(data: SyntheticData) -> None:
    cats = data.tickets["category"].value_counts(normalize=True)
    assert set(cats.index[:2]) == {"Technical", "Billing"}
    assert cats["Feedback"] > 0.03 and cats["Sales"] > 0.03
    pris = data.tickets["priority"].value_counts(normalize=True)
    assert 0.03 < pris["critical"] < 0.12
    assert 0.15 < pris["high"] < 0.32
    assert 0.40 < pris["normal"] < 0.60
    assert 0.12 < pris["low"] < 0.28


def test_priority_is_not_one_keyword(data: SyntheticData) -> None:
    tickets = data.tickets
    text = (tickets["subject"] + " " + tickets["body"]).str.lower()
    outage = tickets.loc[text.str.contains("outage|down", regex=True), "priority"]
    assert outage.nunique() >= 3
    critical_words = [
        set(re.findall(r"[a-z]+", t)) for t in text[tickets["priority"] == "critical"]
    ]
    assert not set.intersection(*critical_words)
    assert (
        tickets.groupby("customer_tier")["priority"].apply(lambda p: (p == "critical").mean())[
            "enterprise"
        ]
        > tickets.groupby("customer_tier")["priority"].apply(lambda p: (p == "critical").mean())[
            "free"
        ]
    )


def test_text_has_realistic_variety(data: SyntheticData) -> None:
    tickets = data.tickets
    assert (tickets["subject"] == "").any()
    assert (tickets["body"].str.len() < 20).any()
    assert (tickets["body"].str.len() > 300).any()
    assert tickets["body"].str.contains(r"#[A-Z]\d{5}", regex=True).any()
    assert tickets["body"].str.contains("ending").any()
    assert tickets["body"].nunique() > 0.95 * len(tickets)
    assert 0.8 < (tickets["language"] == "en").mean() < 0.95


NOW = datetime(2026, 12, 6, 6, 0)  # the day `generate --months 12` dated tickets in 2027


def latest_moment(data: SyntheticData) -> pd.Timestamp:
    return max(
        data.tickets["created_at"].max(),
        data.feedback["corrected_at"].max(),
        data.surveys["answered_at"].max(),
    )


def test_a_history_that_would_run_past_now_is_moved_back() -> None:
    data = synth.generate(1_000, months=12, seed=5, now=NOW)
    now = pd.Timestamp(NOW, tz="UTC")
    assert latest_moment(data) <= now
    created = data.tickets["created_at"]
    # It keeps its length, and ends early enough to leave a week for the new tickets.
    assert created.min() < now - pd.DateOffset(months=11)
    assert created.max() <= now - pd.Timedelta(days=7)
    new = synth.generate_unlabeled(300, seed=5, start=created.max().to_pydatetime(), now=NOW)
    assert new["created_at"].max() <= now


def test_a_given_start_is_kept_and_the_history_cut_at_now() -> None:
    start = datetime(2026, 10, 1)
    data = synth.generate(500, months=6, seed=2, start=start, now=NOW)
    assert data.tickets["created_at"].min() >= pd.Timestamp(start, tz="UTC")
    assert latest_moment(data) <= pd.Timestamp(NOW, tz="UTC")
    with pytest.raises(ValueError, match="not in the past"):
        synth.generate(10, start=datetime(2027, 1, 1), now=NOW)


def test_late_corrections_and_surveys_stop_at_now() -> None:
    # Tickets up to the last minute before now: their corrections and surveys come hours later.
    data = synth.generate(500, months=1, seed=4, start=datetime(2026, 11, 6, 6, 0), now=NOW)
    assert latest_moment(data) == pd.Timestamp(NOW, tz="UTC")


def test_new_tickets_stop_at_now() -> None:
    new = synth.generate_unlabeled(200, seed=1, start=datetime(2026, 12, 4), now=NOW)
    assert new["created_at"].max() <= pd.Timestamp(NOW, tz="UTC")
    with pytest.raises(ValueError, match="not in the past"):
        synth.generate_unlabeled(10, start=datetime(2026, 12, 7), now=NOW)


def test_a_history_in_the_past_is_unchanged_by_now() -> None:
    # The clock only ever moves a history that would reach the future.
    past = synth.generate(300, months=2, seed=11)
    later = synth.generate(300, months=2, seed=11, now=datetime(2030, 1, 1))
    for name in ("tickets", "feedback", "surveys"):
        pd.testing.assert_frame_equal(getattr(past, name), getattr(later, name))


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError):
        synth.generate(0)
    with pytest.raises(ValueError):
        synth.generate(10, months=0)
    with pytest.raises(ValueError):
        synth.generate(10, seed=-1)
    with pytest.raises(ValueError):
        synth.generate_unlabeled(10, days=0)


def _raw_templates() -> dict:
    text = resources.files("triage_ml.synth").joinpath("templates.json").read_text("utf-8")
    return json.loads(text)


def _all_strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _all_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _all_strings(v)]
    return []


def test_templates_load_once_in_category_order() -> None:
    templates = load_templates()
    assert isinstance(templates, Templates) and load_templates() is templates
    assert len(templates.topics) == len(templates.short_bodies) == len(CATEGORIES)
    assert templates.topics[1][0].name == "outage"
    assert set(templates.greetings) == set(templates.closings) == set(LANGUAGES)
    assert all(len(phrases) == len(CATEGORIES) for phrases in templates.local_subjects.values())


def test_every_template_slot_has_a_value() -> None:
    known = set(slot_makers(load_templates().vocabulary)) | {"cat", "agent"}
    used = {
        field
        for text in _all_strings(_raw_templates())
        for _, field, _, _ in string.Formatter().parse(text)
        if field
    }
    assert used and used <= known, sorted(used - known)


def test_templates_with_a_missing_category_are_rejected() -> None:
    raw = _raw_templates()
    del raw["topics"]["Sales"]
    with pytest.raises(ValueError, match="topics"):
        parse_templates(raw)
