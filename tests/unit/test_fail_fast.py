"""Fail fast: `retrain` and `score` refuse in one line, before Prefect or MLflow is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from triage_ml import cli, store
from triage_ml.cli import preflight
from triage_ml.errors import RegistryError, TrainingDataError
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit

T0 = pd.Timestamp("2026-01-01T00:00:00Z")

# Runs one command in a fresh interpreter and reports what it imported by the time it ended.
PROBE = """
import json, sys
from triage_ml import cli
code = cli.main(sys.argv[1:])
heavy = [m for m in ("prefect", "mlflow", "sklearn") if m in sys.modules]
print(json.dumps({"code": code, "imported": heavy}))
"""


def probe(home: Path, *argv: str) -> tuple[dict[str, object], list[str]]:
    """(the probe's report, the lines it wrote on stderr) for ``triage-ml ARGV`` in ``home``."""
    env = {"TRIAGE_HOME": str(home), "PATH": "/usr/bin:/bin", "TRIAGE_PROGRESS": "0"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, check=False
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return json.loads(done.stdout.strip().splitlines()[-1]), lines


def store_tickets(settings: Settings, categories: list[str]) -> None:
    """Labeled tickets of ``categories`` in the workspace's store, in one accepted batch."""
    frame = pd.DataFrame(
        {
            "ticket_id": [f"t{i}" for i in range(len(categories))],
            "created_at": [T0 + pd.Timedelta(hours=i) for i in range(len(categories))],
            "category": categories,
            "body": "text",
            "content_hash": "h",
            "ingested_at": T0,
            "batch_id": "b1",
        }
    )
    batch = {
        "batch_id": "b1",
        "kind": "tickets",
        "source": "test",
        "rows_read": len(frame),
        "rows_stored": len(frame),
        "rows_quarantined": 0,
        "rows_skipped": 0,
        "status": store.ACCEPTED,
        "report": None,
    }
    settings.home.mkdir(parents=True, exist_ok=True)
    with store.opened(settings.store_url) as engine, engine.begin() as conn:
        store.record_batch(conn, batch)
        store.insert_rows(conn, store.tickets, frame, ("created_at", "ingested_at"))


def test_retrain_on_an_empty_store_refuses_before_prefect_and_mlflow(tmp_path: Path) -> None:
    report, lines = probe(tmp_path / "home", "retrain")
    assert report == {"code": 2, "imported": []}
    assert len(lines) == 1 and lines[0].startswith("error: only 0 labeled tickets"), lines


def test_score_and_evaluate_without_a_registry_refuse_before_prefect_and_mlflow(
    tmp_path: Path,
) -> None:
    commands = (
        ["score"],
        ["score", "--input", "x.csv", "--output", "y.csv"],
        ["evaluate", "x.csv"],
    )
    for argv in commands:
        report, lines = probe(tmp_path / "home", *argv)
        assert report == {"code": 2, "imported": []}, argv
        assert lines == [
            "error: model 'ticket-triage' has no 'champion' alias yet;"
            " run `triage-ml retrain` first"
        ]


def test_a_single_category_is_refused_before_training(workspace: Settings, monkeypatch) -> None:
    monkeypatch.setenv("TRIAGE_TRAIN__MIN_ROWS", "3")
    store_tickets(workspace, ["Billing"] * 3)
    with pytest.raises(TrainingDataError, match=r"1 category \(Billing\).*at least two"):
        preflight.require_training_data(Settings())


def test_too_few_rows_are_refused_and_enough_give_the_category_shares(
    workspace: Settings, monkeypatch
) -> None:
    monkeypatch.setenv("TRIAGE_TRAIN__MIN_ROWS", "4")
    store_tickets(workspace, ["Billing", "Billing", "Sales"])
    with pytest.raises(TrainingDataError, match="only 3 labeled tickets"):
        preflight.require_training_data(Settings())
    monkeypatch.setenv("TRIAGE_TRAIN__MIN_ROWS", "3")
    shares = preflight.require_training_data(Settings())
    assert shares == pytest.approx({"Billing": 2 / 3, "Sales": 1 / 3})


def test_retrain_command_prints_the_single_category_error(
    workspace: Settings, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("TRIAGE_TRAIN__MIN_ROWS", "2")
    store_tickets(workspace, ["Billing", "Billing"])
    assert cli.main(["retrain"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a classifier needs at least two" in err[0]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:////abs/mlflow.db", Path("/abs/mlflow.db")),
        ("sqlite:///rel/mlflow.db", Path("rel/mlflow.db")),
        ("sqlite:///:memory:", None),
        ("http://127.0.0.1:5000", None),
        ("postgresql://u@h/db", None),
    ],
)
def test_sqlite_file_of_a_registry_uri(uri: str, expected: Path | None) -> None:
    assert preflight.sqlite_file(uri) == expected


def test_an_existing_registry_without_the_alias_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    settings = Settings()
    settings.home.mkdir(parents=True)
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    client.create_experiment("other")  # the registry database exists, without the model
    with pytest.raises(RegistryError, match="no 'champion' alias"):
        preflight.require_champion(settings)
    client.create_registered_model(settings.model_name)
    with pytest.raises(RegistryError, match="no 'champion' alias"):
        preflight.require_champion(settings)
    preflight.require_champion(settings, "3")  # a version number is checked when it loads
