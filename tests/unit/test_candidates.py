"""Candidate factories, the shared matrix, and the helpers that fit the chosen candidate."""

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
from triage_ml.settings import TrainSettings
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


def test_category_specs_follow_the_configured_names_after_the_baseline() -> None:
    specs = candidates.category_specs(("logreg", "complement_nb"), {"logreg": {"C": 3.0}})
    assert [s.name for s in specs] == ["baseline", "logreg", "complement_nb"]
    assert specs[1].params == {"C": 3.0} and specs[2].params == {}


def test_the_baseline_is_always_a_candidate_and_never_reconfigured() -> None:
    specs = candidates.category_specs(("complement_nb", "ensemble"), {"baseline": {"C": 0.01}})
    assert [s.name for s in specs] == ["baseline", "complement_nb"]
    assert specs[0].params == {} and specs[0].grid == {}
    model = specs[0].build(specs[0].params, 0)
    assert model.C == 10.0 and model.class_weight == "balanced"


def test_the_encoder_leaves_out_the_candidates_that_cannot_read_its_block() -> None:
    names = ("logreg", "linear_svc", "lightgbm", "ensemble")
    assert candidates.configured_names(TrainSettings(candidates=names)) == names
    with_encoder = TrainSettings(candidates=names, encoder=True)
    assert candidates.configured_names(with_encoder) == ("logreg", "ensemble")
    specs = candidates.configured_specs(with_encoder)
    assert [s.name for s in specs] == ["baseline", "logreg"]


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
    assert matrices.train.shape[0] == 450 and matrices.test.shape[1] == matrices.train.shape[1]


@pytest.mark.parametrize("name", sorted(candidates.CATEGORY_CANDIDATES))
def test_every_candidate_fits_and_gives_probabilities(name: str, matrices: inputs.Matrices) -> None:
    spec = candidates.category_specs((name,), {name: FAST})[-1]
    blueprint = spec.build(spec.params, 0)
    model = fit.refit(blueprint, matrices.train, matrices.y_train)
    proba = model.predict_proba(matrices.test)
    assert proba.shape == (matrices.test.shape[0], len(model.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    with pytest.raises(NotFittedError):
        check_is_fitted(blueprint)


def test_require_trainable_refuses_tiny_or_single_class_data() -> None:
    with pytest.raises(TrainingDataError, match="at least 50"):
        fit.require_trainable(pd.DataFrame({"category": ["Billing"] * 10}), 50)
    with pytest.raises(TrainingDataError, match="single category"):
        fit.require_trainable(pd.DataFrame({"category": ["Billing"] * 60}), 50)
    fit.require_trainable(pd.DataFrame({"category": ["Billing", "Sales"] * 30}), 50)


def test_review_thresholds_reach_the_target_precision() -> None:
    # 30 Billing predictions: the 20 most confident are right, the next 10 alternate.
    confidence = np.array([*np.linspace(0.99, 0.40, 30), *[0.9] * 5])
    truth = np.array(["Billing"] * 20 + ["Sales", "Billing"] * 5 + ["Sales"] * 5, dtype=object)
    predicted = np.array(["Billing"] * 30 + ["Sales"] * 5, dtype=object)
    out = fit.review_thresholds(
        ["Billing", "Sales", "Returns"], truth, predicted, confidence, 0.9, default=0.5
    )
    # Precision over the top k stays >= 0.9 up to k = 24 (22 right of 24), then falls below.
    assert out["Billing"] == pytest.approx(confidence[23])
    # Too few predictions, or none: the default.
    assert out["Sales"] == 0.5 and out["Returns"] == 0.5


def test_the_abstention_threshold_abstains_on_the_configured_share() -> None:
    confidence = np.linspace(0.0, 1.0, 1001)
    assert fit.abstain_threshold(confidence, 0.05) == pytest.approx(0.05)
    assert (confidence < fit.abstain_threshold(confidence, 0.05)).mean() == pytest.approx(
        0.05, abs=1e-3
    )
    assert fit.abstain_threshold(confidence, 0.0) is None


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
        len(set(category.predict(matrices.test))) > 1
        and len(set(text.predict(matrices.test[:, :words]))) > 1
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
