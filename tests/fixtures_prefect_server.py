"""Pytest plugin: one real Prefect server per test session, started on first use, stopped at end.

Registered from ``tests/conftest.py`` (``pytest_plugins``). A test asks for
``prefect_server`` (session scope) and gets a :class:`PrefectServer`: its
``api_url`` (``http://127.0.0.1:<port>/api``) and ``cli_env()``, the
environment for a ``triage-ml`` or ``prefect`` subprocess that talks to it.
``prefect_api_url`` is the URL alone. ``prefect_ui_server`` is a second
server with its UI on, for the browser test.

The flow tests' ``prefect_test_harness`` is a different, in-process server;
this one is a separate ``prefect server start`` process, as in production.
A test talks to it from subprocesses (or with
``prefect.settings.temporary_settings``), never by setting ``PREFECT_API_URL``
in this process, which would redirect every other flow test of the session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from servers import free_port, running, tail

RETRIED = {429, 502, 503}
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass(frozen=True)
class PrefectServer:
    """A running ``prefect server start`` process."""

    api_url: str
    home: Path
    log: Path
    startup_seconds: float

    def cli_env(self, **extra: str) -> dict[str, str]:
        """This process's environment without Prefect settings, pointed at the server.

        The server is named through TRIAGE_PREFECT_API_URL, as an operator would.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            {
                "TRIAGE_PREFECT_API_URL": self.api_url,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "DO_NOT_TRACK": "1",
            }
        )
        env.update(extra)
        return env

    def api(
        self, method: str, path: str, body: dict[str, Any] | None = None, attempts: int = 6
    ) -> Any:
        """One call to the server's REST API, retried on 429/502/503 as Prefect's own client does.

        The server answers 503 while its SQLite database is locked by a concurrent write
        (a worker's state updates, its scheduler), which a busy 2-core machine makes common.
        """
        for attempt in range(attempts):
            response = httpx.request(method, f"{self.api_url}{path}", json=body, timeout=30)
            if response.status_code not in RETRIED or attempt == attempts - 1:
                break
            time.sleep(0.5 * 2**attempt)
        response.raise_for_status()
        return response.json()

    def wait_for_run(
        self,
        run_id: str,
        timeout: float = 180,
        worker: subprocess.Popen[bytes] | None = None,
        log: Path | None = None,
    ) -> dict[str, Any]:
        """Poll a flow run until it reaches a terminal state.

        Fails early if ``worker`` (logging to ``log``) exits.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if worker is not None:
                assert worker.poll() is None, f"worker exited:\n{tail(log) if log else ''}"
            run = self.api("GET", f"/flow_runs/{run_id}")
            if run["state_type"] in TERMINAL:
                return run
            time.sleep(1)
        raise AssertionError(
            f"flow run {run_id} still {run['state_type']} after {timeout} s\n"
            f"{tail(log) if log else ''}"
        )


@contextmanager
def started_prefect_server(home: Path, ui: bool = False) -> Iterator[PrefectServer]:
    """``prefect server start`` on a free loopback port with PREFECT_HOME under ``home``.

    Args:
        home: a directory for the server's state and log.
        ui: serve the UI too (at the API URL without ``/api``); off, start-up is quicker.
    """
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_UI_ENABLED": str(ui).lower(),
            # The UI asks this URL for the API; its default is port 4200, not this server's.
            "PREFECT_UI_API_URL": api_url,
        }
    )
    log = home / "server.log"
    command = [sys.executable, "-m", "prefect", "server", "start"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with running(command, env, log, f"{api_url}/health") as seconds:
        server = PrefectServer(api_url, home, log, round(seconds, 1))
        print(
            f"\nprefect server {api_url} healthy after {server.startup_seconds} s", file=sys.stderr
        )
        yield server


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real Prefect server on loopback, its own PREFECT_HOME and its UI, shared by the session.

    One server for the API tests and the browser test: a second start costs ~13 s.
    """
    with started_prefect_server(tmp_path_factory.mktemp("prefect-server"), ui=True) as server:
        yield server


@pytest.fixture(scope="session")
def prefect_ui_server(prefect_server: PrefectServer) -> PrefectServer:
    """The session's Prefect server, whose UI is at ``api_url`` without its ``/api``."""
    return prefect_server


@pytest.fixture(scope="session")
def prefect_api_url(prefect_server: PrefectServer) -> str:
    """The API URL of the session's real Prefect server (``http://127.0.0.1:<port>/api``)."""
    return prefect_server.api_url
