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
from triage_ml.training import candidates, dataset, fit, inputs, priority, retrain, selection

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
    """The model a retraining measures: the candidate fitted on the (relabeled) fit part."""
    train = SETTINGS.train
    prepared = inputs.Prepared(
        split, inputs.prepare(relabel(split.train)), inputs.prepare(split.test)
    )
    matrices = inputs.featurize(prepared.train, prepared.test)
    spec = candidates.category_specs(("complement_nb",), {}, {})[-1]
    folds = selection.make_folds(matrices.y_train, 3, 2_000, train.seed, split.time_ordered)
    chosen = selection.cross_validate(spec, matrices.train, folds, train.seed)
    stacked = priority.fit_stage(prepared.train, matrices.train, matrices.features, train)
    config = retrain.serving_config(SETTINGS, chosen, folds)
    predictor = retrain.evaluation_predictor(chosen, matrices, stacked, config)
    metrics, predictions = fit.evaluate(predictor, split.test, SETTINGS.priority_levels)
    return retrain.Challenger(predictor, chosen.name, metrics, predictions)


@pytest.fixture(scope="module")
def models(split: dataset.Split) -> dict[str, retrain.Challenger]:
    return {
        "clean": challenger(split, unchanged),
        "clean_again": challenger(split, unchanged),
        "corrupted": challenger(split, shuffled(0.5, seed=1)),
        "noisy": challenger(split, shuffled(0.85, seed=2)),
        "collapsed": challenger(split, merged),
    }


def verdict(
    models: dict[str, retrain.Challenger],
    split: dataset.Split,
    new: str,
    old: str | None,
    unseen: np.ndarray | None = None,
):
    """The gate's decision on ``new`` against champion ``old``, on the test rows it never saw."""
    champion = promotion.ChampionOnTest()
    if old is not None:
        unseen = np.ones(len(split.test), dtype=bool) if unseen is None else unseen
        rows = split.test[unseen].reset_index(drop=True)
        metrics, predictions = fit.evaluate(models[old].predictor, rows, SETTINGS.priority_levels)
        champion = promotion.ChampionOnTest("1", metrics, predictions, unseen)
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


def test_a_champion_that_trained_on_every_test_row_cannot_be_judged(models, split) -> None:
    seen = np.zeros(len(split.test), dtype=bool)
    decision = promotion.judge(
        models["clean"].metrics,
        models["clean"].predictions,
        promotion.ChampionOnTest("1", None, None, seen),
        split.test,
        SETTINGS,
    )
    assert not decision.promote and failed(decision) == {"unseen rows"}
    assert f"0 of {len(split.test)} test rows" in decision.reason


def test_the_gate_judges_both_models_only_on_rows_the_champion_never_saw(models, split) -> None:
    unseen = np.arange(len(split.test)) % 2 == 0
    decision = verdict(models, split, "clean", "corrupted", unseen)
    rows = split.test[unseen].reset_index(drop=True)
    ours = models["clean"].predictions[unseen].reset_index(drop=True)
    expected = fit.metrics.evaluate_predictions(ours, rows, SETTINGS.priority_levels)
    assert decision.challenger["n"] == unseen.sum() == expected["n"]
    assert decision.challenger["category_macro_f1"] == expected["category_macro_f1"]
    assert decision.champion is not None and decision.champion["n"] == unseen.sum()
    # Half the rows: a different (wider) bootstrap interval than on all of them.
    whole = verdict(models, split, "clean", "corrupted")
    assert decision.interval is not None and whole.interval is not None
    assert decision.interval[1] - decision.interval[0] > whole.interval[1] - whole.interval[0]
