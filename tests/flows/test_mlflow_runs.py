"""What a retraining leaves in MLflow: a named parent and child runs that compare, and a model card.

All on the session's trained workspace (one real ``monthly_retrain``, version 1 its champion).
"""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from triage_ml import registry, store
from triage_ml.registry import card, status
from triage_ml.settings import Settings
from triage_ml.training import dataset

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def version_run(settings: Settings, client: MlflowClient) -> tuple[Run, list[Run]]:
    """Version 1's parent run and its child runs."""
    parent = client.get_run(client.get_model_version(settings.model_name, "1").run_id)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    return parent, children


def test_the_parent_run_is_named_by_month_and_tickets(trained_workspace: Settings) -> None:
    settings = trained_workspace
    client = registry.use_workspace(settings)
    parent, _ = version_run(settings, client)
    with store.opened(settings.store_url) as engine:
        labeled = len(dataset.load_snapshot(engine).frame)
    assert parent.info.run_name.startswith("retrain ")
    assert parent.info.run_name.endswith(f" · {labeled:,} tickets")
    assert parent.info.run_id in [r["run_id"] for r in status.recent_runs(settings)]


def test_parent_and_children_share_metric_names_and_carry_the_git_sha(
    trained_workspace: Settings,
) -> None:
    client = registry.use_workspace(trained_workspace)
    parent, children = version_run(trained_workspace, client)
    assert children
    shared = {"cv_category_macro_f1", "cv_category_macro_f1_se", "fit_seconds"}
    for run in [parent, *children]:
        assert shared <= set(run.data.metrics), run.info.run_name
        assert run.data.tags["git_sha"] == registry.git_sha()
    assert "test_category_macro_f1" in parent.data.metrics
    assert not any(k.startswith("test_") for c in children for k in c.data.metrics)
    assert parent.data.params["train.candidates"] == "complement_nb"
    assert {"gate.min_delta", "train.cv_folds", "train.seed", "candidate"} <= set(
        parent.data.params
    )


def test_a_child_run_lasts_as_long_as_its_cross_validation(trained_workspace: Settings) -> None:
    client = registry.use_workspace(trained_workspace)
    _, children = version_run(trained_workspace, client)
    for child in children:
        lasted = (child.info.end_time - child.info.start_time) / 1000
        # Opened before the fit and ended after it: at least the CV's own measured seconds.
        assert lasted >= child.data.metrics["fit_seconds"] > 0


def test_every_version_has_a_model_card_and_searchable_tags(trained_workspace: Settings) -> None:
    settings = trained_workspace
    client = registry.use_workspace(settings)
    version = client.get_model_version(settings.model_name, "1")
    text = version.description
    assert text.splitlines()[0] == f"# Model card: {settings.model_name} version 1"
    assert "## Held-out metrics" in text and "Confusion matrix" in text
    assert f"\ngit SHA: {registry.git_sha()}\n" in text
    assert "**Promoted**" in text
    assert version.tags["candidate"] == "complement_nb"
    assert version.tags["gate_decision"] == "promoted"
    assert version.tags["git_sha"] == registry.git_sha()
    run = client.get_run(version.run_id)
    assert version.tags["test_category_macro_f1"] == (
        f"{run.data.metrics['category_macro_f1']:.4f}"
    )
    found = client.search_model_versions(
        f"tags.candidate = 'complement_nb' and name = '{settings.model_name}'"
    )
    assert "1" in [str(v.version) for v in found]
    described = client.get_registered_model(settings.model_name).description
    assert described == card.MODEL_DESCRIPTION and described.startswith("triage-ml models")
