"""The real CLI keeps every piece of state in its TRIAGE_HOME and nowhere else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from triage_ml import cli, synth

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def triage(args: list[str], home: Path, workspace: Path, cwd: Path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "TRIAGE_", "MLFLOW_", "MPLCONFIGDIR"))
    }
    env.update({"HOME": str(home), "TRIAGE_HOME": str(workspace)})
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "triage-ml"), *args, "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_two_workspaces_share_nothing_and_nothing_global(
    prefect_harness, tmp_path: Path, monkeypatch, capsys
) -> None:
    home, cwd = tmp_path / "fake-home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    one = synth.write(synth.generate(200, months=2, seed=1), tmp_path / "one")["tickets"]
    two = synth.write(synth.generate(300, months=2, seed=2), tmp_path / "two")["tickets"]

    first = triage(["ingest", "tickets", str(one)], home, tmp_path / "ws-a", cwd)
    # The second workspace in-process (under the session harness) to save a server start.
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "ws-b"))
    monkeypatch.chdir(cwd)
    assert cli.main(["ingest", "tickets", str(two), "--json"]) == 0
    second = json.loads(capsys.readouterr().out)

    assert (first["read"], first["stored"]) == (200, 200)
    assert (second["read"], second["stored"]) == (300, 300)  # ws-b never saw ws-a's tickets
    for ws in ("ws-a", "ws-b"):
        assert (tmp_path / ws / "triage.db").exists()
    assert (
        tmp_path / "ws-a" / "prefect" / "prefect.db"
    ).exists()  # the CLI's Prefect home is its workspace
    assert list(home.iterdir()) == []  # no ~/.prefect, no ~/.cache, nothing
    assert list(cwd.iterdir()) == []  # no ./mlruns, no ./mlflow.db
