"""Figures and tables logged with a retraining run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from triage_ml.training import diagnostics

pytestmark = pytest.mark.unit


def test_confusion_matrix_has_every_label_on_both_axes() -> None:
    fig = diagnostics.confusion_matrix_figure(["a", "b", "b"], ["a", "b", "c"], "test")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]


def test_per_class_f1_bars_show_support() -> None:
    fig = diagnostics.per_class_f1_figure(["a", "a", "b"], ["a", "b", "b"], "test")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["a (n=2)", "b (n=1)"]


def test_misclassified_examples_are_masked_and_most_confident_first() -> None:
    test = pd.DataFrame(
        {
            "ticket_id": ["t1", "t2", "t3"],
            "category": ["Billing", "Account", "Billing"],
            "subject": ["refund", None, "card"],
            "body": ["mail me at a@b.com", "ok", "card 4111 1111 1111 1111"],
        }
    )
    predicted = pd.DataFrame(
        {
            "category": ["Account", "Account", "Shipping"],
            "category_proba": [0.6, 0.9, 0.8],
            "top3": [json.dumps([])] * 3,
        }
    )
    rows = diagnostics.misclassified_examples(test, predicted)
    assert rows["ticket_id"].tolist() == ["t3", "t1"]
    assert rows["body"].tolist() == ["card [NUMBER]", "mail me at [EMAIL]"]
    assert rows[["true_category", "predicted_category"]].values.tolist() == [
        ["Billing", "Shipping"],
        ["Billing", "Account"],
    ]


def test_misclassified_examples_mask_signatures_ibans_and_phones() -> None:
    test = pd.DataFrame(
        {
            "ticket_id": ["t1"],
            "category": ["Billing"],
            "subject": ["call +48 512 904 377"],
            "body": ["IBAN GB29 NWBK 6016 1331 9268 19 please.\n\nKind regards,\nJan Kowalczyk"],
        }
    )
    predicted = pd.DataFrame({"category": ["Account"], "category_proba": [0.7]})
    rows = diagnostics.misclassified_examples(test, predicted)
    assert rows["subject"].tolist() == ["call [PHONE]"]
    assert rows["body"].tolist() == ["IBAN [NUMBER] please.\n\nKind regards,\n[NAME]"]
