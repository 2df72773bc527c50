"""Choosing the category model by cross-validation inside the fit part, and the 1-SE rule."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from triage_ml import synth
from triage_ml.training import candidates, inputs, selection

pytestmark = pytest.mark.unit

FAST = {"word_features": 2_000, "char_features": 2_000}


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread() -> Iterator[None]:
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def matrices(small_data: synth.SyntheticData) -> inputs.Matrices:
    tickets = inputs.prepare(small_data.tickets)
    return inputs.featurize(tickets.iloc[:450], tickets.iloc[450:], FAST)


def test_budget_rows_are_bounded_proportional_and_keep_every_class() -> None:
    y = np.array(["a"] * 900 + ["b"] * 99 + ["c"], dtype=object)
    rows = selection.budget_rows(y, 200, seed=0)
    assert len(rows) in (200, 201) and (y[rows] == "b").sum() == 20 and (y[rows] == "c").sum() == 1
    assert np.all(np.diff(rows) > 0)  # sorted: time order is kept
    assert len(selection.budget_rows(y, 5_000, seed=0)) == 1_000


def test_stratified_folds_cover_every_row_once() -> None:
    y = np.array(["a", "b", "c"] * 20, dtype=object)
    folds = selection.make_folds(y, 3, 1_000, seed=0, time_ordered=False)
    valid = np.concatenate([v for _, v in folds.splits])
    assert sorted(valid.tolist()) == list(range(60)) and len(folds.splits) == 3
    assert list(folds.classes) == ["a", "b", "c"]


def test_time_ordered_folds_validate_only_on_later_rows() -> None:
    y = np.array(["a", "b"] * 30, dtype=object)
    folds = selection.make_folds(y, 3, 1_000, seed=0, time_ordered=True)
    for train, valid in folds.splits:
        assert train.max() < valid.min()
    assert 0 not in folds.validated  # the first block is only ever fitted on


def test_fold_probabilities_are_aligned_to_every_class(matrices: inputs.Matrices) -> None:
    classes = np.unique(matrices.y_train)
    seen = matrices.y_train != classes[0]
    model = candidates.build_complement_nb({}, 0).fit(matrices.train[seen], matrices.y_train[seen])
    proba = selection.fold_proba(model, matrices.test, classes)
    assert proba.shape == (matrices.test.shape[0], len(classes))
    assert np.all(proba[:, 0] == 0) and np.allclose(proba.sum(axis=1), 1.0)


def test_cross_validation_keeps_the_best_setting_and_out_of_fold_probabilities(
    matrices: inputs.Matrices,
) -> None:
    # alpha=1e6 smooths every class to the prior: it cannot win.
    spec = candidates.CandidateSpec(
        "complement_nb", candidates.build_complement_nb, {}, {"alpha": (1e6, 0.3)}
    )
    folds = selection.make_folds(matrices.y_train, 3, 300, seed=0, time_ordered=False)
    scored = selection.cross_validate(spec, matrices.train, folds, seed=0)
    assert scored.params == {"alpha": 0.3} and scored.blueprint.alpha == 0.3
    assert scored.settings_tried == 2 and len(scored.fold_scores) == 3
    assert scored.oof_proba.shape == (len(folds.rows), len(folds.classes))
    assert abs(len(folds.rows) - 300) <= len(folds.classes) and 0.5 < scored.mean <= 1.0
    # Each row's probabilities come from the fold model that did not see it.
    train, valid = folds.splits[0]
    x = matrices.train[folds.rows]
    model = candidates.build_complement_nb({"alpha": 0.3}, 0).fit(x[train], folds.y[train])
    np.testing.assert_allclose(scored.oof_proba[valid], model.predict_proba(x[valid]))


def test_the_ensemble_is_scored_from_its_members_out_of_fold_probabilities(
    matrices: inputs.Matrices,
) -> None:
    folds = selection.make_folds(matrices.y_train, 3, 1_000, seed=0, time_ordered=False)
    specs = candidates.category_specs(("complement_nb",), {"baseline": {}}, grids={})
    scored = [selection.cross_validate(s, matrices.train, folds, 0) for s in specs]
    vote = selection.ensemble(scored, folds, members=2)
    assert vote is not None and vote.name == "ensemble"
    np.testing.assert_allclose(vote.oof_proba, np.mean([s.oof_proba for s in scored], axis=0))
    assert selection.ensemble(scored[:1], folds, members=2) is None


def scored(name: str, *folds: float) -> selection.Scored:
    return selection.Scored(name, {}, None, tuple(folds), 1, np.empty((0, 0)))


def test_the_one_standard_error_rule_prefers_the_simpler_model_within_the_noise() -> None:
    pool = [
        scored("baseline", 0.80, 0.82, 0.78),
        scored("ensemble", 0.81, 0.84, 0.79),  # best mean, but within one SE of the baseline
        scored("lightgbm", 0.70, 0.71, 0.69),
    ]
    assert selection.choose(pool).name == "baseline"
    assert selection.choose(pool, one_standard_error=False).name == "ensemble"


def test_a_clear_gain_beats_the_baseline() -> None:
    pool = [scored("baseline", 0.70, 0.71, 0.69), scored("linear_svc", 0.80, 0.81, 0.79)]
    assert selection.choose(pool).name == "linear_svc"


def test_the_choice_does_not_depend_on_order() -> None:
    pool = [scored("logreg", 0.8, 0.8), scored("complement_nb", 0.8, 0.8), scored("baseline", 0.7)]
    assert selection.choose(pool).name == selection.choose(pool[::-1]).name == "complement_nb"


def test_validated_predictions_come_from_out_of_fold_rows() -> None:
    folds = selection.Folds(
        np.arange(4),
        np.array(["a", "b", "a", "b"], dtype=object),
        np.array(["a", "b"], dtype=object),
        [(np.array([0, 1]), np.array([2, 3]))],
        True,
    )
    proba = np.array([[np.nan, np.nan], [np.nan, np.nan], [0.9, 0.1], [0.3, 0.7]])
    chosen = selection.Scored("baseline", {}, None, (1.0,), 1, proba)
    truth, predicted, confidence = selection.validated_predictions(chosen, folds)
    assert truth.tolist() == ["a", "b"] and predicted.tolist() == ["a", "b"]
    np.testing.assert_allclose(confidence, [0.9, 0.7])
    assert isinstance(pd.Series(truth), pd.Series)


def test_the_duel_holds_out_the_newest_fifth_and_bounds_what_it_fits_on() -> None:
    y = np.array(["a", "b"] * 50, dtype=object)
    fit_on, held = selection.duel_rows(y, time_ordered=True, limit=30, seed=0)
    assert held.tolist() == list(range(80, 100)) and fit_on.tolist() == list(range(50, 80))
    fit_on, held = selection.duel_rows(y, time_ordered=False, limit=1_000, seed=0)
    assert len(held) == 20 and len(fit_on) == 80 and not set(held) & set(fit_on)


def test_a_winner_that_loses_to_the_baseline_at_full_size_gives_way(
    matrices: inputs.Matrices,
) -> None:
    folds = selection.make_folds(matrices.y_train, 3, 1_000, seed=0, time_ordered=False)
    specs = {s.name: s for s in candidates.category_specs(("complement_nb",), grids={})}
    baseline = selection.cross_validate(specs["baseline"], matrices.train, folds, 0)
    # Naive Bayes smoothed flat cannot match the baseline on any holdout.
    flat = candidates.CandidateSpec(
        "complement_nb", candidates.build_complement_nb, {"alpha": 1e6}, {}
    )
    weak = selection.cross_validate(flat, matrices.train, folds, 0)
    duel = selection.duel(weak, baseline, matrices.train, matrices.y_train, False, 10_000, 0)
    assert duel.winner is baseline
    assert duel.figures["duel_macro_f1.baseline"] > duel.figures["duel_macro_f1.complement_nb"]
    assert duel.figures["duel_rows_fitted"] == 360  # four fifths of the 450 fit rows
    same = selection.duel(baseline, baseline, matrices.train, matrices.y_train, False, 10_000, 0)
    assert same.winner is baseline and same.figures == {}


def test_a_winner_at_least_as_good_at_full_size_stays(matrices: inputs.Matrices) -> None:
    folds = selection.make_folds(matrices.y_train, 3, 1_000, seed=0, time_ordered=False)
    specs = {s.name: s for s in candidates.category_specs(("complement_nb",), grids={})}
    baseline = selection.cross_validate(specs["baseline"], matrices.train, folds, 0)
    twin = dataclasses.replace(baseline, name="logreg")  # the same model under another name
    duel = selection.duel(twin, baseline, matrices.train, matrices.y_train, False, 10_000, 0)
    assert duel.winner is twin
