"""Tier thresholds at a target precision: estimation, live rows, coverage, store, scoring, card."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from scipy.stats import binomtest
from sklearn.naive_bayes import ComplementNB
from threadpoolctl import threadpool_limits

from triage_ml import ingest, store, synth
from triage_ml.cli import render
from triage_ml.ingest import ColumnMapping, IngestOptions
from triage_ml.monitoring import tiers
from triage_ml.registry import card
from triage_ml.scoring import batch, files
from triage_ml.settings import AutomationSettings, Settings
from triage_ml.store import tables
from triage_ml.store import thresholds as threshold_queries
from triage_ml.training import candidates
from triage_ml.training.inputs import labels, prepare
from triage_model import predictor as model

pytestmark = pytest.mark.unit

AUTOMATION = AutomationSettings()  # auto 0.95, suggest 0.80, 95 % one-sided bound


def one_class(correct: list[bool], confidence: list[float] | None = None) -> tuple:
    """Predictions of Billing, most confident first, right where ``correct``."""
    n = len(correct)
    conf = np.linspace(0.99, 0.3, n) if confidence is None else np.asarray(confidence)
    truth = np.array(["Billing" if c else "Sales" for c in correct], dtype=object)
    return truth, np.array(["Billing"] * n, dtype=object), conf


def reference_threshold(conf: np.ndarray, correct: np.ndarray, target: float) -> float | None:
    """Brute force: every distinct confidence, scipy's exact interval one row set at a time."""
    found = None
    for t in sorted(set(conf.tolist()), reverse=True):
        above = conf >= t
        k, n = int(correct[above].sum()), int(above.sum())
        low = binomtest(k, n).proportion_ci(2 * AUTOMATION.confidence - 1, "exact").low
        if low >= target:
            found = t
    return found


# ---- the bound and the thresholds ---------------------------------------------


def test_the_vectorised_bound_is_scipy_s_exact_interval() -> None:
    correct = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1] * 5, dtype=bool)
    lows = tiers.precision_lower_bounds(correct, 0.95)
    for n in (1, 2, 3, 7, 30, 60):
        k = int(correct[:n].sum())
        assert lows[n - 1] == pytest.approx(binomtest(k, n).proportion_ci(0.90, "exact").low)
    assert tiers.precision_lower_bounds(np.zeros(3, dtype=bool), 0.95).tolist() == [0, 0, 0]


def test_six_right_of_six_cannot_reach_auto() -> None:
    out = tiers.thresholds_for(["Billing"], *one_class([True] * 6), AUTOMATION)
    assert out == {"auto": {"Billing": None}, "suggest": {"Billing": None}}


def test_a_class_reaches_auto_only_with_enough_evidence() -> None:
    # All right: the 95 % lower bound of k/k passes 0.95 at k = 59 (0.05 ** (1/59) > 0.95).
    assert tiers.thresholds_for(["Billing"], *one_class([True] * 58), AUTOMATION)["auto"] == {
        "Billing": None
    }
    truth, predicted, conf = one_class([True] * 59)
    out = tiers.thresholds_for(["Billing"], truth, predicted, conf, AUTOMATION)
    assert out["auto"]["Billing"] == pytest.approx(conf.min())


def test_the_threshold_is_the_lowest_confidence_that_keeps_the_bound() -> None:
    rng = np.random.default_rng(3)
    conf = np.round(rng.uniform(0.2, 1.0, 400), 2)  # rounded: ties included
    correct = rng.uniform(0, 1, 400) < conf**0.3
    truth = np.where(correct, "Billing", "Sales").astype(object)
    predicted = np.array(["Billing"] * 400, dtype=object)
    estimate = tiers.estimate(["Billing"], truth, predicted, conf, AUTOMATION)
    for tier, target in (("auto", 0.95), ("suggest", 0.80)):
        assert estimate.thresholds[tier]["Billing"] == reference_threshold(conf, correct, target)
    assert estimate.thresholds["suggest"]["Billing"] < estimate.thresholds["auto"]["Billing"]
    assert estimate.precision_low["auto"]["Billing"] >= 0.95
    assert estimate.rows == {"Billing": 400}


