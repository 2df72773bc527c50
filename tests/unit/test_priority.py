"""The stacked priority model: two levels needed, gaps allowed, a booster that corrects the text."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from triage_ml import synth
from triage_ml.settings import TrainSettings
from triage_ml.training import candidates, fit, inputs, priority, selection

pytestmark = pytest.mark.unit

# Small vocabularies and models: these tests check wiring, not quality.
FAST = {"word_features": 2_000, "char_features": 2_000, "n_estimators": 20, "svd_components": 20}


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread() -> Iterator[None]:
    # Threaded BLAS on the shared 2-core machine makes small logistic fits much slower.
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def tickets(small_data: synth.SyntheticData) -> pd.DataFrame:
    return inputs.prepare(small_data.tickets)


@pytest.fixture(scope="module")
def matrices(tickets: pd.DataFrame) -> inputs.Matrices:
    return inputs.featurize(tickets.iloc[:450], tickets.iloc[450:], FAST)


def test_fit_priority_needs_two_priority_levels(
    tickets: pd.DataFrame, matrices: inputs.Matrices
) -> None:
    rows, words = tickets.iloc[:450], priority.word_columns(matrices.features)
    assert priority.fit_priority(matrices.train, rows.assign(priority=None), 0, words) is None
    assert priority.fit_priority(matrices.train, rows.assign(priority="normal"), 0, words) is None


def test_fit_priority_copes_with_a_category_without_priority_labels(
    tickets: pd.DataFrame, matrices: inputs.Matrices
) -> None:
    rows = tickets.iloc[:450]
    partly = rows.assign(priority=rows["priority"].where(rows["category"] != "Sales", None))
    stacked = priority.fit_priority(
        matrices.train, partly, 0, priority.word_columns(matrices.features), {"n_estimators": 20}
    )
    assert stacked is not None and stacked.text.n_features_in_ == priority.word_columns(
        matrices.features
    )
    category = candidates.build_complement_nb({}, 0).fit(matrices.train, matrices.y_train)
    predictor = fit.assemble_predictor(matrices.features, category, stacked, {})
    out = predictor.predict(
        pd.DataFrame({"subject": ["Quote request"], "body": ["Pricing for 50 seats please."]})
    )
    assert out.loc[0, "priority"] in set(synth.PRIORITIES)


def test_priority_booster_corrects_the_text_model_with_what_the_text_lacks(
    small_data: synth.SyntheticData, tickets: pd.DataFrame, matrices: inputs.Matrices
) -> None:
    # Priority set by the customer's tier alone: the text model cannot see it,
    # so only the booster's rounds, which start from that model, can learn it.
    def by_tier(rows: pd.DataFrame) -> np.ndarray:
        return np.where(
            rows["customer_tier"].isin(["premium", "enterprise"]), "high", "low"
        ).astype(object)

    rows, words = tickets.iloc[:450], priority.word_columns(matrices.features)
    stacked = priority.fit_priority(matrices.train, rows.assign(priority=by_tier(rows)), 0, words)
    assert stacked is not None
    assert stacked.model.named_steps["model"].n_estimators > 1
    category = candidates.build_complement_nb({}, 0).fit(matrices.train, matrices.y_train)
    predictor = fit.assemble_predictor(matrices.features, category, stacked, {})
    truth = by_tier(tickets.iloc[450:])
    assert (
        np.mean(predictor.predict(small_data.tickets.iloc[450:])["priority"].to_numpy() == truth)
        > 0.95
    )
    assert np.mean(stacked.text.predict(matrices.test[:, :words]) == truth) < 0.8


def test_priority_booster_stops_early_on_labels_nothing_predicts(
    tickets: pd.DataFrame, matrices: inputs.Matrices
) -> None:
    rows = tickets.iloc[:450]
    noise = np.random.default_rng(0).choice(
        np.array(["high", "low", "normal"], dtype=object), len(rows)
    )
    stacked = priority.fit_priority(
        matrices.train, rows.assign(priority=noise), 0, priority.word_columns(matrices.features)
    )
    # Stopped by lightgbm.cv well before the cap (the rounds it keeps undo the text model's noise).
    assert stacked is not None and stacked.model.named_steps["model"].n_estimators < 200


def by_tier(rows: pd.DataFrame) -> np.ndarray:
    """Priority set by the customer's tier alone: only the stack's booster can see it."""
    premium = rows["customer_tier"].isin(["premium", "enterprise"])
    return np.where(premium, "high", "low").astype(object)


def test_the_plain_priority_baseline_predicts_through_the_served_model(
    small_data: synth.SyntheticData, tickets: pd.DataFrame, matrices: inputs.Matrices
) -> None:
    plain = priority.fit_plain(matrices.train, tickets.iloc[:450], 0)
    assert plain is not None and plain.kind == priority.PLAIN and plain.model is None
    assert plain.text.n_features_in_ == matrices.train.shape[1]  # the whole matrix
    category = candidates.build_complement_nb({}, 0).fit(matrices.train, matrices.y_train)
    predictor = fit.assemble_predictor(matrices.features, category, plain, {})
    out = predictor.predict(small_data.tickets.iloc[450:])
    expected = plain.text.predict(matrices.test)
    # An escalation signal may raise the answered priority above the model's.
    calm = (out["escalation"] == "[]").to_numpy()
    assert calm.mean() > 0.5
    assert out["priority"][calm].tolist() == expected[calm].tolist()
    assert priority.kept_rounds(plain) == 0


def test_the_stack_is_chosen_when_it_learns_what_the_text_lacks(
    tickets: pd.DataFrame, matrices: inputs.Matrices
) -> None:
    rows = tickets.iloc[:450].assign(priority=by_tier(tickets.iloc[:450]))
    folds = selection.make_folds(matrices.y_train, 3, 1_000, 0, time_ordered=False)
    kind, figures = priority.choose_kind(
        rows, matrices.train, matrices.features, folds, TrainSettings()
    )
    assert kind == priority.STACKED
    assert (
        figures["priority_cv_stacked_macro_f1_mean"] > figures["priority_cv_baseline_macro_f1_mean"]
    )


def test_the_plain_baseline_is_kept_when_the_stack_gains_nothing(
    tickets: pd.DataFrame, matrices: inputs.Matrices
) -> None:
    # Priority set by one word of the text: the plain text model has it all, so the stack's
    # extra inputs cannot gain beyond the folds' noise and the simpler model stays. (Labels
    # nothing predicts were tried: macro-F1 then rewards whichever predicts both levels more
    # evenly, and the choice was a coin toss.)
    rows = tickets.iloc[:450]
    by_word = np.where(rows["text"].str.contains("refund", case=False), "high", "low")
    assert 0.05 < (by_word == "high").mean() < 0.95
    rows = rows.assign(priority=by_word.astype(object))
    folds = selection.make_folds(matrices.y_train, 3, 1_000, 0, time_ordered=False)
    kind, _ = priority.choose_kind(rows, matrices.train, matrices.features, folds, TrainSettings())
    assert kind == priority.PLAIN


def test_a_pinned_priority_model_skips_the_choice(
    tickets: pd.DataFrame, matrices: inputs.Matrices
) -> None:
    folds = selection.make_folds(matrices.y_train, 3, 1_000, 0, time_ordered=False)
    pinned = TrainSettings(priority_model="baseline")
    rows = tickets.iloc[:450]
    assert priority.choose_kind(rows, matrices.train, matrices.features, folds, pinned) == (
        priority.PLAIN,
        {},
    )
