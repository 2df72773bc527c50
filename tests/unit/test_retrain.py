"""Unit tests of the retraining stages that need no fitted model."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from triage_ml import registry
from triage_ml.settings import Settings
from triage_ml.training import dataset, retrain, selection

pytestmark = pytest.mark.unit


def test_lineage_records_the_digest_of_every_row_and_the_schema_without_text() -> None:
    part = pd.DataFrame(
        {
            "ticket_id": [f"t{i}" for i in range(30)],
            "subject": ["Refund"] * 30,
            "body": ["Charged twice."] * 30,
            "category": ["Billing", "Sales", "Returns"] * 10,
            "customer_ltv": [float(i) for i in range(30)],
        }
    )
    data = retrain.lineage_dataset(part, "tickets-training", schema_rows=10)
    assert data.name == "tickets-training" and data.digest == dataset.frame_digest(part)
    # The schema comes from the first rows; the digest still covers the rows after them.
    assert (
        retrain.lineage_dataset(part.head(10), "tickets-training", schema_rows=10).digest
        != data.digest
    )
    assert data.schema.input_names() == ["ticket_id", "category", "customer_ltv"]


def test_a_candidate_is_logged_as_a_child_run_with_its_fold_scores(workspace: Settings) -> None:
    # The CV time is not part of Scored; the flow measures it and the child run records it.
    client = registry.use_workspace(workspace)
    scored = selection.Scored("logreg", {"C": 3.0}, None, (0.7, 0.9), 2, np.empty((0, 0)))
    with mlflow.start_run(run_name="parent") as parent:
        retrain.log_candidate(scored, parent.info.run_id, 1.5)
    (child,) = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert child.data.tags["candidate"] == "logreg" and child.data.params["C"] == "3.0"
    assert child.data.metrics == pytest.approx(
        {
            "cv_macro_f1_mean": 0.8,
            "cv_macro_f1_std_error": 0.1,
            "cv_macro_f1_fold_0": 0.7,
            "cv_macro_f1_fold_1": 0.9,
            "cv_settings_tried": 2.0,
            "cv_seconds": 1.5,
        }
    )


def test_the_input_example_is_made_up_whatever_the_tickets() -> None:
    tickets = pd.DataFrame(
        {
            "subject": ["Refund to jan.kowalczyk@poczta-example.pl"],
            "body": ["Card 4539 1488 0343 6467, call +48 512 904 377.\nRegards,\nJan Kowalczyk"],
            "customer_ltv": [10],
            "ticket_id": ["t1"],
        }
    )
    example = registry.input_example(tickets)
    assert list(example.columns) == ["subject", "body", "customer_ltv"]
    assert len(example) == 2 and example["customer_ltv"].dtype == float
    text = example.to_json()
    assert not any(s in text for s in ("kowalczyk", "4539", "512 904", "Jan"))
    assert example.equals(registry.input_example(tickets.assign(body="other")))
    assert list(registry.input_example().columns) == [
        "subject",
        "body",
        "channel",
        "customer_tier",
        "customer_ltv",
        "language",
        "repeat_contacts",
    ]
