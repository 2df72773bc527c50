"""The real CLI, stopped or failing while its temporary Prefect server runs.

Each test starts `triage-ml ingest` as its own process, so that the command
starts its own Prefect server (no test harness), and looks at that server
process from outside.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from triage_ml import store, synth
from triage_ml.cli import prefect_server

pytestmark = [pytest.mark.flows, pytest.mark.slow]

TRIAGE_ML = str(Path(sys.executable).parent / "triage-ml")
SERVER_START_SECONDS = 240


@pytest.fixture(scope="module")
def tickets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("signals-data")
    return synth.write(synth.generate(200, months=2, seed=3), folder)["tickets"]


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "TRIAGE_", "MLFLOW_", "MPLCONFIGDIR"))
    }
    return {**env, "TRIAGE_HOME": str(home), **extra}


def start(home: Path, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [TRIAGE_ML, *args],
        env=cli_env(home, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def server_started_by(cli: subprocess.Popen[str], home: Path) -> psutil.Process:
    """The Prefect server process that ``cli`` starts, once it exists."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        for server in prefect_server.workspace_servers(home / "prefect"):
            if server.process.ppid() == cli.pid:
                return server.process
        assert cli.poll() is None, cli.communicate()[1][-2000:]
        time.sleep(0.2)
    cli.kill()
    raise AssertionError("the command started no Prefect server")


def the_error_line(err: str) -> str:
    """The command's one ``error:`` line (Prefect's exit hook may log after it)."""
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def gone(process: psutil.Process, wait: float = 10.0) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True  # dead, waiting for its new parent to reap it
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_stops_the_prefect_server_too(
    tmp_path: Path, tickets_file: Path, signum: signal.Signals
) -> None:
    home = tmp_path / "ws"
    cli = start(home, "ingest", "tickets", str(tickets_file))
    server = server_started_by(cli, home)
    cli.send_signal(signum)
    _, err = cli.communicate(timeout=60)
    assert cli.returncode == 128 + signum
    assert the_error_line(err) == f"error: stopped by {signum.name}"
    assert gone(server)
    assert prefect_server.workspace_servers(home / "prefect") == []


def test_a_server_left_by_kill_9_is_stopped_by_the_next_command(
    tmp_path: Path, tickets_file: Path
) -> None:
    home = tmp_path / "ws"
    cli = start(home, "ingest", "tickets", str(tickets_file))
    server = server_started_by(cli, home)
    cli.kill()
    cli.wait(timeout=60)  # not communicate(): the orphaned server holds the pipes open
    for pipe in (cli.stdout, cli.stderr):
        pipe.close()
    assert not gone(server, wait=1.0)  # SIGKILL runs no exit hook: the server is orphaned

    try:
        after = subprocess.run(
            [TRIAGE_ML, "config", "show", "--json"],
            env=cli_env(home),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert after.returncode == 0, after.stderr
        assert gone(server)
    finally:
        if not gone(server, wait=0):
            with contextlib.suppress(psutil.NoSuchProcess):
                server.kill()  # never leave the test's own orphan behind
    assert f"pid {server.pid}" in after.stderr  # the reaping is said, on stderr


def test_a_lock_met_inside_a_flow_is_one_line_without_prefects_traceback(
    tmp_path: Path, tickets_file: Path
) -> None:
    home = tmp_path / "ws"
    path = tmp_path / "busy.db"
    store.connect(f"sqlite:///{path}").dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # readers still get in: the flow opens the store
    try:
        cli = start(
            home,
            "ingest",
            "tickets",
            str(tickets_file),
            TRIAGE_DATABASE_URL=f"sqlite:///{path}?timeout=0.5",
        )
        _, err = cli.communicate(timeout=SERVER_START_SECONDS)
    finally:
        holder.rollback()
        holder.close()
    assert cli.returncode == 2, err[-3000:]
    last = the_error_line(err)
    assert last.startswith("error: the store ") and str(path) in last and "locked" in last
    assert "Traceback (most recent call last)" in (home / "logs" / "triage-ml.log").read_text()
