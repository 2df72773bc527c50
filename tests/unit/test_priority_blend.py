"""The blended answers: priority score and parts, escalated priority and tiers, language routes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from triage_model import blend

pytestmark = pytest.mark.unit

SCALE = ["critical", "urgent", "high", "medium", "normal", "low"]
LEVELS = ["high", "low", "medium"]  # the model's columns, alphabetical as scikit-learn sorts them
WEIGHTS = {"model": 0.6, "value": 0.25, "sentiment": 0.15}
QUANTILES = np.linspace(0.0, 1000.0, 101).tolist()


def test_severity_runs_from_the_model_s_least_to_most_urgent_level() -> None:
    assert blend.severities(LEVELS, SCALE).tolist() == [1.0, 0.0, 0.5]
    assert blend.severities(["low"], SCALE).tolist() == [0.5]


def test_the_score_is_the_weighted_mean_of_its_parts() -> None:
    proba = np.array([[0.5, 0.2, 0.3]])  # model part: 100 * (0.5 * 1 + 0.3 * 0.5) = 65
    score, parts = blend.priority_score(
        proba, LEVELS, SCALE, np.array([250.0]), np.array([-0.4]), WEIGHTS, QUANTILES
    )
    assert json.loads(parts[0]) == {
        "model": 65.0,
        "value": 25.0,
        "sentiment": 40.0,
        "weights": WEIGHTS,
    }
    assert score.tolist() == [round(0.6 * 65 + 0.25 * 25 + 0.15 * 40, 1)]


def test_missing_parts_are_null_and_the_weights_renormalised() -> None:
    proba = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    score, parts = blend.priority_score(
        proba, LEVELS, SCALE, np.array([np.nan, 1000.0]), np.array([np.nan, 0.7]), WEIGHTS, []
    )
    first, second = (json.loads(p) for p in parts)
    assert first["value"] is None and first["sentiment"] is None and first["model"] == 100.0
    assert score[0] == 100.0  # the model part alone
    # Positive sentiment adds no urgency: its part is 0, not absent.
    assert second["sentiment"] == 0.0 and second["value"] is None
    assert score[1] == 0.0


def test_without_a_priority_model_or_any_part_the_score_is_nan() -> None:
    score, parts = blend.priority_score(
        None, [], SCALE, np.array([np.nan]), np.array([np.nan]), WEIGHTS, QUANTILES
    )
    assert np.isnan(score[0])
    assert json.loads(parts[0])["model"] is None


def test_scores_stay_within_0_and_100() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=200)
    score, _ = blend.priority_score(
        proba,
        LEVELS,
        SCALE,
        rng.uniform(-100, 2000, 200),
        rng.uniform(-1, 1, 200),
        WEIGHTS,
        QUANTILES,
    )
    assert np.all((score >= 0) & (score <= 100))


def test_value_percentiles_interpolate_and_give_ties_their_middle() -> None:
    assert blend.value_percentiles(np.array([0.0, 500.0, 2000.0]), QUANTILES).tolist() == [
        0.0,
        0.5,
        1.0,
    ]
    tied = [0.0] * 51 + [10.0] * 50  # half the customers have no value at all
    middles = [np.mean(np.linspace(0, 1, 101)[:51]), np.mean(np.linspace(0, 1, 101)[51:])]
    assert blend.value_percentiles(np.array([0.0, 10.0]), tied).tolist() == middles
    assert np.isnan(blend.value_percentiles(np.array([np.nan]), tied)[0])


def test_a_signal_raises_the_priority_never_lowers_it() -> None:
    rule = {"legal": "high", "outage": "critical", "social": "not-a-level"}
    priority, raised = blend.escalated_priority(
        ["low", "urgent", "low", None, "medium"],
        [["legal"], ["legal"], ["social"], ["outage"], ["legal", "outage"]],
        rule,
        SCALE,
    )
    assert priority == ["high", "urgent", "low", None, "critical"]
    assert raised.tolist() == [True, False, False, False, True]


def test_any_signal_turns_auto_into_suggest() -> None:
    tiers = blend.escalated_tiers(
        ["auto", "auto", "review", "suggest"], [[], ["repeat_contact"], ["legal"], ["legal"]]
    )
    assert tiers == ["auto", "suggest", "review", "suggest"]


def test_language_routes_override_and_unsupported_languages_go_to_review() -> None:
    routes, unsupported = blend.language_routes(
        ["billing", "billing", "tech", "tech", "tech"],
        ["en", "de", "fr", "pl", "und"],
        ["en", "de"],
        {"de": "dach-team", "fr": "french-desk"},
        "translation-queue",
    )
    assert routes == [
        "billing",
        "dach-team",
        "french-desk",
        "translation-queue",
        "tech",  # undetermined: neither flagged nor rerouted
    ]
    assert unsupported.tolist() == [False, False, True, True, False]
