"""The production replay's data: history, months with a drift from month two, agents' answers."""

from __future__ import annotations

import pandas as pd
import pytest

from triage_ml.store.tables import AUTO_APPLIED, CONFIRMED, CORRECTED, LABEL_SOURCES
from triage_ml.synth import CATEGORIES, replay

pytestmark = pytest.mark.unit

ROWS = 400


@pytest.fixture(scope="module")
def months() -> dict[int, replay.Month]:
    return {k: replay.month(k, ROWS, seed=4) for k in (1, 2, 3)}


def words(frame: pd.DataFrame) -> set[str]:
    text = (frame["subject"].fillna("") + " " + frame["body"]).str.lower()
    return set(text.str.findall(r"[a-zäöüß]+").explode().dropna())


def test_history_is_labeled_and_ends_before_month_one() -> None:
    data = replay.history(300, seed=4)
    first, _ = replay.month_bounds(1)
    assert len(data.tickets) == 300 and data.tickets["category"].notna().all()
    assert data.tickets["created_at"].max() < first
    assert (data.feedback["corrected_at"] < first).all()
    assert set(data.tickets["category"]) <= set(CATEGORIES)
    assert data.tickets["campaign_id"].notna().any()
    pd.testing.assert_frame_equal(data.tickets, replay.history(300, seed=4).tickets)


def test_a_month_has_no_labels_and_its_truth_apart(months: dict[int, replay.Month]) -> None:
    first = months[1]
    assert {"category", "priority"}.isdisjoint(first.tickets.columns)
    assert "campaign_id" in first.tickets.columns
    assert list(first.truth.columns) == list(replay.TRUTH_COLUMNS)
    assert first.truth["ticket_id"].tolist() == first.tickets["ticket_id"].tolist()
    assert first.truth["category"].notna().all() and first.truth["priority"].notna().all()
    created = first.tickets["created_at"]
    assert (created >= first.start).all() and (created < first.end).all()
    assert first.tickets["ticket_id"].str.startswith("R1-").all()


def test_ticket_ids_never_collide_across_months(months: dict[int, replay.Month]) -> None:
    history_ids = set(replay.history(300, seed=4).tickets["ticket_id"])
    ids = [set(m.tickets["ticket_id"]) for m in months.values()]
    assert all(len(s) == ROWS for s in ids)
    assert len(set().union(history_ids, *ids)) == len(history_ids) + 3 * ROWS


def test_month_one_has_no_drift(months: dict[int, replay.Month]) -> None:
    first = months[1]
    assert not first.drifted
    assert set(first.truth["category"]) == set(CATEGORIES)
    assert "heatwise" not in words(first.tickets)
    assert replay.LAUNCH_CAMPAIGN not in set(first.tickets["campaign_id"].dropna())


def test_drift_brings_a_new_product_line(months: dict[int, replay.Month]) -> None:
    second = months[2]
    devices = second.truth["category"] == replay.DEVICES
    assert second.drifted and 0.14 < devices.mean() < 0.26
    product = second.tickets[devices.to_numpy()]
    assert set(product["language"]) == {"en", "de"}
    new_words = words(product) - words(replay.history(1000, seed=4).tickets)
    assert {"heatwise", "thermostat", "zigbee", "heizplan"} <= new_words
    launch = product["campaign_id"] == replay.LAUNCH_CAMPAIGN
    assert 0.5 < launch.mean() < 0.9
    others = second.tickets[~devices.to_numpy()]
    assert replay.LAUNCH_CAMPAIGN not in set(others["campaign_id"].dropna())


def test_returns_change_meaning_from_the_drift(months: dict[int, replay.Month]) -> None:
    old, new = replay.RENAMED
    assert (months[1].truth["category"] == old).sum() > 20
    for k in (2, 3):
        assert old not in set(months[k].truth["category"])
    shipping = [(m.truth["category"] == new).mean() for m in months.values()]
    assert shipping[1] > shipping[0] + 0.05


def test_drift_can_start_later() -> None:
    late = replay.month(2, 200, seed=4, drift_from=3)
    assert not late.drifted and replay.DEVICES not in set(late.truth["category"])


def test_months_are_numbered_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        replay.month(0, 10, seed=1)


def served_answers(truth: pd.DataFrame, wrong_every: int = 5) -> pd.DataFrame:
    tiers = ["auto", "suggest", "review", "auto"] * (len(truth) // 4 + 1)
    served = truth[["ticket_id", "category", "priority"]].assign(
        tier=tiers[: len(truth)], model_version="3"
    )
    served.loc[served.index[::wrong_every], "category"] = "Sales"
    return served


def test_agents_answer_review_and_suggest_and_audit_some_auto(
    months: dict[int, replay.Month],
) -> None:
    truth = months[2].truth
    served = served_answers(truth)
    answers = replay.agent_answers(served, truth, seed=9, audit_share=0.3)
    assert list(answers.columns) == list(replay.ANSWER_COLUMNS)
    assert len(answers) == len(served) and set(answers["label_source"]) <= set(LABEL_SOURCES)
    assert (answers["model_version"] == "3").all()
    both = answers.drop(columns="model_version").merge(served, on="ticket_id")
    both = both.merge(truth, on="ticket_id", suffixes=("", "_t"))
    auto = both["tier"] == "auto"
    applied = both["label_source"] == AUTO_APPLIED
    assert (both.loc[~auto, "label_source"] != AUTO_APPLIED).all()
    assert 0.6 < applied[auto].mean() < 0.8  # 30% of auto tickets audited
    assert (both.loc[applied, "corrected_category"] == both.loc[applied, "category"]).all()
    assert both.loc[applied, "agent_id"].isna().all()
    looked = both[~applied]
    assert (looked["corrected_category"] == looked["category_t"]).all()
    assert (looked["corrected_priority"] == looked["priority_t"]).all()
    assert looked["agent_id"].notna().all()
    right = (looked["category"] == looked["category_t"]) & (
        looked["priority"] == looked["priority_t"]
    )
    assert (looked.loc[right, "label_source"] == CONFIRMED).all()
    assert (looked.loc[~right, "label_source"] == CORRECTED).all() and (~right).any()


def test_answers_come_after_their_ticket_and_never_after_now(
    months: dict[int, replay.Month],
) -> None:
    truth = months[1].truth
    now = truth["created_at"].iloc[len(truth) // 2]
    answers = replay.agent_answers(served_answers(truth), truth, seed=1, now=now.to_pydatetime())
    created = answers["ticket_id"].map(truth.set_index("ticket_id")["created_at"])
    assert (answers["corrected_at"] >= created.where(created <= now, now)).all()
    assert answers["corrected_at"].max() == now
    assert answers["corrected_at"].is_monotonic_increasing


def test_answers_are_reproducible_and_audit_share_is_checked(
    months: dict[int, replay.Month],
) -> None:
    truth = months[1].truth
    now = truth["created_at"].max() + pd.Timedelta(days=30)
    first = replay.agent_answers(served_answers(truth), truth, seed=2, now=now)
    pd.testing.assert_frame_equal(
        first, replay.agent_answers(served_answers(truth), truth, seed=2, now=now)
    )
    none_audited = replay.agent_answers(served_answers(truth), truth, 2, audit_share=0.0, now=now)
    auto = served_answers(truth).set_index("ticket_id")["tier"] == "auto"
    applied = none_audited.set_index("ticket_id")["label_source"] == AUTO_APPLIED
    assert applied.equals(auto.loc[applied.index])
    with pytest.raises(ValueError, match="audit_share"):
        replay.agent_answers(served_answers(truth), truth, seed=2, audit_share=1.5)
