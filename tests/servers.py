"""Start and stop real server processes on loopback for the tests that need them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from triage_ml.scoring import serving

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, for failure messages."""
    return (
        "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        if path.exists()
        else "(no log)"
    )


def wait_for_http(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180
) -> float:
    """:func:`triage_ml.serving.wait_until_ready`, failing with the end of the server's log."""
    try:
        return serving.wait_until_ready(url, process, timeout)
    except RuntimeError as failure:
        raise RuntimeError(f"{failure}:\n{tail(log)}") from None


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


@contextmanager
def running(
    command: Sequence[str], env: Mapping[str, str], log: Path, health_url: str
) -> Iterator[float]:
    """Run ``command`` in its own process group until the block ends; yields start-up seconds."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
    try:
        yield wait_for_http(health_url, process, log)
    finally:
        stop(process)


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
