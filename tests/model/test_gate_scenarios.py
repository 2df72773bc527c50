"""The gate on real models scored on the same test rows: what it promotes and what it refuses.

Each model is a real retraining's challenger (category candidate, priority
stack, review thresholds) fitted on deliberately changed labels; the test
rows and their labels are never touched.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from triage_ml.registry import promotion
from triage_ml.settings import Settings
from triage_ml.training import candidates, dataset, fit, inputs, priority, retrain

pytestmark = [pytest.mark.model, pytest.mark.slow]

Relabel = Callable[[pd.DataFrame], pd.DataFrame]
SETTINGS = Settings()
COLLAPSED, INTO = "Shipping", "Returns"


def unchanged(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


def shuffled(share: float, seed: int) -> Relabel:
    """Replace ``share`` of the category labels with random other ones."""

    def relabel(frame: pd.DataFrame) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        rows = rng.random(len(frame)) < share
        labels = frame["category"].to_numpy(dtype=object).copy()
        labels[rows] = rng.choice(sorted(set(labels)), size=int(rows.sum()))
        return frame.assign(category=labels)

    return relabel


def merged(frame: pd.DataFrame) -> pd.DataFrame:
    """Every ``COLLAPSED`` ticket labeled ``INTO``: the model never learns the class."""
    return frame.assign(category=frame["category"].replace({COLLAPSED: INTO}))


def challenger(split: dataset.Split, relabel: Relabel) -> retrain.Challenger:
    prepared = inputs.Prepared(
        split, inputs.prepare(relabel(split.train)), inputs.prepare(relabel(split.valid))
    )
    matrices = inputs.featurize(prepared.train, prepared.valid)
    spec = candidates.category_specs(("complement_nb",), {}, {})[0]
    best = fit.fit_candidate(spec, matrices, SETTINGS.train.seed)
    stacked = priority.fit_on_final_rows(prepared, matrices, SETTINGS.train)
    predictor = retrain.assemble_challenger(best, prepared, matrices, SETTINGS, stacked)
    metrics, predictions = fit.evaluate(predictor, split.test, SETTINGS.priority_levels)
    return retrain.Challenger(predictor, best.name, metrics, predictions)


@pytest.fixture(scope="module")
def models(split: dataset.Split) -> dict[str, retrain.Challenger]:
    return {
        "clean": challenger(split, unchanged),
        "clean_again": challenger(split, unchanged),
        "corrupted": challenger(split, shuffled(0.5, seed=1)),
        "noisy": challenger(split, shuffled(0.85, seed=2)),
        "collapsed": challenger(split, merged),
    }


def verdict(models: dict[str, retrain.Challenger], split: dataset.Split, new: str, old: str | None):
    champion = promotion.ChampionOnTest()
    if old is not None:
        champion = promotion.ChampionOnTest("1", models[old].metrics, models[old].predictions)
    return promotion.judge(
        models[new].metrics, models[new].predictions, champion, split.test, SETTINGS
    )


def failed(decision) -> set[str]:
    return {check.name for check in decision.checks if not check.passed}


def test_a_first_model_has_nothing_to_beat(models, split) -> None:
    decision = verdict(models, split, "clean", None)
    assert decision.promote and decision.reason.startswith("first model")


def test_a_better_model_is_promoted(models, split) -> None:
    decision = verdict(models, split, "clean", "corrupted")
    assert decision.promote, decision.reason
    assert decision.interval[0] > 0


def test_the_same_model_retrained_on_the_same_data_is_not_promoted(models, split) -> None:
    decision = verdict(models, split, "clean_again", "clean")
    assert not decision.promote
    assert decision.interval == (0.0, 0.0) and {"threshold", "bootstrap"} <= failed(decision)


def test_a_model_trained_on_corrupted_labels_is_rejected(models, split) -> None:
    decision = verdict(models, split, "corrupted", "clean")
    assert not decision.promote and decision.interval[1] < 0
    assert {"threshold", "bootstrap"} <= failed(decision)


def test_a_better_model_that_collapses_one_class_is_rejected(models, split) -> None:
    decision = verdict(models, split, "collapsed", "noisy")
    new, old = models["collapsed"].metrics, models["noisy"].metrics
    assert (
        new["category_macro_f1"] > old["category_macro_f1"] + SETTINGS.gate.min_delta
    )  # better overall...
    assert not decision.promote
    assert f"category_f1.{COLLAPSED}" in failed(
        decision
    )  # ...but the guardrail catches the lost class
    assert {"threshold", "bootstrap"}.isdisjoint(failed(decision))
