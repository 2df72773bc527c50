"""Start and stop real server processes on loopback for the tests that need them.

mirakuru starts a process and waits until it answers (``HTTPExecutor``), and
stops its whole process group; port-for picks free ports. What is left here is
the suite's own: logs kept for failure messages, and the MLflow servers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import port_for
from mirakuru import HTTPExecutor, SimpleExecutor
from mirakuru.exceptions import ExecutorError

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
STOP_SECONDS = 20  # a server still up this long after SIGTERM is killed


def free_port() -> int:
    """A TCP port nobody listens on right now, on this machine."""
    return port_for.select_random()


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, for failure messages."""
    return (
        "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        if path.exists()
        else "(no log)"
    )


def exactly(command: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``command`` under ``env(1)``, unsetting what ``env`` leaves out of ``os.environ``.

    mirakuru adds its process's environment to the one it is given; a test that
    removes a variable (a token, a Prefect setting) means it to be absent.
    """
    return ["env", *(f"--unset={name}" for name in os.environ if name not in env), "--", *command]


@contextmanager
def stopped_at_exit(executor: SimpleExecutor, log: Path) -> Iterator[float]:
    """Start ``executor``; yield the seconds it took to be ready; stop its process group at exit.

    Raises:
        RuntimeError: it exited or did not become ready, with the end of its log.
    """
    began = time.perf_counter()
    try:
        executor.start()
    except ExecutorError as failure:
        raise RuntimeError(f"{failure}\n{tail(log)}") from None
    try:
        yield time.perf_counter() - began
    finally:
        stop_within(executor, STOP_SECONDS)


def stop_within(executor: SimpleExecutor, seconds: float) -> None:
    """SIGTERM to the process group, then SIGKILL to what is left after ``seconds``.

    Not ``executor.stop()``: it waits as long as the start-up timeout (180 s), and a
    uvicorn server waits for its clients' open connections before it exits. Servers
    exit on SIGTERM with codes of their own choosing, so only start-up is checked.
    """
    process = executor.process
    if process is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=seconds)
    executor.kill()


@contextmanager
def running(
    command: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    health_url: str,
    timeout: float = 180,
) -> Iterator[float]:
    """Run ``command`` (its own process group) until the block ends; yields start-up seconds.

    Ready when ``health_url`` answers a GET with 2xx; output goes to ``log``.
    """
    with log.open("wb") as out:
        executor = HTTPExecutor(
            exactly(command, env),
            health_url,
            method="GET",
            timeout=timeout,
            sleep=0.3,
            envvars=dict(env),
            cwd=str(REPO),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        with stopped_at_exit(executor, log) as seconds:
            yield seconds


@contextmanager
def background(
    command: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path
) -> Iterator[subprocess.Popen[str]]:
    """Run ``command`` (its own process group, output to ``log``) until the block ends.

    For processes with nothing to poll, such as a Prefect worker; yields the process.
    """
    with log.open("wb") as out:
        executor = SimpleExecutor(
            exactly(command, env),
            timeout=20,
            envvars=dict(env),
            cwd=str(cwd),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        with stopped_at_exit(executor, log):
            yield executor.process


@dataclass(frozen=True)
class MlflowServer:
    """A running ``mlflow server`` started with the project's own ``mlflow/server.sh``."""

    url: str
    backend_store_uri: str
    artifacts: Path
    startup_seconds: float


@contextmanager
def mlflow_server(root: Path, backend_store_uri: str | None = None) -> Iterator[MlflowServer]:
    """``mlflow/server.sh`` on a free loopback port, state under ``root``, until the block ends."""
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    backend = backend_store_uri or f"sqlite:///{root / 'mlflow.db'}"
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "TRIAGE_HOME": str(root),
        "MLFLOW_BIN": str(VENV_BIN / "mlflow"),
        "MLFLOW_PORT": str(port),
        "MLFLOW_WORKERS": "1",
        "MLFLOW_BACKEND_STORE_URI": backend,
        "MLFLOW_ARTIFACTS_DESTINATION": str(root / "artifacts"),
    }
    url = f"http://127.0.0.1:{port}"
    with running(
        ["bash", str(REPO / "mlflow" / "server.sh")],
        env,
        root / "mlflow-server.log",
        f"{url}/health",
    ) as seconds:
        yield MlflowServer(url, backend, root / "artifacts", seconds)


@contextmanager
def start_mlflow_ui(home: Path) -> Iterator[str]:
    """The MLflow UI over a workspace's store (``<home>/mlflow.db``, ``<home>/mlartifacts``).

    ``mlflow server`` on a free loopback port until the block ends (its log in
    ``<home>/mlflow-ui.log``); yields its base URL.
    """
    port = free_port()
    command = [
        str(VENV_BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{home / 'mlflow.db'}",
        "--default-artifact-root",
        str(home / "mlartifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(command, os.environ, home / "mlflow-ui.log", f"{url}/health"):
        yield url
