"""Unit tests of the retraining stages that need no fitted model."""

from __future__ import annotations

import pandas as pd
import pytest

from triage_ml.training import dataset, retrain

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
