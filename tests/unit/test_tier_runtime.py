"""The model runtime's tiers: assign_tiers, the tier column, and models trained before tiers."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.naive_bayes import ComplementNB
from threadpoolctl import threadpool_limits

from triage_ml import synth
from triage_ml.training import candidates
from triage_ml.training.inputs import labels, prepare
from triage_model import blend
from triage_model import predictor as model

pytestmark = pytest.mark.unit

THRESHOLDS = {
    "auto": {"Billing": 0.9, "Shipping": None},
    "suggest": {"Billing": 0.6, "Shipping": 0.5},
}


def tiers_of(categories: list[str], confidence: list[float], abstained: list[bool]) -> list[str]:
    return model.assign_tiers(categories, confidence, abstained, THRESHOLDS)


def test_each_class_has_its_own_thresholds() -> None:
    out = tiers_of(
        ["Billing", "Billing", "Billing", "Shipping", "Shipping"],
        [0.95, 0.7, 0.5, 0.55, 0.4],
        [False] * 5,
    )
    assert out == ["auto", "suggest", "review", "suggest", "review"]


def test_a_threshold_is_reached_at_equality() -> None:
    assert tiers_of(["Billing", "Billing"], [0.9, 0.6], [False, False]) == ["auto", "suggest"]


def test_an_unreachable_tier_is_never_given_however_confident() -> None:
    # Shipping's auto threshold is None: even certainty is only a suggestion.
    assert tiers_of(["Shipping"] * 3, [1.0, 0.999, 0.5], [False] * 3) == ["suggest"] * 3


def test_a_class_without_thresholds_and_nan_confidence_go_to_review() -> None:
    out = tiers_of(["Returns", "Billing"], [0.99, float("nan")], [False, False])
    assert out == ["review", "review"]


def test_abstained_rows_are_always_review() -> None:
    out = tiers_of(["Billing", "unknown"], [0.99, 0.99], [True, True])
    assert out == ["review", "review"]


def test_tiers_are_monotonic_in_confidence() -> None:
    confidence = np.linspace(0, 1, 101)
    rank = {"review": 0, "suggest": 1, "auto": 2}
    out = [rank[t] for t in tiers_of(["Billing"] * 101, list(confidence), [False] * 101)]
    assert out == sorted(out) and set(out) == {0, 1, 2}


def test_assign_tiers_takes_no_rows() -> None:
    assert model.assign_tiers([], [], [], THRESHOLDS) == []


@pytest.fixture(scope="module")
def predictor(small_data: synth.SyntheticData) -> model.TriagePredictor:
    """n-gram features and naive Bayes on 400 tickets (no priority model), with tier thresholds."""
    with threadpool_limits(1):
        rows = prepare(small_data.tickets.head(400))
        features = candidates.text_features({})
        category = ComplementNB().fit(features.fit_transform(rows), labels(rows))
    classes = [str(c) for c in category.classes_]
    tiers = {"auto": dict.fromkeys(classes, 0.5), "suggest": dict.fromkeys(classes, 0.3)}
    tiers["auto"][classes[0]] = None
    config = {"review_threshold": 0.5, model.TIER_THRESHOLDS: tiers}
    return model.TriagePredictor(features, category, config=config)


@pytest.fixture(scope="module")
def tickets(small_data: synth.SyntheticData) -> pd.DataFrame:
    return small_data.tickets.tail(120).drop(columns=["category", "priority"])


def test_the_tier_column_follows_needs_review_in_the_output(
    predictor: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    out = predictor.predict(tickets)
    assert tuple(out.columns) == model.OUTPUT_COLUMNS
    assert model.OUTPUT_COLUMNS.index("tier") == model.OUTPUT_COLUMNS.index("needs_review") + 1
    assert set(out["tier"]) <= {"auto", "suggest", "review"}
    assert out["needs_review"].dtype == bool
    assert out["needs_review"].tolist() == (out["tier"] == "review").tolist()


def test_served_tiers_are_the_config_s_thresholds(
    predictor: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    out = predictor.predict(tickets)
    expected = model.assign_tiers(
        out["category"],
        out["category_proba"],
        [False] * len(out),
        predictor.config["tier_thresholds"],
    )
    # An escalation signal lowers auto to suggest; an unsupported language is reviewed.
    signals = [json.loads(found) for found in out["escalation"]]
    expected = blend.escalated_tiers(expected, signals)
    expected = [
        "review" if language not in ("en", "de") else tier
        for tier, language in zip(expected, out["language"])
    ]
    assert out["tier"].tolist() == expected
    first = predictor.classes[0]
    assert "auto" not in set(out.loc[out["category"] == first, "tier"])
    assert len(set(out["tier"])) >= 2


def test_abstentions_are_review(predictor: model.TriagePredictor, tickets: pd.DataFrame) -> None:
    unsure = dataclasses.replace(predictor, config={**predictor.config, "abstain_threshold": 1.01})
    out = unsure.predict(tickets)
    assert set(out["category"]) == {model.UNKNOWN}
    assert set(out["tier"]) == {"review"} and out["needs_review"].all()


def test_a_model_without_tier_thresholds_keeps_its_review_flags(
    predictor: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    config = {"review_threshold": 0.0, "review_thresholds": {predictor.classes[1]: 1.01}}
    old = dataclasses.replace(predictor, config=config)
    out = old.predict(tickets)
    # Flagged by the class's threshold, or for a language the model does not support.
    flagged = (
        (out["category"] == predictor.classes[1]) | ~out["language"].isin(["en", "de", "und"])
    ).tolist()
    assert out["needs_review"].tolist() == flagged
    # Before tiers nothing was automated: what is not flagged is a suggestion.
    assert out["tier"].tolist() == ["review" if f else "suggest" for f in flagged]


def test_an_empty_batch_has_a_tier_column(predictor: model.TriagePredictor) -> None:
    out = predictor.predict(pd.DataFrame({"body": pd.Series(dtype=object)}))
    assert tuple(out.columns) == model.OUTPUT_COLUMNS and out.empty


def test_the_runtime_still_imports_nothing_from_the_platform() -> None:
    code = (
        "import sys, triage_model.predictor, triage_model.pyfunc; "
        "print(any(m.split('.')[0] == 'triage_ml' for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
