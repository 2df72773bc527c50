"""The suite's server helpers (tests/servers.py): ready when answering, stopped, logs on failure."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import servers

pytestmark = pytest.mark.unit


def http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_a_server_is_used_once_it_answers_and_stopped_after(tmp_path: Path) -> None:
    port = servers.free_port()
    url = f"http://127.0.0.1:{port}/"
    with servers.running(http_server(port), os.environ, tmp_path / "log", url) as seconds:
        assert answers(url) and seconds > 0
    assert not answers(url)


def test_a_server_that_exits_fails_with_the_end_of_its_log(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; sys.exit('no model to serve')"]
    url = f"http://127.0.0.1:{servers.free_port()}/"
    with (
        pytest.raises(RuntimeError, match=r"non-zero code: 1\.\n.*no model to serve"),
        servers.running(command, os.environ, tmp_path / "log", url),
    ):
        pass


def test_variables_left_out_of_the_environment_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_TEST_TOKEN", "secret")
    env = {k: v for k, v in os.environ.items() if k != "TRIAGE_TEST_TOKEN"}
    env["TRIAGE_TEST_ADDED"] = "yes"
    printed = subprocess.run(
        servers.exactly(["env"], env), env={**os.environ, **env}, capture_output=True, text=True
    ).stdout
    assert "TRIAGE_TEST_TOKEN" not in printed and "TRIAGE_TEST_ADDED=yes" in printed


def test_a_background_process_runs_until_the_block_ends(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "print('worker up', flush=True); import time; time.sleep(60)"]
    with servers.background(command, os.environ, tmp_path / "log", tmp_path) as process:
        assert process.poll() is None
    assert process.poll() is not None
