"""The served model's answers (contract A): heads, priority score, signals, tiers and routes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import mlflow.models
import numpy as np
import pandas as pd
import pytest
from sklearn.naive_bayes import ComplementNB
from threadpoolctl import threadpool_limits

from triage_ml import synth
from triage_ml.registry.versions import model_signature
from triage_ml.settings import Settings
from triage_ml.training import candidates, retrain
from triage_ml.training import heads as training_heads
from triage_ml.training.inputs import labels, prepare
from triage_model import heads
from triage_model import predictor as model

pytestmark = pytest.mark.unit

ROUTES = {"Billing": "billing-team", "Technical": "tech-support"}


@pytest.fixture(scope="module")
def rows(small_data: synth.SyntheticData) -> pd.DataFrame:
    with threadpool_limits(1):
        return prepare(small_data.tickets.head(400))


@pytest.fixture(scope="module")
def bare(rows: pd.DataFrame) -> model.TriagePredictor:
    """Naive Bayes category and priority-text models on 400 tickets, no heads, an old config."""
    with threadpool_limits(1):
        features = candidates.text_features({})
        matrix = features.fit_transform(rows)
        category = ComplementNB().fit(matrix, labels(rows))
        priority = ComplementNB().fit(matrix, labels(rows, "priority"))
    # No signal keys and no priority scale: a config logged before issue 27 (contract B).
    config = {"review_threshold": 0.5, "routes": ROUTES}
    return model.TriagePredictor(features, category, priority_text=priority, config=config)


@pytest.fixture(scope="module")
def headed(bare: model.TriagePredictor, rows: pd.DataFrame) -> model.TriagePredictor:
    """The same with naive Bayes heads and their training config (the runtime reads any head)."""
    matrix = bare.matrix(rows)
    models, facts = {}, {}
    for name in training_heads.trainable_heads(rows, 50):
        mask = training_heads.labeled_mask(rows, name)
        models[name] = ComplementNB().fit(matrix[np.flatnonzero(mask)], labels(rows[mask], name))
        facts[name] = training_heads.head_facts(rows, name, models[name])
    served = retrain.with_heads(bare, training_heads.Heads(models, facts), Settings().heads)
    assert bare.heads == {} and "heads" not in bare.config
    return served


@pytest.fixture(scope="module")
def tickets(small_data: synth.SyntheticData) -> pd.DataFrame:
    unlabeled = ["category", "priority", "subcategory", "type", "team"]
    return small_data.tickets.tail(150).drop(columns=unlabeled, errors="ignore")


def test_the_synthetic_history_trains_every_head(headed: model.TriagePredictor) -> None:
    assert sorted(headed.heads) == ["subcategory", "team", "type"]


def test_the_answers_are_contract_a_s_columns_with_their_types(
    headed: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    out = headed.predict(tickets)
    assert tuple(out.columns) == model.OUTPUT_COLUMNS
    for column in ("subcategory", "type", "team", "priority", "sentiment_reason", "language"):
        assert all(v is None or isinstance(v, str) for v in out[column].dropna()), column
    for column in ("category_proba", "subcategory_proba", "type_proba", "team_proba"):
        assert out[column].dtype == float, column
    assert out["priority_review"].dtype == bool and out["needs_review"].dtype == bool
    assert ((out["priority_score"] >= 0) & (out["priority_score"] <= 100)).all()
    parts = [json.loads(p) for p in out["priority_parts"]]
    assert all(set(p) == {"model", "value", "sentiment", "weights"} for p in parts)
    assert all(isinstance(json.loads(e), list) for e in out["escalation"])
    assert out["language"].isin(["en", "de", "es", "fr", "nl", "da", "pt", "it", "und"]).all()


def test_the_subcategory_is_always_one_of_its_category_s(
    headed: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    out = headed.predict(tickets)
    pairs = headed.config["heads"]["subcategory"]["pairs"]
    subcategories = [None if pd.isna(s) else s for s in out["subcategory"]]
    assert heads.consistent(out["category"], subcategories, pairs).all()
    assert out["subcategory"].notna().any()


def test_a_model_without_heads_answers_none_and_nan(
    bare: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    out = bare.predict(tickets)
    for name in heads.HEADS:
        assert out[name].isna().all() and out[f"{name}_proba"].isna().all()
    routes = [ROUTES.get(c, "general-queue") for c in out["category"]]
    supported = out["language"].isin(["en", "de"]).to_numpy()
    assert out["route"][supported].tolist() == np.asarray(routes, dtype=object)[supported].tolist()


def test_an_unsure_team_falls_back_to_the_category_s_route(
    headed: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    sure = headed.predict(tickets)
    supported = sure["language"].isin(["en", "de"]).to_numpy()
    answered = sure["team"].notna().to_numpy() & supported
    assert answered.any()
    assert (sure["route"][answered] == sure["team"][answered]).all()
    bars = {**headed.config["head_min_confidence"], "team": 1.01}
    unsure = dataclasses.replace(headed, config={**headed.config, "head_min_confidence": bars})
    out = unsure.predict(tickets)
    assert out["team"].isna().all()
    routes = [ROUTES.get(c, "general-queue") for c in out["category"]]
    assert out["route"][supported].tolist() == np.asarray(routes, dtype=object)[supported].tolist()


def test_a_language_route_overrides_the_team(
    headed: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    routed = dataclasses.replace(
        headed, config={**headed.config, "language_routes": {"en": "english-desk"}}
    )
    out = routed.predict(tickets)
    english = (out["language"] == "en").to_numpy()
    assert english.any() and (out["route"][english] == "english-desk").all()


def test_an_unsupported_language_is_reviewed_and_routed_to_translation(
    headed: model.TriagePredictor,
) -> None:
    french = pd.DataFrame(
        {"body": ["Bonjour, je n'arrive pas à me connecter à mon compte depuis hier soir."]}
    )
    out = headed.predict(french)
    assert out.loc[0, "language"] == "fr"
    assert out.loc[0, "tier"] == "review" and bool(out.loc[0, "needs_review"])
    assert out.loc[0, "route"] == "translation-queue"
    assert np.isnan(out.loc[0, "sentiment"]) and "fr" in out.loc[0, "sentiment_reason"]


def test_a_legal_threat_raises_the_priority_and_flags_it_for_review(
    bare: model.TriagePredictor,
) -> None:
    text = "Refund me now or my lawyer will take legal action. Ich werde Sie verklagen."
    threat = pd.DataFrame({"subject": ["Refund"], "body": [text]})
    calm = dataclasses.replace(bare, config={**bare.config, "escalation_priority": {}})
    before = calm.predict(threat).loc[0]
    rule = {"legal": "critical"}
    strict = dataclasses.replace(bare, config={**bare.config, "escalation_priority": rule})
    out = strict.predict(threat).loc[0]
    assert json.loads(out["escalation"])[0] == "legal"
    assert before["priority"] != "critical" and not before["priority_review"]
    assert out["priority"] == "critical" and out["priority_review"]
    assert out["tier"] != "auto"
    # The probability shown is the model's of the level answered.
    proba = calm.priority_probabilities(threat).loc[0, "critical"]
    assert out["priority_proba"] == pytest.approx(proba)


def test_priority_review_follows_the_negative_sentiment_bar(
    bare: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    lenient = dataclasses.replace(bare, config={**bare.config, "negative_sentiment": 1.0})
    out = lenient.predict(tickets)
    assert out["priority_review"].tolist() == out["sentiment"].notna().tolist()


def test_without_a_priority_model_the_score_is_nan(
    bare: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    out = dataclasses.replace(bare, priority_text=None).predict(tickets)
    assert out["priority"].isna().all() and out["priority_score"].isna().all()
    assert all(json.loads(p)["model"] is None for p in out["priority_parts"])


def test_mlflow_s_output_schema_accepts_the_answers(
    headed: model.TriagePredictor, bare: model.TriagePredictor, tickets: pd.DataFrame
) -> None:
    for predictor in (headed, bare):
        mlflow.models.validate_schema(predictor.predict(tickets), model_signature().outputs)


@pytest.mark.slow
def test_heads_survive_saving_and_loading(
    headed: model.TriagePredictor, tickets: pd.DataFrame, tmp_path: Path
) -> None:
    loaded = model.load_predictor(model.save_predictor(headed, tmp_path / "model"))
    assert sorted(loaded.heads) == sorted(headed.heads)
    pd.testing.assert_frame_equal(loaded.predict(tickets), headed.predict(tickets))


def test_an_empty_batch_has_every_column(headed: model.TriagePredictor) -> None:
    out = headed.predict(pd.DataFrame({"body": pd.Series(dtype=object)}))
    assert tuple(out.columns) == model.OUTPUT_COLUMNS and out.empty


def test_the_runtime_s_default_scale_is_the_settings_default() -> None:
    assert list(model.DEFAULT_PRIORITY_SCALE) == list(Settings().priority_levels)
