"""Evaluation metrics: calibration, top-k, stable metric names, urgent recall."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.utils.validation import _validate_metric_name

from triage_ml.training import metrics

pytestmark = pytest.mark.unit

LEVELS = ("critical", "urgent", "high", "medium", "normal", "low")


def top3(*labels: str) -> str:
    """The JSON the predictor writes for a row's three best categories."""
    return json.dumps(
        [{"category": c, "proba": round(0.6 / (i + 1), 4)} for i, c in enumerate(labels)]
    )


def prediction_frame(
    categories: list[str],
    proba: list[float] | None = None,
    priorities: list[str | None] | None = None,
) -> pd.DataFrame:
    others = ["Billing", "Shipping", "Account", "Technical"]
    return pd.DataFrame(
        {
            "category": categories,
            "category_proba": proba or [0.9] * len(categories),
            "top3": [top3(c, *[o for o in others if o != c][:2]) for c in categories],
            "priority": priorities if priorities is not None else [None] * len(categories),
        }
    )


def test_ece_of_perfectly_calibrated_predictions_is_zero() -> None:
    # In each confidence bin the share of correct rows equals the confidence.
    confidence = np.array([0.25] * 4 + [0.75] * 4 + [1.0] * 2)
    correct = np.array([*[1, 0, 0, 0], *[1, 1, 1, 0], *[1, 1]], dtype=float)
    assert metrics.expected_calibration_error(confidence, correct) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_overconfident_predictions_is_large() -> None:
    rng = np.random.default_rng(0)
    confidence = np.full(1000, 0.99)
    correct = (rng.random(1000) < 0.5).astype(float)
    assert metrics.expected_calibration_error(confidence, correct) == pytest.approx(0.49, abs=0.05)


def test_ece_bins_the_extremes_without_error() -> None:
    ece = metrics.expected_calibration_error(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    assert ece == pytest.approx(0.0)


def test_top_k_accuracy_counts_only_the_first_k() -> None:
    rows = [
        top3("Billing", "Shipping", "Account"),
        top3("Shipping", "Billing", "Account"),
        top3("Account", "Billing", "Shipping"),
    ]
    truth = ["Billing", "Billing", "Shipping"]
    assert metrics.top_k_accuracy(rows, truth, k=1) == pytest.approx(1 / 3)
    assert metrics.top_k_accuracy(rows, truth, k=2) == pytest.approx(2 / 3)
    assert metrics.top_k_accuracy(rows, truth, k=3) == pytest.approx(1.0)


def test_top_k_accuracy_of_nothing_is_nan() -> None:
    assert np.isnan(metrics.top_k_accuracy([], []))


def test_category_metrics_have_stable_keys() -> None:
    truth = ["Billing", "Billing", "Shipping", "Account"]
    out = metrics.category_metrics(
        prediction_frame(["Billing", "Shipping", "Shipping", "Account"]), truth
    )
    assert set(out) == {
        "category_macro_f1",
        "category_accuracy",
        "category_top2_accuracy",
        "category_ece",
        "category_abstained",
        "category_f1.Account",
        "category_f1.Billing",
        "category_f1.Shipping",
    }
    assert out["category_accuracy"] == pytest.approx(0.75)
    assert out["category_f1.Account"] == pytest.approx(1.0)
    assert out["category_f1.Billing"] == pytest.approx(2 / 3)
    assert out["category_macro_f1"] == pytest.approx((1.0 + 2 / 3 + 2 / 3) / 3)
    assert all(isinstance(v, float) for v in out.values())


@pytest.mark.parametrize(
    "label", ["Tech/IT & Ops", "a//b", "trailing/", "../up", "x/./y", "Ümlaut café", "A:B"]
)
def test_metric_keys_of_odd_labels_are_valid_mlflow_names(label: str) -> None:
    key = f"category_f1.{metrics.metric_key(label)}"
    _validate_metric_name(key)
    assert "/" not in key and "&" not in key


def test_metric_key_keeps_plain_labels() -> None:
    assert metrics.metric_key("Billing") == "Billing"
    assert metrics.metric_key("Tech-Support v2") == "Tech-Support v2"


def test_category_metrics_sanitize_per_class_keys() -> None:
    out = metrics.category_metrics(
        prediction_frame(["Tech/IT & Ops", "Billing"]), ["Tech/IT & Ops", "Billing"]
    )
    per_class = {k for k in out if k.startswith("category_f1.")}
    assert per_class == {
        "category_f1.Billing",
        f"category_f1.{metrics.metric_key('Tech/IT & Ops')}",
    }


def test_urgent_recall_uses_the_most_urgent_configured_level_present() -> None:
    # "critical" is absent, so "urgent" is the most urgent level present;
    # "high" sorts first alphabetically.
    truth = ["urgent", "urgent", "high", "high", "low"]
    pred = ["urgent", "low", "high", "high", "low"]
    out = metrics.priority_metrics(
        prediction_frame(["Billing"] * 5, priorities=pred), truth, LEVELS
    )
    assert out["priority_urgent_recall"] == pytest.approx(0.5)
    reordered = metrics.priority_metrics(
        prediction_frame(["Billing"] * 5, priorities=pred), truth, ("high", "urgent", "low")
    )
    assert reordered["priority_urgent_recall"] == pytest.approx(1.0)


def test_priority_metrics_skip_unlabeled_rows() -> None:
    truth = ["critical", None, np.nan, "low"]
    pred = ["critical", "low", "low", "critical"]
    out = metrics.priority_metrics(
        prediction_frame(["Billing"] * 4, priorities=pred), truth, LEVELS
    )
    assert out["priority_accuracy"] == pytest.approx(0.5)
    assert out["priority_urgent_recall"] == pytest.approx(1.0)


def test_priority_metrics_are_empty_without_a_priority_model() -> None:
    assert (
        metrics.priority_metrics(prediction_frame(["Billing"] * 2), ["low", "high"], LEVELS) == {}
    )


def test_evaluate_predictions_combines_category_and_priority() -> None:
    frame = pd.DataFrame({"category": ["Billing", "Shipping"], "priority": ["critical", "low"]})
    predicted = prediction_frame(["Billing", "Shipping"], priorities=["critical", "critical"])
    out = metrics.evaluate_predictions(predicted, frame, LEVELS)
    assert out["n"] == 2.0
    assert out["category_macro_f1"] == pytest.approx(1.0)
    assert out["priority_urgent_recall"] == pytest.approx(1.0)
    assert out["priority_accuracy"] == pytest.approx(0.5)


def test_evaluate_predictions_without_priority_labels_has_no_priority_keys() -> None:
    frame = pd.DataFrame({"category": ["Billing", "Shipping"], "priority": [None, None]})
    out = metrics.evaluate_predictions(
        prediction_frame(["Billing", "Shipping"], priorities=["low", "low"]), frame, LEVELS
    )
    assert not any(k.startswith("priority_") for k in out)
