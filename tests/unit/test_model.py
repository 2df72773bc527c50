"""The served predictor: output shape, routing, review flags, skops round-trip and allow-list."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from triage_ml import synth
from triage_ml.training import candidates, fit, retrain
from triage_ml.training.inputs import prepare
from triage_model import features
from triage_model import predictor as model

pytestmark = pytest.mark.unit

ROUTES = {"Billing": "billing-team", "Shipping": "logistics"}


def shout(values: np.ndarray) -> np.ndarray:
    """A module-level function: skops stores it by name, which the allow-list must refuse."""
    return values


class Passthrough:
    """A project class that is not an sklearn/lightgbm/numpy/scipy type."""

    def __init__(self) -> None:
        self.state = 1


@pytest.fixture(scope="module")
def predictor(small_data: synth.SyntheticData) -> Iterator[model.TriagePredictor]:
    """complement_nb plus the stacked priority model, fitted on the small history."""
    # One BLAS thread: on a shared 2-core machine threaded BLAS makes the small logistic fits slow.
    with threadpool_limits(1):
        inputs = prepare(small_data.tickets)
        spec = candidates.category_specs(("complement_nb",))[-1]
        config = {"routes": ROUTES, "default_route": "fallback-queue", "review_threshold": 0.5}
        yield fit.fit_predictor(inputs, spec, config, seed=0)


@pytest.fixture(scope="module")
def tickets(small_data: synth.SyntheticData) -> pd.DataFrame:
    """Forty raw tickets with a non-default index, as a scoring chunk might arrive."""
    return small_data.tickets.tail(40).drop(columns=["category", "priority"])


@pytest.fixture(scope="module")
def saved(
    predictor: model.TriagePredictor, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The predictor written once as skops + JSON files (writing takes seconds)."""
    return model.save_predictor(predictor, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def predicted(predictor: model.TriagePredictor, tickets: pd.DataFrame) -> pd.DataFrame:
    return predictor.predict(tickets)


def test_output_columns_and_length(predicted: pd.DataFrame, tickets: pd.DataFrame) -> None:
    assert tuple(predicted.columns) == model.OUTPUT_COLUMNS
    assert len(predicted) == len(tickets)
    assert list(predicted.index) == list(range(len(tickets)))


def test_labels_come_from_the_fitted_classes(
    predicted: pd.DataFrame, predictor: model.TriagePredictor
) -> None:
    assert set(predicted["category"]) <= set(synth.CATEGORIES)
    assert set(predicted["priority"]) <= set(synth.PRIORITIES)
    assert predictor.classes == sorted(predictor.classes)


def test_probabilities_are_probabilities(predicted: pd.DataFrame) -> None:
    for column in ("category_proba", "priority_proba"):
        values = predicted[column].to_numpy(dtype=float)
        assert np.all((values >= 0) & (values <= 1)), column
    assert np.all((predicted["sentiment"] >= -1) & (predicted["sentiment"] <= 1))


def test_top3_is_sorted_and_led_by_the_category(predicted: pd.DataFrame) -> None:
    for category, proba, raw in predicted[["category", "category_proba", "top3"]].itertuples(
        index=False
    ):
        top = json.loads(raw)
        assert len(top) == 3
        assert len({t["category"] for t in top}) == 3
        assert [t["proba"] for t in top] == sorted((t["proba"] for t in top), reverse=True)
        assert top[0]["category"] == category
        assert top[0]["proba"] == pytest.approx(proba, abs=1e-4)


def test_routes_follow_the_config_with_a_fallback(predicted: pd.DataFrame) -> None:
    expected = [ROUTES.get(c, "fallback-queue") for c in predicted["category"]]
    assert predicted["route"].tolist() == expected
    assert "fallback-queue" in expected, "the sample should contain an unrouted category"


def test_needs_review_follows_the_thresholds(
    predictor: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    strict = dataclasses.replace(
        predictor,
        config={
            **predictor.config,
            "review_threshold": 0.0,
            "review_thresholds": {"Billing": 1.01},
        },
    )
    out = strict.predict(tickets)
    assert out["needs_review"].dtype == bool
    assert out["needs_review"].tolist() == (out["category"] == "Billing").tolist()
    by_default = dataclasses.replace(
        predictor, config={**predictor.config, "review_threshold": 0.8}
    )
    out = by_default.predict(tickets)
    assert out["needs_review"].tolist() == (out["category_proba"] < 0.8).tolist()


def test_a_predictor_without_priority_returns_none(
    predictor: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    out = model.TriagePredictor(
        predictor.features, predictor.category, config=predictor.config
    ).predict(tickets)
    assert tuple(out.columns) == model.OUTPUT_COLUMNS
    assert out["priority"].isna().all() and out["priority"].tolist() == [None] * len(tickets)
    assert out["priority_proba"].isna().all()


def test_predict_needs_only_subject_and_body(predictor: model.TriagePredictor) -> None:
    out = predictor.predict(
        pd.DataFrame({"subject": ["Charged twice", None], "body": [None, "Where is my order?"]})
    )
    assert len(out) == 2 and out[["category", "priority"]].notna().all().all()


def test_save_and_load_give_identical_predictions(
    predictor: model.TriagePredictor,
    saved: dict[str, str],
    tickets: pd.DataFrame,
    predicted: pd.DataFrame,
) -> None:
    assert set(saved) == {
        "features",
        "category",
        "priority",
        "priority_text",
        "priority_category",
        "config",
    }
    loaded = model.load_predictor(saved)
    assert loaded.config == predictor.config
    pd.testing.assert_frame_equal(loaded.predict(tickets), predicted)


def test_saved_vocabularies_are_arrays_of_terms_restored_on_load(
    predictor: model.TriagePredictor, saved: dict[str, str]
) -> None:
    vocabulary = predictor.features.named_transformers_["word"].vocabulary_
    assert (
        isinstance(vocabulary, dict) and len(vocabulary) > 1_000
    )  # saving left the predictor as it was
    bigrams = [f'"{term}"' for term in vocabulary if " " in term][:50]
    with zipfile.ZipFile(saved["features"]) as archive:
        # One .npy member per vectorizer, not one JSON node (or file) per n-gram.
        schema = archive.read("schema.json").decode()
        assert (
            len(archive.namelist()) < 50 and bigrams and not any(term in schema for term in bigrams)
        )
    assert (
        model.load_pipeline(Path(saved["features"])).named_transformers_["word"].vocabulary_
        == vocabulary
    )


def test_save_without_priority_writes_no_priority_files(
    saved: dict[str, str], tmp_path: Path
) -> None:
    # Reuse the saved features and category model: dumping the vocabularies again is slow.
    features, category = (
        model.load_pipeline(Path(saved[part])) for part in ("features", "category")
    )
    artifacts = model.save_predictor(model.TriagePredictor(features, category), tmp_path / "model")
    assert set(artifacts) == {"features", "category", "config"}
    assert model.load_predictor(artifacts).priority is None


def test_trusted_types_accepts_the_fitted_pipelines(saved: dict[str, str]) -> None:
    found = model.trusted_types(Path(saved["priority"]))
    assert "lightgbm.sklearn.LGBMClassifier" in found


@pytest.mark.parametrize(
    "step",
    [
        FunctionTransformer(func=shout),
        FunctionTransformer(func=eval),
        Passthrough(),
    ],
    ids=["module-function", "builtin-eval", "custom-class"],
)
def test_trusted_types_refuses_types_outside_the_allow_list(step: object, tmp_path: Path) -> None:
    path = tmp_path / "evil.skops"
    sio.dump(Pipeline([("step", step)]) if isinstance(step, FunctionTransformer) else step, path)
    with pytest.raises(ValueError, match="outside the allow-list"):
        model.trusted_types(path)
    with pytest.raises(ValueError, match="outside the allow-list"):
        model.load_pipeline(path)


def test_an_empty_batch_gives_an_empty_frame(predictor: model.TriagePredictor) -> None:
    out = predictor.predict(pd.DataFrame({"subject": [], "body": []}))
    assert tuple(out.columns) == model.OUTPUT_COLUMNS and out.empty


def test_one_ticket_at_a_time_predicts_as_the_batch(
    predictor: model.TriagePredictor, tickets: pd.DataFrame, predicted: pd.DataFrame
) -> None:
    for i in range(0, len(tickets), 7):
        one = predictor.predict(tickets.iloc[[i]])
        pd.testing.assert_frame_equal(
            one, predicted.iloc[[i]].reset_index(drop=True), check_exact=True
        )


def test_transform_columns_equals_the_library_on_a_frame(
    predictor: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    odd = tickets.head(5).assign(
        channel=["fax", None, "email", "chat", "web"], customer_ltv=[np.nan, 1.0, None, 2.5, 0.0]
    )
    inputs = features.input_columns(odd)
    matrix = model.transform_columns(predictor.features, inputs)
    expected = predictor.features.transform(pd.DataFrame(inputs))
    # The char n-gram block equals the library's but for its values' last bits (test_ngrams.py).
    assert matrix.shape == expected.shape and ((matrix != 0) != (expected != 0)).nnz == 0
    assert abs(matrix - expected).max() <= 1e-12 * abs(expected).max()
    stacked = predictor.priority_inputs(inputs, matrix)
    step = predictor.priority.named_steps["features"]
    np.testing.assert_array_equal(
        model.transform_columns(step, stacked), step.transform(pd.DataFrame(stacked))
    )
    text = np.column_stack(
        [stacked[c] for c in model.priority_text_columns(list(predictor.priority_text.classes_))]
    )
    library = model.margin_proba(
        predictor.priority.predict(pd.DataFrame(stacked), raw_score=True) + model.text_margin(text)
    )
    np.testing.assert_allclose(predictor._priority_proba(stacked), library, rtol=1e-12, atol=0)


@pytest.mark.parametrize("levels", [2, 3])
def test_with_no_boosting_the_priority_is_the_text_models(levels: int) -> None:
    text = np.random.default_rng(levels).dirichlet(np.ones(levels), size=50)
    np.testing.assert_allclose(
        model.margin_proba(np.zeros(50 if levels == 2 else (50, levels)) + model.text_margin(text)),
        text,
        rtol=1e-9,
    )


def test_models_logged_before_the_text_margin_predict_with_the_booster_alone(
    predictor: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    older = dataclasses.replace(
        predictor,
        config={k: v for k, v in predictor.config.items() if k != model.PRIORITY_STARTS_FROM_TEXT},
    )
    inputs = features.input_columns(tickets.head(20))
    stacked = predictor.priority_inputs(inputs, model.transform_columns(predictor.features, inputs))
    np.testing.assert_allclose(
        older._priority_proba(stacked),
        predictor.priority.predict_proba(pd.DataFrame(stacked)),
        rtol=1e-12,
    )
    assert predictor.config[model.PRIORITY_STARTS_FROM_TEXT]


def test_transform_columns_leaves_other_transformers_to_the_library() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 4.0], "b": ["x", "y", "x"]})
    scaled = ColumnTransformer([("a", StandardScaler(), ["a"]), ("b", OneHotEncoder(), ["b"])]).fit(
        frame
    )
    np.testing.assert_array_equal(
        model.transform_columns(scaled, {"a": [3.0], "b": ["y"]}),
        scaled.transform(pd.DataFrame({"a": [3.0], "b": ["y"]})),
    )
    pipeline = Pipeline([("scale", StandardScaler())]).fit(frame[["a"]])
    np.testing.assert_array_equal(
        model.transform_columns(pipeline, {"a": [3.0]}),
        pipeline.transform(pd.DataFrame({"a": [3.0]})),
    )


def test_one_hot_leaves_unknown_values_at_zero() -> None:
    encoder = OneHotEncoder(handle_unknown="ignore").fit(
        pd.DataFrame({"c": ["a", "b"], "d": ["x", "y"]})
    )
    np.testing.assert_array_equal(
        model.one_hot(encoder, [["b", "z"], ["q", "x"]]), [[0, 1, 0, 0], [0, 0, 1, 0]]
    )


def reference_top_json(classes: list, proba: np.ndarray, order: np.ndarray) -> list[str]:
    return [
        json.dumps([{"category": classes[j], "proba": round(float(row[j]), 4)} for j in idx])
        for row, idx in zip(proba, order)
    ]


@settings(max_examples=200, deadline=None)
@given(data=st.data(), width=st.integers(1, 5))
def test_top_json_is_what_json_dumps_writes(data: st.DataObject, width: int) -> None:
    classes = data.draw(
        st.lists(
            st.one_of(st.text(max_size=8), st.integers(-5, 5)),
            min_size=width,
            max_size=width,
            unique_by=str,
        )
    )
    rows = data.draw(st.integers(0, 6))
    values = st.one_of(
        st.floats(0, 1), st.sampled_from([0.0, 1.0, 1e-05, 0.00005, 0.99995, 0.12345, float("nan")])
    )
    proba = np.array(
        data.draw(
            st.lists(st.lists(values, min_size=width, max_size=width), min_size=rows, max_size=rows)
        ),
        dtype=float,
    ).reshape(rows, width)
    order = np.argsort(-proba, axis=1)[:, :3]
    assert model.top_json(classes, proba, order) == reference_top_json(classes, proba, order)


def test_the_model_abstains_below_its_threshold_and_ranks_all_the_same(
    predictor: model.TriagePredictor, small_data: synth.SyntheticData
) -> None:
    rows = small_data.tickets.tail(200)
    before = predictor.predict(rows)
    copy = model.TriagePredictor(**{**predictor.__dict__, "config": dict(predictor.config)})
    after = retrain.predict_with_abstention(copy, rows, 0.1)
    threshold = copy.config["abstain_threshold"]
    unsure = before["category_proba"].to_numpy() < threshold
    assert 0.05 <= unsure.mean() <= 0.15
    assert (after["category"].to_numpy()[unsure] == model.UNKNOWN).all()
    assert after["needs_review"].to_numpy()[unsure].all()
    # A ticket in a language the model does not support goes to the translation queue instead.
    supported = after["language"].isin(["en", "de"]).to_numpy()
    assert (after["route"].to_numpy()[unsure & supported] == "fallback-queue").all()
    assert after["category"][~unsure].tolist() == before["category"][~unsure].tolist()
    assert after["top3"].tolist() == before["top3"].tolist()  # the ranking is kept
    assert retrain.abstention(copy) == {"abstain_threshold": threshold}
    assert "abstain_threshold" not in predictor.config and retrain.abstention(predictor) == {}