def test_thresholds_rise_with_the_target_and_the_confidence_asked() -> None:
    rng = np.random.default_rng(5)
    conf = rng.uniform(0.3, 1.0, 600)
    truth = np.where(rng.uniform(0, 1, 600) < conf, "Billing", "Sales").astype(object)
    predicted = np.array(["Billing"] * 600, dtype=object)
    found = []
    for target in (0.6, 0.7, 0.8, 0.9):
        at = tiers.class_threshold(conf, truth == "Billing", target, 0.95)[0]
        found.append(np.inf if at is None else at)
    assert found == sorted(found)
    loose = tiers.thresholds_for(["Billing"], truth, predicted, conf, AutomationSettings())
    sure = tiers.thresholds_for(
        ["Billing"], truth, predicted, conf, AutomationSettings(confidence=0.99)
    )
    assert sure["suggest"]["Billing"] >= loose["suggest"]["Billing"]


def test_tied_confidences_are_in_or_out_together() -> None:
    # 60 right at 0.9, then 10 at 0.8 of which 5 wrong: a cut inside the 0.8 tie is not allowed.
    conf = [0.9] * 60 + [0.8] * 10
    correct = [True] * 60 + [True] * 5 + [False] * 5
    threshold, low = tiers.class_threshold(np.array(conf), np.array(correct), 0.9, 0.95)
    assert threshold == 0.9 and low == pytest.approx(0.05 ** (1 / 60))


def test_each_class_is_judged_on_its_own_predictions() -> None:
    truth = np.array(["A"] * 100 + ["B"] * 5 + ["A"] * 5, dtype=object)
    predicted = np.array(["A"] * 100 + ["B"] * 10, dtype=object)
    conf = np.full(110, 0.9)
    out = tiers.thresholds_for(["A", "B", "C"], truth, predicted, conf, AUTOMATION)
    assert out["auto"]["A"] == 0.9 and out["auto"]["B"] is None
    assert out["suggest"]["C"] is None and out["auto"]["C"] is None


def test_thresholds_from_held_out_rows_keep_precision_on_fresh_rows() -> None:
    # Calibrated confidences: the fresh rows' precision in each tier stays at its target.
    rng = np.random.default_rng(8)

    def draw(n: int) -> tuple:
        conf = rng.uniform(0.5, 1.0, n)
        right = rng.uniform(0, 1, n) < conf
        return np.where(right, "A", "B").astype(object), np.array(["A"] * n, dtype=object), conf

    fitted = tiers.thresholds_for(["A"], *draw(3000), AUTOMATION)
    truth, predicted, conf = draw(20000)
    tiered = model.assign_tiers(predicted, conf, np.zeros(len(conf), dtype=bool), fitted)
    frame = pd.DataFrame(
        {"category": predicted, "tier": tiered, "final_category": truth, "category_proba": conf}
    )
    measured = tiers.measured_precision(frame).set_index("tier")
    assert measured.loc["auto", "precision"] >= 0.95
    assert (
        measured.loc[["auto", "suggest"], "correct"].sum()
        / measured.loc[["auto", "suggest"], "predictions"].sum()
        >= 0.80
    )


# ---- live rows, measured precision, coverage ------------------------------------


def joined_frame() -> pd.DataFrame:
    """Served predictions with final labels, as ``monitoring.live.joined`` returns them."""
    return pd.DataFrame(
        {
            "category": ["A", "A", "A", "A", "B", "B", "unknown"],
            "category_proba": [0.99, 0.9, 0.6, 0.5, 0.8, 0.7, 0.2],
            "tier": ["auto", "auto", "suggest", "review", "suggest", "suggest", "review"],
            "final_category": ["A", "B", "A", np.nan, "B", "B", "A"],
            "final_category_source": [
                tables.CONFIRMED,
                tables.CORRECTED,
                tables.ORIGINAL,
                np.nan,
                tables.AUTO_APPLIED,
                tables.CONFIRMED,
                tables.CORRECTED,
            ],
        }
    )


def test_live_rows_leave_out_unlabeled_and_auto_applied_rows() -> None:
    truth, predicted, conf = tiers.live_rows(joined_frame())
    assert truth.tolist() == ["A", "B", "A", "B", "A"]
    assert predicted.tolist() == ["A", "A", "A", "B", "unknown"]
    assert conf.tolist() == [0.99, 0.9, 0.6, 0.7, 0.2]


