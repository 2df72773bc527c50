"""Online serving: MLflow's own scoring server (``mlflow models serve``) on a registered version.

Nothing is hand-written here but the command line: MLflow's server already
answers ``/ping``, ``/health``, ``/version`` and ``/invocations`` and applies
the model's signature. The champion is resolved when the server starts; after
a promotion or rollback, restart it (or run one server per version).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from triage_ml import registry
from triage_ml.errors import RegistryError
from triage_ml.settings import Settings


def model_uri(settings: Settings, which: str) -> str:
    """``models:/<name>@<alias>`` or ``models:/<name>/<version>`` for ``which``.

    Raises:
        RegistryError: the alias is unset (checked here, so the server does not start, then fail).
    """
    if which.isdigit():
        return f"models:/{settings.model_name}/{which}"
    if registry.alias_version(registry.client(settings), settings.model_name, which) is None:
        raise RegistryError(
            f"model '{settings.model_name}' has no '{which}' alias yet; "
            "run `triage-ml retrain` first"
        )
    return f"models:/{settings.model_name}@{which}"


def serve_command(uri: str, host: str, port: int, workers: int) -> list[str]:
    """The ``mlflow models serve`` command for ``uri``, in this environment (no conda, no venv)."""
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    return [
        str(mlflow_cli),
        "models",
        "serve",
        "-m",
        uri,
        "--env-manager",
        "local",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def serve_environment(settings: Settings) -> dict[str, str]:
    """The server's environment: the workspace's stores, and this environment's tools first on PATH.

    MLflow starts its server by running ``uvicorn`` from PATH, which a
    virtual environment that is not activated does not provide.
    """
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {
        **os.environ,
        "PATH": path,
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MLFLOW_REGISTRY_URI": settings.registry_uri,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def wait_until_ready(url: str, process: subprocess.Popen, timeout: float = 180.0) -> float:
    """Poll ``url`` (a server's health endpoint, e.g. ``.../ping``) until it answers 200.

    Returns:
        The seconds it took.

    Raises:
        RuntimeError: the process exited, or the timeout passed.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(
                f"the server exited with code {process.returncode} before {url} answered"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer {url} within {timeout:.0f} s")
