"""The heads' decode: the subcategory always under its category, withheld below the bar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from triage_ml.training import heads as training_heads
from triage_model import heads
from triage_model.predictor import UNKNOWN

pytestmark = pytest.mark.unit

CLASSES = ["Card", "Duplicate charge", "Login", "Other", "Refund", "Slow"]
PAIRS = [
    ["Account", "Login"],
    ["Account", "Other"],
    ["Billing", "Duplicate charge"],
    ["Billing", "Other"],
    ["Billing", "Refund"],
    ["Technical", "Slow"],
    ["Billing", "Card"],
]
CATEGORIES = ["Account", "Billing", "Technical", "Shipping", UNKNOWN]


def test_decode_is_never_inconsistent_over_random_probabilities() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        rows = int(rng.integers(1, 40))
        proba = rng.dirichlet(np.full(len(CLASSES), 0.3), size=rows)
        categories = rng.choice(CATEGORIES, size=rows).tolist()
        bar = float(rng.uniform(0, 1))
        labels, shares = heads.decode_subcategory(proba, CLASSES, categories, PAIRS, bar)
        assert heads.consistent(categories, labels, PAIRS).all()
        answered = np.array([label is not None for label in labels])
        assert (shares[answered] >= bar).all() and (shares[answered] <= 1 + 1e-12).all()
        assert np.isnan(shares[~answered]).all()
        # A category with no known subcategory (unknown included) never gets one.
        assert all(
            label is None for label, c in zip(labels, categories) if c in ("Shipping", UNKNOWN)
        )


def test_the_answer_is_the_most_probable_within_the_category_renormalised() -> None:
    # "Login" is the most probable overall, but the row's category is Billing.
    proba = np.array([[0.05, 0.2, 0.5, 0.05, 0.1, 0.1]])
    labels, shares = heads.decode_subcategory(proba, CLASSES, ["Billing"], PAIRS, 0.0)
    assert labels == ["Duplicate charge"]
    assert shares[0] == pytest.approx(0.2 / (0.05 + 0.2 + 0.05 + 0.1))


def test_below_the_bar_the_subcategory_falls_back_to_none() -> None:
    proba = np.array([[0.05, 0.2, 0.5, 0.05, 0.1, 0.1]])
    labels, shares = heads.decode_subcategory(proba, CLASSES, ["Billing"], PAIRS, 0.6)
    assert labels == [None] and np.isnan(shares[0])


def test_a_subcategory_under_two_categories_decodes_under_either() -> None:
    proba = np.array([[0.0, 0.0, 0.1, 0.9, 0.0, 0.0]] * 2)
    labels, _ = heads.decode_subcategory(proba, CLASSES, ["Account", "Billing"], PAIRS, 0.5)
    assert labels == ["Other", "Other"]


def test_flat_answers_withhold_below_the_bar() -> None:
    proba = np.array([[0.7, 0.3], [0.45, 0.55]])
    labels, top = heads.flat_answers(proba, ["a", "b"], 0.6)
    assert labels == ["a", None]
    assert top[0] == pytest.approx(0.7) and np.isnan(top[1])


def test_a_model_without_heads_answers_none_in_every_head_column() -> None:
    out = heads.head_answers({}, None, ["Billing", "Account"], {})
    for name in heads.HEADS:
        assert out[name] == [None, None]
        assert np.isnan(out[f"{name}_proba"]).all()


# --- training: which heads the data has, and the parents learned from the pairs

ROWS = pd.DataFrame(
    {
        "category": ["Billing", "Billing", "Account", "Account", "Billing", "Account"],
        "subcategory": ["Refund", "Other", "Other", "Login", None, "Login"],
        "type": ["Incident"] * 6,
        "team": ["a", "b", "a", None, "b", "a"],
    }
)


def test_a_head_needs_two_classes_and_enough_labeled_rows() -> None:
    assert training_heads.trainable_heads(ROWS, 5) == ["subcategory", "team"]
    assert training_heads.trainable_heads(ROWS, 6) == []
    assert training_heads.trainable_heads(ROWS.drop(columns=["team"]), 5) == ["subcategory"]


def test_parents_are_learned_from_the_pairs_and_a_shared_subcategory_keeps_both() -> None:
    pairs = training_heads.subcategory_pairs(ROWS)
    assert pairs == [["Account", "Login"], ["Account", "Other"], ["Billing", "Other"],
                     ["Billing", "Refund"]]  # fmt: skip
    assert training_heads.parents(pairs) == {
        "Login": "Account",
        "Other": ["Account", "Billing"],
        "Refund": "Billing",
    }


def test_a_rare_pair_is_label_noise_and_not_allowed() -> None:
    noisy = pd.DataFrame(
        {
            "category": ["Billing"] * 19 + ["Account"],
            "subcategory": ["Refund"] * 20,
        }
    )
    assert training_heads.subcategory_pairs(noisy) == [["Billing", "Refund"]]
    assert training_heads.parents(training_heads.subcategory_pairs(noisy)) == {"Refund": "Billing"}


def test_heads_are_fitted_on_the_word_block_and_configured_for_the_served_model() -> None:
    from triage_ml.settings import Settings
    from triage_ml.training import candidates, priority

    words = ["refund", "invoice", "login", "password", "crash", "slow"]
    rows = pd.DataFrame(
        {
            "text": [
                f"{w} {w} issue number {i % 7}" for i in range(60) for w in words[i % 6 : i % 6 + 1]
            ],
            "category": [
                "Billing" if i % 6 < 2 else "Account" if i % 6 < 4 else "Tech" for i in range(60)
            ],
            "subcategory": [words[i % 6] for i in range(60)],
            "type": ["Incident" if i % 2 else "Request" for i in range(60)],
            "team": [None] * 60,
        }
    )
    settings = Settings()
    features = candidates.text_features({})
    matrix = features.fit_transform(rows)
    names = training_heads.trainable_heads(rows, 50)
    assert names == ["subcategory", "type"]
    fitted = training_heads.fit_heads(rows, matrix, features, names, settings.train)
    assert fitted.models["type"].n_features_in_ == priority.word_columns(features)
    config = training_heads.heads_config(fitted, settings.heads)
    assert config["head_min_confidence"] == settings.heads.min_confidence
    assert config["heads"]["subcategory"]["parents"]["refund"] == "Billing"