def test_measured_precision_per_class_and_tier() -> None:
    out = tiers.measured_precision(joined_frame())
    assert list(out.columns) == [
        "category",
        "tier",
        "predictions",
        "correct",
        "precision",
        "coverage",
        "precision_at_or_above",
    ]
    assert out[["category", "tier"]].values.tolist()[:2] == [["A", "auto"], ["A", "suggest"]]
    rows = {(r.category, r.tier): r for r in out.itertuples(index=False)}
    # The suggest target bounds suggest and auto rows together: 2 right of 3.
    assert rows["A", "suggest"].precision_at_or_above == pytest.approx(2 / 3)
    assert rows["A", "auto"].precision_at_or_above == 0.5
    assert (rows["A", "auto"].predictions, rows["A", "auto"].correct) == (2, 1)
    assert rows["A", "auto"].precision == 0.5
    assert rows["A", "auto"].coverage == pytest.approx(2 / 3)
    assert rows["A", "suggest"].coverage == pytest.approx(1 / 3)
    # The auto-applied B row is not evidence: one labeled B prediction remains.
    assert rows["B", "suggest"].predictions == 1 and rows["B", "suggest"].precision == 1.0
    assert ("A", "review") not in rows  # its only row has no final label
    assert rows["unknown", "review"].precision == 0.0


def test_measured_precision_of_no_labels_is_an_empty_table() -> None:
    frame = joined_frame().assign(final_category=np.nan)
    out = tiers.measured_precision(frame)
    assert out.empty and "precision" in out.columns


def test_live_estimate_only_for_classes_with_enough_labels() -> None:
    rows = 80
    frame = pd.DataFrame(
        {
            "category": ["A"] * rows + ["B"] * 10,
            "category_proba": np.linspace(0.99, 0.6, rows + 10),
            "tier": "suggest",
            "final_category": ["A"] * rows + ["B"] * 10,
            "final_category_source": tables.CONFIRMED,
        }
    )
    estimate = tiers.live_estimate(frame, AutomationSettings(min_live_rows=30))
    assert set(estimate.thresholds["auto"]) == {"A"} and estimate.rows == {"A": rows}
    assert estimate.thresholds["auto"]["A"] is not None


def test_coverage_at_a_precision_is_the_share_of_a_class_s_rows_reaching_its_threshold() -> None:
    # A: 100 right predictions at 0.9, 20 wrong at 0.4 (truth B): the threshold is 0.9.
    # B: 20 true rows all predicted A at 0.4 (below A's threshold): no B row is covered.
    truth = np.array(["A"] * 100 + ["B"] * 20 + ["C"] * 10, dtype=object)
    predicted = np.array(["A"] * 120 + ["C"] * 10, dtype=object)
    conf = np.array([0.9] * 100 + [0.4] * 20 + [0.99] * 10)
    out = tiers.coverage_at(["A", "B", "C", "D"], truth, predicted, conf, 0.95, AUTOMATION)
    assert out["A"] == 1.0 and out["B"] == 0.0
    assert out["C"] == 0.0  # ten right answers are too few for 0.95
    assert out["D"] is None
    lower = tiers.coverage_at(["C"], truth, predicted, conf, 0.70, AUTOMATION)
    assert lower["C"] == 1.0


# ---- applying thresholds ---------------------------------------------------------


def served() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "category": ["A", "A", "B", "unknown"],
            "category_proba": [0.95, 0.7, 0.99, 0.1],
            "needs_review": [False, False, False, True],
            "tier": ["auto", "suggest", "auto", "review"],
        }
    )


def test_applied_thresholds_change_only_the_classes_they_name() -> None:
    out = tiers.apply_thresholds(served(), {"auto": {"A": None}, "suggest": {"A": 0.8}})
    assert out["tier"].tolist() == ["suggest", "review", "auto", "review"]
    assert out["needs_review"].tolist() == [False, True, False, True]
    assert served()["tier"].tolist() == ["auto", "suggest", "auto", "review"]  # not in place


def test_an_abstention_stays_review_even_if_named() -> None:
    out = tiers.apply_thresholds(served(), {"auto": {"unknown": 0.0}, "suggest": {}})
    assert out["tier"].iloc[3] == "review" and bool(out["needs_review"].iloc[3])


def test_predictions_of_a_model_before_tiers_get_a_tier_from_needs_review() -> None:
    old = served().drop(columns="tier").assign(sentiment=0.0)
    out = tiers.with_tier(old)
    assert list(out.columns) == ["category", "category_proba", "needs_review", "tier", "sentiment"]
    assert out["tier"].tolist() == ["suggest", "suggest", "suggest", "review"]
    applied = tiers.apply_thresholds(old, {"auto": {"B": 0.9}})
    assert applied["tier"].tolist() == ["suggest", "suggest", "auto", "review"]


# ---- the store ---------------------------------------------------------------------


