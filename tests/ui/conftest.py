"""What the browser test needs: Chromium, two retrains on a real Prefect server, the MLflow UI.

Chromium comes from Debian's packages (installed here when missing, never
playwright's own download); the retrains run as ``triage-ml`` subprocesses,
as a user runs them, against ``prefect_ui_server`` (tests/fixtures_prefect_server.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fixtures_prefect_server import PrefectServer
from servers import VENV_BIN, start_mlflow_ui
from triage_ml import synth
from triage_ml.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
# Headless in a container as root: no sandbox, no GPU, and nothing that reaches for the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Small and quick: the pages need two parent runs and two versions, not a good model.
RETRAIN_ENV = {
    "TRIAGE_TRAIN__CANDIDATES": '["complement_nb"]',
    "TRIAGE_TRAIN__PRIORITY_MODEL": "baseline",
    "TRIAGE_TRAIN__CV_FOLDS": "2",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
TICKETS, MONTHS, SEED = 1200, 4, 7
# Read at import: the session's isolated_environment fixture clears every TRIAGE_ variable.
SCREENSHOTS_DIR = os.environ.get("TRIAGE_SCREENSHOTS_DIR")


def apt_install_chromium() -> str | None:
    """Install Debian's ``chromium`` when it is missing; the reason it cannot be, or None."""
    if CHROMIUM.exists():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and apt-get cannot install it here (not root with apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    # The package lists are refreshed only when the install fails: an update takes minutes.
    for commands in ([install], [["apt-get", "update", "-q"], install]):
        done = [subprocess.run(c, env=env, capture_output=True, text=True) for c in commands]
        if done[-1].returncode == 0 and CHROMIUM.exists():
            return None
    return f"apt-get install chromium failed: {done[-1].stderr.strip()[-300:]}"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed by apt-get when missing; skips only where it cannot be."""
    if reason := apt_install_chromium():
        pytest.skip(reason)
    return CHROMIUM


# Module scope: playwright's sync API keeps an event loop running in the main thread until
# it stops, and a later test's asyncio.run() would fail inside it.
@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    """Headless Chromium driven by playwright's sync API, shared by the module's tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def split_history(tickets: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The history before its last calendar month, and that month: the second retrain's news."""
    created = pd.to_datetime(tickets["created_at"], utc=True)
    cut = created.max().normalize().replace(day=1)
    return tickets[created < cut], tickets[created >= cut]


def started(env: dict[str, str], log: Path, *argv: str) -> subprocess.Popen[bytes]:
    """``triage-ml <argv> --json`` in the background; its JSON to ``log``, its logs beside it."""
    with log.open("wb") as out, log.with_suffix(".err").open("wb") as err:
        return subprocess.Popen(
            [str(VENV_BIN / "triage-ml"), *argv, "--json"], env=env, stdout=out, stderr=err
        )


def answer(process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    """The JSON answer of a :func:`started` command, or a failure with the end of its logs."""
    code = process.wait(timeout=300)
    errors = log.with_suffix(".err").read_text(errors="replace")[-3000:]
    assert code == 0, f"{' '.join(map(str, process.args))} exited {code}:\n{errors}"
    return json.loads(log.read_text())


def triage_ml(env: dict[str, str], log: Path, *argv: str) -> dict[str, Any]:
    """Run ``triage-ml <argv> --json``; its JSON answer."""
    return answer(started(env, log, *argv), log)


def write_months(tickets: pd.DataFrame, folder: Path) -> tuple[Path, Path]:
    """The history as two CSV files: before its last month, and that month."""
    folder.mkdir(parents=True)
    paths = folder / "older.csv", folder / "newer.csv"
    for part, path in zip(split_history(tickets), paths):
        part.to_csv(path, index=False)
    return paths


@dataclass(frozen=True)
class Retrained:
    """A workspace after two retrains, and where the UIs show them."""

    home: Path
    settings: Settings
    second: dict[str, Any]
    flow_run: dict[str, Any]
    mlflow_url: str


def latest_retrain_run(server: PrefectServer) -> dict[str, Any]:
    """The newest ``monthly-retrain`` flow run on ``server``."""
    body = {
        "flows": {"name": {"any_": ["monthly-retrain"]}},
        "sort": "START_TIME_DESC",
        "limit": 1,
    }
    runs = server.api("POST", "/flow_runs/filter", body)
    assert runs, "no monthly-retrain flow run on the Prefect server"
    return runs[0]


@contextmanager
def mlflow_ui_over(home: Path) -> Iterator[str]:
    """The MLflow UI over the workspace ``home`` (created if new); its base URL."""
    home.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        # MLflow reads DO_NOT_TRACK only when it is "true"; the suite sets it to "1".
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        with start_mlflow_ui(home) as url:
            yield url


@pytest.fixture(scope="session")
def two_retrains(
    prefect_ui_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Retrained]:
    """Ingest three months and retrain; ingest the fourth month and retrain again.

    The MLflow UI starts over the new workspace while the first ingest runs, and
    serves it until the session ends.
    """
    root = tmp_path_factory.mktemp("screenshots")
    home = root / "home"
    env = prefect_ui_server.cli_env(TRIAGE_HOME=str(home), **RETRAIN_ENV)
    tickets = synth.generate(TICKETS, months=MONTHS, seed=SEED).tickets
    older, newer = write_months(tickets, root / "data")
    first_ingest = started(env, root / "ingest-older.json", "ingest", "tickets", str(older))
    with mlflow_ui_over(home) as mlflow_url:
        answer(first_ingest, root / "ingest-older.json")
        triage_ml(env, root / "retrain-1.json", "retrain")
        triage_ml(env, root / "ingest-newer.json", "ingest", "tickets", str(newer))
        second = triage_ml(env, root / "retrain-2.json", "retrain")
        flow_run = latest_retrain_run(prefect_ui_server)
        yield Retrained(home, Settings(home=home), second, flow_run, mlflow_url)


@pytest.fixture(scope="session")
def mlflow_ui(two_retrains: Retrained) -> str:
    """Base URL of the MLflow UI over the retrained workspace's store."""
    return two_retrains.mlflow_url


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the PNGs go: $TRIAGE_SCREENSHOTS_DIR (``make screenshots``), else a temp dir."""
    target = Path(SCREENSHOTS_DIR).resolve() if SCREENSHOTS_DIR else tmp_path_factory.mktemp("png")
    target.mkdir(parents=True, exist_ok=True)
    return target
