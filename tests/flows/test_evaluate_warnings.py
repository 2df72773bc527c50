"""`evaluate` on a registered model: rows it trained on are told apart, MLflow stays quiet."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from triage_ml import cli, synth
from triage_ml.settings import Settings

pytestmark = pytest.mark.flows


def test_evaluate_scores_only_unseen_rows_without_mlflow_warnings(
    trained_workspace: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = pd.read_csv(Path(trained_workspace.home).parent / "data" / "tickets.csv")
    unseen = synth.generate(200, months=1, seed=99).tickets
    unseen["ticket_id"] = "unseen-" + unseen["ticket_id"].astype(str)
    mixed = tmp_path / "mixed.csv"
    pd.concat([seen.head(100), unseen], ignore_index=True).to_csv(mixed, index=False)

    with caplog.at_level(logging.WARNING):
        code = cli.main(["evaluate", str(mixed), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["trained_rows"] == 100 and result["n"] == 200
    assert result["warnings"] == [
        "the model trained on 100 of the file's 300 rows: scored only the 200 it never saw"
    ]
    assert "extra inputs" not in captured.err
    assert not [r for r in caplog.records if "extra inputs" in r.getMessage()]
