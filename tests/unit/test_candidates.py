"""Candidate factories, the shared matrix, and the helpers that fit and choose among candidates."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from triage_ml import synth
from triage_ml.errors import TrainingDataError
from triage_ml.training import candidates, fit, inputs, priority

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


def test_category_specs_follow_the_configured_names() -> None:
    specs = candidates.category_specs(("logreg", "complement_nb"), {"logreg": {"C": 3.0}})
    assert [s.name for s in specs] == ["logreg", "complement_nb"]
    assert specs[0].params == {"C": 3.0} and specs[1].params == {}


def test_unknown_candidates_are_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="xgboost"):
        candidates.category_specs(("logreg", "xgboost"))


@pytest.fixture(scope="module")
def matrices(tickets: pd.DataFrame) -> inputs.Matrices:
    return inputs.featurize(tickets.iloc[:450], tickets.iloc[450:], FAST)


@pytest.mark.parametrize("name", sorted(candidates.CATEGORY_CANDIDATES))
def test_factories_return_fresh_unfitted_estimators(name: str) -> None:
    build = candidates.CATEGORY_CANDIDATES[name]
    first, second = build({}, 0), build({}, 0)
    assert first is not second
    with pytest.raises(NotFittedError):
        check_is_fitted(first)


def test_hyperparameters_come_from_the_spec() -> None:
    params = candidates.build_logreg({"C": 0.25}, seed=4).get_params()
    assert params["C"] == 0.25 and params["random_state"] == 4
    assert (
        candidates.text_features({"word_features": 123}).get_params()["word__max_features"] == 123
    )


def test_describe_keeps_only_loggable_values() -> None:
    described = candidates.describe(candidates.build_linear_svc({"C": 0.7}, 0))
    assert described["estimator__C"] == 0.7
    assert all(len(str(v)) < 250 for v in described.values())
    assert all(
        isinstance(v, (int, float, str, bool, type(None), tuple)) for v in described.values()
    )


def test_the_shared_matrix_has_the_word_block_first(matrices: inputs.Matrices) -> None:
    words = priority.word_columns(matrices.features)
    assert 0 < words < matrices.train.shape[1]
    assert matrices.train.shape[0] == 450 and matrices.valid.shape[1] == matrices.train.shape[1]


@pytest.mark.parametrize("name", sorted(candidates.CATEGORY_CANDIDATES))
def test_every_candidate_fits_and_gives_probabilities(name: str, matrices: inputs.Matrices) -> None:
    spec = candidates.category_specs((name,), {name: FAST})[0]
    fitted = fit.fit_candidate(spec, matrices, seed=0)
    proba = fitted.model.predict_proba(matrices.valid)
    assert proba.shape == (matrices.valid.shape[0], len(fitted.model.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(fitted.valid_proba, proba)
    assert 0.0 <= fitted.valid_metrics["valid_category_macro_f1"] <= 1.0
    assert fitted.params
    with pytest.raises(NotFittedError):
        check_is_fitted(fitted.blueprint)


def test_the_search_keeps_the_setting_with_the_best_validation_score(
    matrices: inputs.Matrices,
) -> None:
    # alpha=1e6 smooths every class to the prior: it cannot win the search.
    spec = candidates.CandidateSpec(
        "complement_nb", candidates.build_complement_nb, {}, {"alpha": (1e6, 0.3)}
    )
    fitted = fit.fit_candidate(spec, matrices, seed=0, search_rows=300)
    assert fitted.model.alpha == 0.3 and fitted.blueprint.alpha == 0.3
    assert fitted.valid_metrics["search_settings"] == 2.0
    # The winner is refitted on all 450 training rows, not the 300-row search sample.
    assert fitted.model.class_count_.sum() == 450


def test_search_sample_is_stratified_and_bounded() -> None:
    y = np.array(["a"] * 900 + ["b"] * 100, dtype=object)
    sample = fit.search_sample(y, 200, seed=0)
    assert len(sample) == 200 and (y[sample] == "b").sum() == 20
    assert len(fit.search_sample(y, 5_000, seed=0)) == 1_000


def test_the_ensemble_averages_its_members_without_refitting(matrices: inputs.Matrices) -> None:
    fitted = [
        fit.fit_candidate(s, matrices, 0)
        for s in candidates.category_specs(("complement_nb", "logreg"), grids={})
    ]
    ensemble = fit.fit_ensemble(fitted, matrices, members=2)
    expected = np.mean([f.model.predict_proba(matrices.valid) for f in fitted], axis=0)
    np.testing.assert_allclose(ensemble.model.predict_proba(matrices.valid), expected)
    np.testing.assert_allclose(ensemble.valid_proba, expected)
    refitted = fit.refit(ensemble.blueprint, matrices.train, matrices.y_train)
    np.testing.assert_allclose(refitted.predict_proba(matrices.valid), expected, rtol=1e-6)


def fitted_with(name: str, f1: float) -> fit.FittedCandidate:
    return fit.FittedCandidate(name, None, None, {}, {"valid_category_macro_f1": f1})


def test_select_best_takes_the_highest_validation_macro_f1() -> None:
    best = fit.select_best([fitted_with("a", 0.7), fitted_with("b", 0.9), fitted_with("c", 0.8)])
    assert best.name == "b"


def test_select_best_breaks_ties_by_name_deterministically() -> None:
    pool = [fitted_with("logreg", 0.8), fitted_with("linear_svc", 0.8)]
    assert fit.select_best(pool).name == fit.select_best(pool[::-1]).name


def test_require_trainable_refuses_tiny_or_single_class_data() -> None:
    with pytest.raises(TrainingDataError, match="at least 50"):
        fit.require_trainable(pd.DataFrame({"category": ["Billing"] * 10}), 50)
    with pytest.raises(TrainingDataError, match="single category"):
        fit.require_trainable(pd.DataFrame({"category": ["Billing"] * 60}), 50)
    fit.require_trainable(pd.DataFrame({"category": ["Billing", "Sales"] * 30}), 50)


def test_review_thresholds_reach_the_target_precision() -> None:
    # 30 Billing predictions: the 20 most confident are right, the next 10 alternate.
    confidence = np.linspace(0.99, 0.40, 30)
    truth = ["Billing"] * 20 + ["Sales", "Billing"] * 5
    predicted = pd.DataFrame(
        {"category": ["Billing"] * 30 + ["Sales"] * 5, "category_proba": [*confidence, *[0.9] * 5]}
    )
    valid = pd.DataFrame({"category": truth + ["Sales"] * 5})
    out = fit.review_thresholds(
        ["Billing", "Sales", "Returns"], predicted, valid, target_precision=0.9, default=0.5
    )
    # Precision over the top k stays >= 0.9 up to k = 24 (22 right of 24), then falls below.
    assert out["Billing"] == pytest.approx(confidence[23])
    assert (
        out["Sales"] == 0.5 and out["Returns"] == 0.5
    )  # too few predictions, or none: the default


def test_validation_predictions_are_those_of_the_fitted_model(matrices: inputs.Matrices) -> None:
    spec = candidates.category_specs(("complement_nb",), grids={})[0]
    fitted = fit.fit_candidate(spec, matrices, seed=0)
    predicted = fit.validation_predictions(fitted)
    assert predicted["category"].tolist() == fitted.model.predict(matrices.valid).tolist()
    np.testing.assert_allclose(
        predicted["category_proba"], fitted.model.predict_proba(matrices.valid).max(axis=1)
    )


def test_logistic_models_really_fit_on_small_data(
    tickets: pd.DataFrame, matrices: inputs.Matrices
) -> None:
    # A loose lbfgs tolerance once stopped after zero iterations and predicted a single class.
    category = candidates.build_logreg({}, 0).fit(matrices.train, matrices.y_train)
    words = priority.word_columns(matrices.features)
    text = priority.build_priority_text({}, 0).fit(
        matrices.train[:, :words], inputs.labels(tickets.iloc[:450], "priority")
    )
    assert category.n_iter_.min() > 0 and text.n_iter_.min() > 0
    assert (
        len(set(category.predict(matrices.valid))) > 1
        and len(set(text.predict(matrices.valid[:, :words]))) > 1
    )


def test_the_vocabularies_hold_no_fragment_of_personal_data() -> None:
    # Each customer writes many tickets, so a minimum document frequency alone keeps their data.
    people = [
        ("Wojciech Szczebrzeszyn", "w.szczebrzeszyn@kwiatuszkowo.pl", "+48 601 774 219"),
        ("Aurelie Vantongerloo", "aurelie_vtl@mouffetard-post.fr", "(0478) 771-2290"),
    ]
    tickets = synth.generate(200, months=1, seed=4).tickets
    tickets["body"] = [
        f"{body} Card 4716 2209 8135 5570, mail {email}, phone {phone}.\n\nKind regards,\n{name}"
        for body, (name, email, phone) in zip(
            tickets["body"], people * (len(tickets) // 2), strict=True
        )
    ]
    features = candidates.text_features({}).fit(inputs.prepare(tickets))
    word = set(features.named_transformers_["word"].vocabulary_)
    char = set(features.named_transformers_["char"].vocabulary_)
    personal = {
        "wojciech",
        "szczebrzeszyn",
        "kwiatuszkowo",
        "aurelie",
        "vantongerloo",
        "mouffetard",
    }
    fragments = {f" {w} "[i : i + 5] for w in personal for i in range(len(w) - 2)}
    digits = {"4716", "2209", "8135", "5570", "0478", "2290"}
    assert not {t for t in word if set(t.split()) & (personal | digits)}
    assert not char & fragments
    assert {"email", "phone", "number", "name"} <= word  # the placeholders stand in for them
