"""The shipped model learns from every labeled row, and the gate still judges on unseen rows.

A retraining measures its choice fitted on the fit part, then ships it refitted on the fit and
test parts together, keeping the ids it learned from in the run's lineage. A later gate scores
the champion only on test rows outside those ids: the same snapshot retrained has none, so the
challenger is rejected with the count; a newer month has them, so the two are compared there.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from triage_ml import cli, registry, store, synth
from triage_ml.registry import lineage
from triage_ml.settings import Settings
from triage_ml.training import dataset

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def trained_ids(settings: Settings, version: str) -> set[str]:
    run_id = registry.client(settings).get_model_version(settings.model_name, version).run_id
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/{lineage.TRAINED_IDS_ARTIFACT}")
    return set(text.split("\n"))


def labeled_ids(settings: Settings) -> set[str]:
    with store.opened(settings.store_url) as engine:
        return set(dataset.load_snapshot(engine).frame["ticket_id"])


def test_the_champion_learned_from_every_labeled_ticket(trained_workspace: Settings) -> None:
    settings = trained_workspace
    registry.use_workspace(settings)
    labeled = labeled_ids(settings)
    assert trained_ids(settings, "1") == labeled
    model, _ = registry.load_champion(registry.client(settings), settings)
    category = model.unwrap_python_model().predictor.category
    # Naive Bayes counts its training rows per class: all of them, test part included.
    assert category.class_count_.sum() == len(labeled)


def test_the_gate_compares_only_on_tickets_the_champion_never_saw(
    prefect_harness, workspace: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from triage_ml.flows.retrain import monthly_retrain

    monkeypatch.setenv("TRIAGE_TRAIN__CANDIDATES", '["complement_nb"]')
    paths = synth.write(synth.generate(1000, months=3, seed=21), tmp_path / "data")
    tickets = pd.read_csv(paths["tickets"]).sort_values("created_at")
    older, newer = tmp_path / "older.csv", tmp_path / "newer.csv"
    tickets.head(600).to_csv(older, index=False)
    tickets.iloc[600:].to_csv(newer, index=False)

    assert cli.main(["ingest", "tickets", str(older), "--json"]) == 0
    assert monthly_retrain()["champion_after"] == "1"

    same = monthly_retrain()
    assert not same["promote"] and same["champion_after"] == "1"
    assert same["reason"].startswith("rejected: unseen rows failed: 0 of ")
    assert [c["name"] for c in same["checks"]] == ["unseen rows"]

    assert cli.main(["ingest", "tickets", str(newer), "--json"]) == 0
    later = monthly_retrain()
    rows_test = int(registry.client(workspace).get_run(later["run_id"]).data.params["rows_test"])
    assert "unseen rows" not in later["reason"] and later["champion"] is not None
    # The newest month lies in the newer file, which version 1 never saw: both models were
    # judged on all of its test rows, which version 3 (as measured) never trained on either.
    assert later["challenger"]["n"] == later["champion"]["n"] == rows_test >= 30
    assert trained_ids(workspace, "1").isdisjoint(pd.read_csv(newer)["ticket_id"].astype(str))
