"""Drift against the registered champion: its training tickets from lineage, its served answers.

On a copy of the shared trained workspace's store (the registry is only read), so the
tickets ingested and scored here reach no other test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import cli, registry, store
from triage_ml.monitoring import drift
from triage_ml.registry import lineage
from triage_ml.scoring import batch
from triage_ml.settings import Settings
from triage_ml.training import dataset
from triage_ml.training.evaluation import known_categories

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def trained_ids(settings: Settings, version: str) -> set[str]:
    run_id = registry.client(settings).get_model_version(settings.model_name, version).run_id
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/{lineage.TRAINED_IDS_ARTIFACT}")
    return set(filter(None, text.split("\n")))


@pytest.fixture
def copied_store(
    trained_workspace: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[sa.Engine]:
    """The trained workspace's store, copied; the CLI's home and store are the copy's.

    The returned settings' registry (the trained workspace's) is only read.
    """
    source = trained_workspace.store_url.removeprefix("sqlite:///")
    url = f"sqlite:///{shutil.copy(source, tmp_path / 'triage.db')}"
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIAGE_DATABASE_URL", url)
    engine = store.connect(url)
    yield engine
    engine.dispose()


def test_the_reference_is_the_champions_training_tickets_as_scoring_sees_them(
    trained_workspace: Settings, copied_store: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = trained_workspace
    registry.use_workspace(settings)
    client = registry.client(settings)
    trained = trained_ids(settings, "1")

    frame = drift.reference(copied_store, client, settings, "1")
    assert set(frame["ticket_id"]) == trained and len(frame) == len(trained)
    assert "customer_id" not in frame.columns
    # The repeat contacts the store counts for scoring are those training counted in memory.
    snapshot = dataset.load_snapshot(copied_store).frame.set_index("ticket_id")
    expected = snapshot.loc[frame["ticket_id"], "repeat_contacts"].to_numpy(dtype=float)
    assert np.array_equal(frame["repeat_contacts"].to_numpy(dtype=float), expected, equal_nan=True)
    assert frame["repeat_contacts"].notna().any()

    monkeypatch.setattr(drift, "REFERENCE_ROWS", 400)
    sample = drift.reference(copied_store, client, settings, "1")
    assert len(sample) == 400 and set(sample["ticket_id"]) <= trained
    again = drift.reference(copied_store, client, settings, "1")
    assert again["ticket_id"].tolist() == sample["ticket_id"].tolist()


def test_recent_tickets_scored_by_the_champion_are_measured_against_its_reference(
    trained_workspace: Settings, copied_store: sa.Engine, tmp_path: Path
) -> None:
    settings = trained_workspace
    registry.use_workspace(settings)
    client = registry.client(settings)
    model, version = registry.load_champion(client, settings)
    new_file = settings.home.parent / "data" / "new_tickets.csv"
    assert cli.main(["ingest", "tickets", str(new_file), "--unlabeled", "--json"]) == 0
    new = pd.read_csv(new_file)
    for chunk in batch.unscored_chunks(copied_store, version, 500):
        chunk = chunk[chunk["ticket_id"].isin(new["ticket_id"])]
        batch.write_chunk(copied_store, batch.predictions_frame(model, chunk, version))

    end = pd.to_datetime(new["created_at"], utc=True).max() + pd.Timedelta(seconds=1)
    current, labels = drift.recent(copied_store, version, settings.monitor, now=end)
    reference = drift.reference(copied_store, client, settings, version)
    classes = sorted(known_categories(model) or [])
    report = drift.measure(reference, current, model, classes, labels, settings.monitor)

    assert report.message is None and labels == {} and report.new_labels == []
    figures = {f["name"]: f for f in report.figures}
    assert list(figures) == list(drift.FIGURES)
    assert figures["prediction"]["current_rows"] == len(new)
    assert figures["prediction"]["reference_rows"] == len(reference)
    assert figures["oov_share"]["current_rows"] > 0.9 * len(new)
    # New tickets from the same generator: nothing in how they are written has moved.
    assert not figures["language"]["drifted"] and not figures["oov_share"]["drifted"]
    assert report.drifted == any(f["drifted"] for f in report.figures)

    # One channel alone is a drift of the channel mix, on the same real model and store rows.
    top = current["channel"].value_counts().index[0]
    only = current[current["channel"] == top]
    shifted = drift.measure(reference, only, model, classes, {"warranty": 1}, settings.monitor)
    assert {f["name"]: f for f in shifted.figures}["channel"]["drifted"] and shifted.drifted
    assert shifted.new_labels == ["warranty"]
    assert {
        row["value"] for row in drift.segment_table(shifted) if row["segment"] == "channel"
    } == {top}