def test_thresholds_round_trip_with_unreachable_tiers(engine: sa.Engine) -> None:
    held_out = {"auto": {"A": 0.9, "B": None}, "suggest": {"A": 0.6, "B": 0.7}}
    with engine.begin() as conn:
        written = threshold_queries.write_thresholds(
            conn, "3", held_out, "held-out", {"A": 120, "B": 40}, {"auto": {"A": 0.951}}
        )
    assert written == 4
    with engine.connect() as conn:
        assert threshold_queries.latest_thresholds(conn, "3") is None  # no live ones yet
        assert threshold_queries.latest_thresholds(conn, "3", source=None) == held_out
        assert threshold_queries.latest_thresholds(conn, "4", source=None) is None
    live = {"auto": {"B": 0.97}, "suggest": {"B": 0.75}}
    with engine.begin() as conn:
        threshold_queries.write_thresholds(conn, "3", live, "live", {"B": 60})
    with engine.connect() as conn:
        assert threshold_queries.latest_thresholds(conn, "3") == live
        rows = {(r["category"], r["tier"]): r for r in threshold_queries.threshold_rows(conn, "3")}
    assert rows["A", "auto"]["source"] == "held-out" and rows["A", "auto"]["rows"] == 120
    assert rows["A", "auto"]["precision_low"] == pytest.approx(0.951)
    assert rows["B", "auto"]["source"] == "live" and rows["B", "auto"]["threshold"] == 0.97
    assert len(rows) == 4  # replaced, not added


# ---- batch scoring with live thresholds ------------------------------------------------


