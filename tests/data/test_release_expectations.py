"""Released quarantine rows go through the batch expectations (GX) like any batch (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from triage_ml import cli, ingest, store, synth
from triage_ml.ingest import ColumnMapping, IngestOptions
from triage_ml.settings import Settings

pytestmark = [pytest.mark.data, pytest.mark.slow]


def test_a_release_is_checked_by_the_batch_expectations(
    workspace: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tickets = synth.generate(120, months=2, seed=3).tickets
    tickets.loc[tickets.index[0], "priority"] = "sky-high"
    path = tmp_path / "history.csv"
    tickets.to_csv(path, index=False)
    workspace.home.mkdir(parents=True)
    options = IngestOptions.from_settings(workspace)
    with store.opened(workspace.store_url) as engine:
        first = ingest.ingest_tickets(engine, path, ColumnMapping(), options)
    assert (first.status, first.quarantined) == ("accepted", 1)
    fixed = tmp_path / "fixed.csv"
    assert cli.main(["quarantine", "export", "--out", str(fixed), "--json"]) == 0
    fixed.write_text(fixed.read_text(encoding="utf-8").replace("sky-high", "high"), "utf-8")
    capsys.readouterr()

    assert cli.main(["quarantine", "release", "--file", str(fixed), "--json"]) == 0

    result = json.loads(capsys.readouterr().out)
    released = result["batches"][0]
    assert result["released"] == 1
    # One row against a history of 120: the volume expectation fails, as for any such batch.
    assert released["status"] == store.BLOCKED
    assert any(line.startswith("volume:") for line in released["batch_failures"])
    with store.opened(workspace.store_url) as engine, engine.connect() as conn:
        status = conn.execute(
            sa.select(store.batches.c.status).where(
                store.batches.c.batch_id == released["batch_id"]
            )
        ).scalar_one()
    assert status == store.BLOCKED
