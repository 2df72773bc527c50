"""Candidate factories and the training helpers that fit and choose among them."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from triage_ml import candidates, synth, train
from triage_ml.errors import TrainingDataError
from triage_ml.model import TriagePredictor

pytestmark = pytest.mark.unit

# Small vocabularies and models: these tests check wiring, not quality.
FAST = {"word_features": 2_000, "char_features": 2_000, "n_estimators": 20, "svd_components": 20}


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread() -> Iterator[None]:
    # Threaded BLAS on the shared 2-core machine makes small logistic fits ~20x slower.
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def inputs(small_data: synth.SyntheticData) -> pd.DataFrame:
    return train.prepare(small_data.tickets)


def test_category_specs_follow_the_configured_names() -> None:
    specs = candidates.category_specs(("logreg", "complement_nb"), {"logreg": {"C": 3.0}})
    assert [s.name for s in specs] == ["logreg", "complement_nb"]
    assert specs[0].params == {"C": 3.0} and specs[1].params == {}


def test_unknown_candidates_are_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="xgboost"):
        candidates.category_specs(("logreg", "xgboost"))


@pytest.mark.parametrize("name", sorted(candidates.CATEGORY_CANDIDATES))
def test_factories_return_fresh_unfitted_pipelines(name: str) -> None:
    build = candidates.CATEGORY_CANDIDATES[name]
    first, second = build({}, 0), build({}, 0)
    assert isinstance(first, Pipeline) and first is not second
    with pytest.raises(NotFittedError):
        check_is_fitted(first)


def test_hyperparameters_come_from_the_spec() -> None:
    pipeline = candidates.build_logreg({"C": 0.25, "word_features": 123}, seed=4)
    params = pipeline.get_params()
    assert params["model__C"] == 0.25 and params["model__random_state"] == 4
    assert params["features__word__max_features"] == 123


def test_describe_keeps_only_loggable_values() -> None:
    described = candidates.describe(candidates.build_linear_svc({"C": 0.7}, 0))
    assert described["model__estimator__C"] == 0.7
    assert all("__" in k and len(str(v)) < 250 for k, v in described.items())
    assert all(isinstance(v, (int, float, str, bool, type(None), tuple)) for v in described.values())


@pytest.mark.parametrize("name", sorted(candidates.CATEGORY_CANDIDATES))
def test_every_candidate_fits_and_gives_probabilities(name: str, inputs: pd.DataFrame) -> None:
    spec = candidates.category_specs((name,), {name: FAST})[0]
    train_part, valid_part = inputs.iloc[:450], inputs.iloc[450:]
    fitted = train.fit_candidate(spec, train_part, valid_part, seed=0)
    proba = fitted.pipeline.predict_proba(valid_part)
    assert proba.shape == (len(valid_part), len(fitted.pipeline.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert 0.0 <= fitted.valid_metrics["valid_category_macro_f1"] <= 1.0
    assert fitted.params and fitted.fit_seconds > 0


def fitted_with(name: str, f1: float) -> train.FittedCandidate:
    return train.FittedCandidate(name, Pipeline([("m", None)]), {}, {"valid_category_macro_f1": f1}, 0.1)


def test_select_best_takes_the_highest_validation_macro_f1() -> None:
    best = train.select_best([fitted_with("a", 0.7), fitted_with("b", 0.9), fitted_with("c", 0.8)])
    assert best.name == "b"


def test_select_best_breaks_ties_by_name_deterministically() -> None:
    pool = [fitted_with("logreg", 0.8), fitted_with("linear_svc", 0.8)]
    assert train.select_best(pool).name == train.select_best(pool[::-1]).name


def test_require_trainable_refuses_tiny_or_single_class_data() -> None:
    with pytest.raises(TrainingDataError, match="at least 50"):
        train.require_trainable(pd.DataFrame({"category": ["Billing"] * 10}), 50)
    with pytest.raises(TrainingDataError, match="single category"):
        train.require_trainable(pd.DataFrame({"category": ["Billing"] * 60}), 50)
    train.require_trainable(pd.DataFrame({"category": ["Billing", "Sales"] * 30}), 50)


def test_fit_priority_needs_two_priority_levels(inputs: pd.DataFrame) -> None:
    category = candidates.build_complement_nb({}, 0).fit(inputs, train.labels(inputs))
    assert train.fit_priority(category, inputs.assign(priority=None), 0) is None
    assert train.fit_priority(category, inputs.assign(priority="normal"), 0) is None


def test_fit_priority_copes_with_a_category_without_priority_labels(inputs: pd.DataFrame) -> None:
    category = candidates.build_complement_nb({}, 0).fit(inputs, train.labels(inputs))
    partly = inputs.assign(priority=inputs["priority"].where(inputs["category"] != "Sales", None))
    priority_text, priority = train.fit_priority(category, partly, 0, {"n_estimators": 20})
    predictor = TriagePredictor(category, priority, priority_text)
    out = predictor.predict(pd.DataFrame({"subject": ["Quote request"], "body": ["Pricing for 50 seats please."]}))
    assert out.loc[0, "priority"] in set(synth.PRIORITIES)


class StubPredictor:
    """Fixed predictions, so review thresholds can be checked by hand."""

    classes = ["Billing", "Sales"]

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def predict(self, tickets: pd.DataFrame) -> pd.DataFrame:
        return self.frame


def test_review_thresholds_reach_the_target_precision() -> None:
    # 30 Billing predictions: the 20 most confident are right, the next 10 alternate.
    confidence = np.linspace(0.99, 0.40, 30)
    truth = ["Billing"] * 20 + ["Sales", "Billing"] * 5
    frame = pd.DataFrame({"category": ["Billing"] * 30 + ["Sales"] * 5, "category_proba": [*confidence, *[0.9] * 5]})
    valid = pd.DataFrame({"category": truth + ["Sales"] * 5})
    out = train.review_thresholds(StubPredictor(frame), valid, target_precision=0.9, default=0.5)
    # Precision over the top k stays >= 0.9 up to k = 24 (22 right of 24), then falls below.
    assert out["Billing"] == pytest.approx(confidence[23])
    assert out["Sales"] == 0.5  # too few predictions: the default
