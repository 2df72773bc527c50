"""Held-out metrics of the further heads (subcategory, type, team) in evaluate_predictions."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from triage_ml.training.metrics import evaluate_predictions, head_metrics

pytestmark = pytest.mark.unit

LEVELS = ("urgent", "high", "medium", "low")


def predicted(categories: list[str], **heads: list[object]) -> pd.DataFrame:
    """A model's answers: categories (sure of each), and any head columns."""
    top3 = [json.dumps([{"category": c, "proba": 0.9}]) for c in categories]
    frame = pd.DataFrame(
        {"category": categories, "category_proba": [0.9] * len(categories), "top3": top3}
    )
    return frame.assign(**heads)


def test_a_withheld_answer_is_a_miss_and_unlabeled_rows_are_left_out() -> None:
    got = head_metrics(
        "type", ["Incident", None, "Change", "Change"], ["Incident", "Incident", None, "Change"]
    )
    # Three labeled rows: one right, one withheld (a miss), one right.
    assert got["type_accuracy"] == pytest.approx(2 / 3)
    # Incident: precision 1, recall 1/2 -> F1 2/3; Change: F1 1 -> macro 5/6.
    assert got["type_macro_f1"] == pytest.approx(5 / 6)
    assert head_metrics("team", ["a"], [None]) == {}


def test_every_head_is_measured_with_the_contracted_names() -> None:
    truth = pd.DataFrame(
        {
            "category": ["Billing", "Billing", "Account", "Account"],
            "subcategory": ["Refund", "Invoice", "Login", "Login"],
            "type": ["Incident", "Request", "Incident", "Incident"],
            "team": ["billing", "billing", "accounts", None],
        }
    )
    answers = predicted(
        ["Billing", "Billing", "Account", "Billing"],
        subcategory=["Refund", None, "Login", "Refund"],
        type=["Incident", "Request", "Request", "Incident"],
        team=["billing", "billing", "accounts", "billing"],
    )
    got = evaluate_predictions(answers, truth, LEVELS)
    assert got["subcategory_accuracy"] == pytest.approx(0.5)
    assert got["subcategory_answered"] == pytest.approx(0.75)
    assert got["subcategory_inconsistent"] == 0.0
    assert got["type_accuracy"] == pytest.approx(0.75)
    assert got["team_accuracy"] == 1.0 and got["team_macro_f1"] == 1.0
    assert {"subcategory_macro_f1", "type_macro_f1"} <= set(got)


def test_inconsistent_pairs_are_counted_against_the_models_parents() -> None:
    truth = pd.DataFrame({"category": ["Billing", "Account"], "subcategory": ["Refund", "Login"]})
    # The second row's subcategory belongs to Billing, but its category is Account.
    answers = predicted(["Billing", "Account"], subcategory=["Refund", "Refund"])
    parents = {"Refund": "Billing", "Login": "Account"}
    assert (
        evaluate_predictions(answers, truth, LEVELS, parents=parents)["subcategory_inconsistent"]
        == 1.0
    )
    # Without the model's parents, the frame's true pairs say the same.
    assert evaluate_predictions(answers, truth, LEVELS)["subcategory_inconsistent"] == 1.0
    # A subcategory the model's parents list under several categories fits each of them.
    shared = {"Refund": ["Account", "Billing"]}
    assert (
        evaluate_predictions(answers, truth, LEVELS, parents=shared)["subcategory_inconsistent"]
        == 0.0
    )


def test_a_model_without_a_head_or_rows_without_its_labels_get_no_head_metrics() -> None:
    truth = pd.DataFrame({"category": ["Billing", "Account"], "type": ["Incident", None]})
    no_head = predicted(["Billing", "Account"], type=[None, None], subcategory=[None, None])
    got = evaluate_predictions(no_head, truth, LEVELS)
    assert not any(key.startswith(("type_", "subcategory_", "team_")) for key in got)
    # Told the model has the head, a head that withheld every answer scores 0.
    told = evaluate_predictions(no_head, truth, LEVELS, heads=["type"])
    assert told["type_accuracy"] == 0.0
    older = evaluate_predictions(predicted(["Billing", "Account"]), truth, LEVELS)
    assert "type_accuracy" not in older and older["category_accuracy"] == 1.0
