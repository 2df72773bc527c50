"""Which test rows a version never trained on, from its run's lineage."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from triage_ml import registry
from triage_ml.registry import lineage
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit

ROWS = pd.DataFrame({"ticket_id": ["a", "b", "c", "d"], "batch_id": ["b1", "b1", "b2", "b3"]})


def test_ticket_ids_say_exactly_which_rows_are_unseen() -> None:
    trained = lineage.TrainedOn(ticket_ids=frozenset({"a", "c"}))
    assert trained.unseen(ROWS).tolist() == [False, True, False, True]


def test_without_ids_the_snapshot_s_batches_are_taken_as_seen() -> None:
    trained = lineage.TrainedOn(batch_ids=frozenset({"b1"}))
    assert trained.unseen(ROWS).tolist() == [False, False, True, True]


def test_an_unknown_lineage_leaves_no_row_unseen() -> None:
    assert not lineage.TrainedOn().known
    assert lineage.TrainedOn().unseen(ROWS).tolist() == [False] * 4


def registered_run(settings: Settings, artifacts: dict[str, str]) -> str:
    """A registered version whose run holds ``artifacts`` (path -> text); returns the version."""
    client = registry.use_workspace(settings)
    with mlflow.start_run() as run:
        for path, text in artifacts.items():
            mlflow.log_text(text, path)
    client.create_registered_model(settings.model_name)
    source = f"runs:/{run.info.run_id}/model"
    return client.create_model_version(settings.model_name, source, run.info.run_id).version


def test_trained_on_reads_the_ids_the_run_kept(workspace: Settings) -> None:
    version = registered_run(
        workspace, {lineage.TRAINED_IDS_ARTIFACT: "a\nc", lineage.BATCHES_ARTIFACT: "{}"}
    )
    trained = lineage.trained_on(registry.client(workspace), workspace.model_name, str(version))
    assert trained.ticket_ids == {"a", "c"} and trained.batch_ids is None


def test_trained_on_falls_back_to_the_snapshot_batches(workspace: Settings) -> None:
    batches = '{"snapshot_digest": "x", "ingest_batches": ["b1", "b2"]}'
    version = registered_run(workspace, {lineage.BATCHES_ARTIFACT: batches})
    trained = lineage.trained_on(registry.client(workspace), workspace.model_name, str(version))
    assert trained.ticket_ids is None and trained.batch_ids == {"b1", "b2"}


def test_a_run_without_lineage_is_unknown(workspace: Settings) -> None:
    version = registered_run(workspace, {})
    trained = lineage.trained_on(registry.client(workspace), workspace.model_name, str(version))
    assert not trained.known