@pytest.fixture(scope="module")
def predictor(small_data: synth.SyntheticData) -> model.TriagePredictor:
    """Naive Bayes on 400 tickets: every class suggested from 0.0, none automated."""
    with threadpool_limits(1):
        rows = prepare(small_data.tickets.head(400))
        features = candidates.text_features({})
        category = ComplementNB().fit(features.fit_transform(rows), labels(rows))
    classes = [str(c) for c in category.classes_]
    config = {
        model.TIER_THRESHOLDS: {
            "auto": dict.fromkeys(classes),
            "suggest": dict.fromkeys(classes, 0.0),
        },
        # Every language the synthetic tickets are written in is supported here, so that tiers
        # come from the thresholds alone (an unsupported language would send a row to review).
        "languages": ["en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "da", "tr", "ru"],
    }
    return model.TriagePredictor(features, category, config=config)


def test_batch_scoring_writes_tiers_and_applies_the_version_s_live_thresholds(
    tmp_path: Path, tickets_csv: Path, predictor: model.TriagePredictor
) -> None:
    engine = store.connect(f"sqlite:///{tmp_path / 'store.db'}")
    ingest.ingest_tickets(engine, tickets_csv, ColumnMapping(), IngestOptions(synth.PRIORITIES))
    automated = predictor.classes[0]
    with engine.begin() as conn:
        # Live for version 2 (scored here) and version 1 (not applied: another version).
        threshold_queries.write_thresholds(conn, "2", {"auto": {automated: 0.0}}, "live")
        threshold_queries.write_thresholds(conn, "1", {"suggest": {automated: None}}, "live")
    summary = batch.score_partition(engine, predictor, "2", chunk_rows=250)
    with engine.connect() as conn:
        stored = pd.read_sql(sa.select(tables.predictions), conn)
    engine.dispose()
    assert summary.scored == len(stored) > 250 and summary.chunks >= 2
    mine = stored["category"] == automated
    assert 0 < mine.sum() < len(stored)
    # Escalated rows stay suggestions however sure the live estimate is.
    escalated = stored["escalation"] != "[]"
    assert set(stored.loc[mine & ~escalated, "tier"]) == {"auto"}
    assert set(stored.loc[mine & escalated, "tier"]) <= {"suggest"}
    assert set(stored.loc[~mine, "tier"]) == {"suggest"}
    assert (stored["needs_review"] == (stored["tier"] == "review")).all()
    assert summary.tiers == stored["tier"].value_counts().to_dict()
    assert batch.combine([summary, summary], "2").tiers == {
        k: 2 * v for k, v in summary.tiers.items()
    }


# ---- the model card --------------------------------------------------------------------


def card_with(automation: dict) -> card.Card:
    labels_, matrix = card.confusion(["A", "B"], ["A", "B"])
    data = card.DataFacts("d", ("b",), None, None, {"A": 60, "B": 60}, {"en": 120}, 2)
    return card.Card(
        "m", "1", "r", "logreg", {}, {}, ("body",), ("body",), (), {}, labels_, matrix, data,
        {"promote": True, "reason": "ok"}, "sha", automation,
    )  # fmt: skip


def test_the_card_reports_held_out_automation_coverage_per_class() -> None:
    test = pd.DataFrame({"category": ["A"] * 100 + ["B"] * 20})
    predicted = pd.DataFrame(
        {"category": ["A"] * 100 + ["B"] * 20, "category_proba": [0.9] * 100 + [0.8] * 20}
    )
    facts = card.automation_facts(Settings(), test["category"].tolist(), predicted)
    assert facts["auto"]["precision"] == 0.95 and facts["suggest"]["precision"] == 0.80
    assert facts["auto"]["coverage"] == {"A": 1.0, "B": 0.0}
    assert facts["suggest"]["coverage"] == {"A": 1.0, "B": 1.0}
    text = card.model_card(card_with(facts))
    assert "## Automation at a target precision" in text
    assert "| class | auto (precision 0.95) | suggest (precision 0.8) |" in text
    assert "| A | 100% | 100% |" in text and "| B | 0% | 100% |" in text
    assert text.index("## Held-out metrics") < text.index("## Automation") < text.index("## Data")
    assert "## Automation" not in card.model_card(card_with({}))


def test_a_card_of_many_classes_keeps_the_least_automated_within_the_limit() -> None:
    classes = [f"intent_{i:03d}" for i in range(150)]
    coverage = {c: i / 150 for i, c in enumerate(classes)}
    facts = {
        "auto": {"precision": 0.95, "coverage": coverage},
        "suggest": {"precision": 0.8, "coverage": dict.fromkeys(classes, 1.0)},
    }
    labels_, matrix = card.confusion(classes * 3, classes[1:] + classes[:1] + classes * 2)
    data = dataclasses.replace(
        card_with({}).data, class_counts=dict.fromkeys(classes, 40), test_rows=450
    )
    base = card_with(facts)
    text = card.model_card(dataclasses.replace(base, labels=labels_, confusion=matrix, data=data))
    assert len(text) <= card.MAX_CARD_CHARS
    assert "the 10 least automated classes" in text
    assert "| intent_000 | 0% | 100% |" in text and "| intent_149 |" not in text.split("## Data")[0]


def test_a_scored_file_has_tiers_and_the_cli_counts_them(
    tmp_path: Path, small_data: synth.SyntheticData, predictor: model.TriagePredictor
) -> None:
    source = tmp_path / "tickets.csv"
    small_data.tickets.tail(60).drop(columns=["category", "priority"]).to_csv(source, index=False)
    output = tmp_path / "scored.csv"
    result = files.score_file(
        predictor, "2", source, output, ColumnMapping(labeled=False), synth.PRIORITIES, 25
    )
    scored = pd.read_csv(output)
    columns = list(scored.columns)
    assert columns.index("tier") == columns.index("needs_review") + 1
    assert set(scored["tier"]) == {"suggest"}  # the fixture's model suggests every class
    assert result["tiers"] == {"suggest": 60}
    assert render.score(result).plain.endswith("(0 auto, 60 suggest, 0 review)")
    stored = {"scored": 9, "model_version": "2", "needs_review": 1, "partitions": 1}
    stored |= {"chunks": 1, "seconds": 0.5, "tiers": {"auto": 5, "suggest": 3, "review": 1}}
    assert "; 5 auto, 3 suggest, 1 flagged for review (" in render.score(stored).plain
    assert "; 1 flagged for review (" in render.score({**stored, "tiers": {}}).plain


def test_live_thresholds_never_automate_escalated_or_unsupported_language_rows() -> None:
    # The live set would automate every Billing row; escalation caps at suggest, French is review.
    predictions = pd.DataFrame(
        {
            "category": ["Billing", "Billing", "Billing"],
            "category_proba": [0.99, 0.99, 0.99],
            "needs_review": [False, False, True],
            "tier": ["suggest", "suggest", "review"],
            "escalation": ["[]", '["legal"]', "[]"],
            "language": ["en", "de", "fr"],
        }
    )
    live = {"auto": {"Billing": 0.5}, "suggest": {"Billing": 0.1}}
    out = tiers.apply_thresholds(predictions, live, ["en", "de"])
    assert out["tier"].tolist() == ["auto", "suggest", "review"]
    assert out["needs_review"].tolist() == [False, False, True]
