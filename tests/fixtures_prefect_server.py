"""Pytest plugin: one real Prefect server per test session, started on first use and stopped at the end.

Registered from ``tests/conftest.py`` (``pytest_plugins``). A test asks for
``prefect_server`` (session scope) and gets a :class:`PrefectServer`: its
``api_url`` (``http://127.0.0.1:<port>/api``) and ``cli_env()``, the
environment for a ``triage-ml`` or ``prefect`` subprocess that talks to it.
``prefect_api_url`` is the URL alone.

The flow tests' ``prefect_test_harness`` is a different, in-process server;
this one is a separate ``prefect server start`` process, as in production.
A test talks to it from subprocesses (or with
``prefect.settings.temporary_settings``), never by setting ``PREFECT_API_URL``
in this process, which would redirect every other flow test of the session.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

STARTUP_TIMEOUT_S = 180.0  # a first start runs the database migrations; slow on a busy 2-core machine


@dataclass(frozen=True)
class PrefectServer:
    """A running ``prefect server start`` process."""

    api_url: str
    home: Path
    log: Path
    startup_seconds: float

    def cli_env(self, **extra: str) -> dict[str, str]:
        """This process's environment without Prefect settings, pointed at the server through TRIAGE_PREFECT_API_URL."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update({"TRIAGE_PREFECT_API_URL": self.api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"})
        env.update(extra)
        return env


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(process: subprocess.Popen[bytes], api_url: str, log: Path, timeout: float) -> None:
    """Poll ``/api/health`` until the server answers; fail with its log if it dies or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"prefect server not healthy after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left after 20 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real Prefect server on loopback with its own PREFECT_HOME, shared by the session."""
    home = tmp_path_factory.mktemp("prefect-server")
    api_url = f"http://127.0.0.1:{free_port()}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(home / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                "PREFECT_UI_ENABLED": "false"})
    log = home / "server.log"
    port = api_url.rsplit(":", 1)[1].split("/")[0]
    started = time.monotonic()
    with log.open("wb") as out:
        # Its own process group: the server's children go with it at the end.
        process = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                    "--port", port], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_until_healthy(process, api_url, log, STARTUP_TIMEOUT_S)
        server = PrefectServer(api_url, home, log, round(time.monotonic() - started, 1))
        print(f"\nprefect server {api_url} healthy after {server.startup_seconds} s", file=sys.stderr)
        yield server
    finally:
        stop(process)


@pytest.fixture(scope="session")
def prefect_api_url(prefect_server: PrefectServer) -> str:
    """The API URL of the session's real Prefect server (``http://127.0.0.1:<port>/api``)."""
    return prefect_server.api_url
