"""Figures and tables that explain a model's test results in the MLflow UI.

scikit-learn draws the confusion matrix; MLflow stores figures and tables
(``log_figure``, ``log_table``). ``mlflow.models.evaluate`` would draw a
confusion matrix too, but it logs its own metric names beside ours and
re-predicts the test set, so it is not used here.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display on workers; must precede pyplot

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, f1_score

from triage_ml.redact import mask_personal_data


def confusion_matrix_figure(truth: Sequence[str], predicted: Sequence[str], title: str) -> Figure:
    """Row-normalised confusion matrix (each true class sums to 1)."""
    labels = sorted(set(truth) | set(predicted))
    size = max(5.0, 0.55 * len(labels) + 3)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(
        list(truth),
        list(predicted),
        labels=labels,
        normalize="true",
        values_format=".2f",
        cmap="Blues",
        colorbar=False,
        ax=ax,
        xticks_rotation=60,
    )
    ax.set_title(title)
    fig.tight_layout()
    return fig


def per_class_f1_figure(truth: Sequence[str], predicted: Sequence[str], title: str) -> Figure:
    """Horizontal bars of F1 per class, with each class's test support."""
    labels = sorted(set(truth))
    scores = f1_score(list(truth), list(predicted), labels=labels, average=None, zero_division=0)
    support = pd.Series(list(truth)).value_counts()
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.4 * len(labels) + 1.5)))
    ax.barh([f"{label} (n={support.get(label, 0)})" for label in labels], scores, color="#4c72b0")
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1")
    ax.axvline(
        float(np.mean(scores)),
        color="#c44e52",
        linestyle="--",
        label=f"macro-F1 {np.mean(scores):.3f}",
    )
    ax.legend(loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def misclassified_examples(
    test: pd.DataFrame, predicted: pd.DataFrame, limit: int = 200
) -> pd.DataFrame:
    """The most confident wrong category predictions, text masked for personal data."""
    truth = test["category"].to_numpy(dtype=object)
    wrong = np.flatnonzero(predicted["category"].to_numpy(dtype=object) != truth)
    rows = pd.DataFrame(
        {
            "ticket_id": test["ticket_id"].to_numpy(dtype=object)[wrong]
            if "ticket_id" in test.columns
            else wrong,
            "true_category": truth[wrong],
            "predicted_category": predicted["category"].to_numpy(dtype=object)[wrong],
            "confidence": predicted["category_proba"].to_numpy(dtype=float)[wrong].round(4),
            "subject": [mask_personal_data(str(s))[:200] for s in _column(test, "subject")[wrong]],
            "body": [mask_personal_data(str(b))[:1000] for b in _column(test, "body")[wrong]],
        }
    )
    return rows.sort_values("confidence", ascending=False).head(limit).reset_index(drop=True)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return frame[name].astype(object).where(frame[name].notna(), "").to_numpy(dtype=object)
