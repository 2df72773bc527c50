"""The flows, unchanged, against a real `mlflow server` (started by mlflow/server.sh) over http://."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from servers import MlflowServer, mlflow_server
from triage_ml import cli, store, synth
from triage_ml.flows.retrain import monthly_retrain
from triage_ml.flows.score import score
from triage_ml.settings import Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """The project's tracking server script on its default store (SQLite + artifact directory)."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def test_retrain_and_score_through_an_http_tracking_server(
    prefect_harness,
    tracking_server: MlflowServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("TRIAGE_HOME", str(home))
    monkeypatch.setenv("TRIAGE_MLFLOW_TRACKING_URI", tracking_server.url)
    monkeypatch.setenv("TRIAGE_TRAIN__CANDIDATES", '["complement_nb"]')
    paths = synth.write(synth.generate(900, months=3, seed=21), tmp_path / "data")
    assert cli.main(["ingest", "tickets", str(paths["tickets"]), "--json"]) == 0

    record = monthly_retrain()
    assert record["promote"] and record["champion_after"] == "1"
    summary = score(Settings())
    assert summary["model_version"] == "1"

    # The registry on the server holds the champion; its artifacts went through the server's proxy
    # to the server's artifact store, and nothing MLflow-related was written into the workspace.
    client = MlflowClient(
        tracking_server.url, tracking_server.url
    )  # not the process-wide registry URI another test set
    champion = client.get_model_version_by_alias("ticket-triage", "champion")
    assert champion.version == "1" and champion.source.startswith(("models:/", "mlflow-artifacts:"))
    assert any(p.name == "MLmodel" for p in files_under(tracking_server.artifacts))
    assert not (home / "mlflow.db").exists() and not files_under(home / "mlartifacts")
    run = client.get_run(record["run_id"])
    assert (
        run.info.artifact_uri.startswith("mlflow-artifacts:")
        and "category_macro_f1" in run.data.metrics
    )

    with store.opened(Settings().store_url) as engine, engine.connect() as conn:
        stored = store.count_rows(conn, store.tickets)
        predicted = store.count_rows(
            conn, store.predictions, store.predictions.c.model_version == "1"
        )
    assert summary["scored"] == stored == predicted > 0

    capsys.readouterr()
    assert cli.main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["champion"]["version"] == "1" and status["runs"][0]["run_id"] == record["run_id"]


def test_an_s3_artifact_root_without_boto3_is_refused_in_one_line(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "TRIAGE_HOME": str(tmp_path),
        "MLFLOW_BIN": str(bin_dir / "mlflow"),
        "MLFLOW_ARTIFACTS_DESTINATION": "s3://triage-mlflow/artifacts",
    }
    done = subprocess.run(
        ["bash", "mlflow/server.sh"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "error: an s3:// artifact destination needs boto3 in the server's environment "
        "(pip install boto3)"
    )
