"""Online serving: MLflow's scoring app on a registered version, behind limits and a token.

MLflow's scoring server answers ``/ping``, ``/health``, ``/version`` and
``/invocations`` and applies the model's signature; :mod:`triage_ml.scoring.app`
runs that same app (``mlflow.pyfunc.scoring_server.init``) behind a guard that
bounds each request's size, tickets and time, checks the tickets' types and
text, and asks for a bearer token when one is set. This module holds what the
command line needs before the server starts: the model's URI, the limits, the
token, whether the address may be bound, and the server's command. The
champion is resolved when the server starts; after a promotion or rollback,
restart it (or run one server per version).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from triage_ml.errors import RegistryError, TriageError

if TYPE_CHECKING:
    from triage_ml.settings import Settings

DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
DEFAULT_MAX_ROWS = 1000
DEFAULT_REQUEST_TIMEOUT = 30
TOKEN_ENV = "TRIAGE_SERVE_TOKEN"
# Long enough that guessing it over HTTP is hopeless.
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class ServeLimits:
    """What one request may cost the server.

    Attributes:
        max_request_bytes: the largest body accepted; a larger one is refused with 413 before it
            is read whole.
        max_rows: the most tickets in one request (413 past it).
        request_timeout: seconds from a request's first byte to its response (408 while the body
            is still arriving, 504 after).
    """

    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_rows: int = DEFAULT_MAX_ROWS
    request_timeout: int = DEFAULT_REQUEST_TIMEOUT

    def arguments(self) -> list[str]:
        """These limits as the server's command-line options."""
        return [
            "--max-request-bytes",
            str(self.max_request_bytes),
            "--max-rows",
            str(self.max_rows),
            "--request-timeout",
            str(self.request_timeout),
        ]


def read_token(token_file: Path | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The bearer token requests must carry: ``token_file``'s content, else ``TRIAGE_SERVE_TOKEN``.

    Returns:
        The token, or None when neither is given (or the variable is empty).

    Raises:
        TriageError: the file cannot be read, or the token is short or not one printable word.
    """
    if token_file is not None:
        try:
            token, source = token_file.read_text(encoding="utf-8").strip(), str(token_file)
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8 text"
            raise TriageError(f"cannot read the token file {token_file}: {reason}") from None
    else:
        token, source = environ.get(TOKEN_ENV, "").strip(), TOKEN_ENV
        if not token:
            return None
    if len(token) < MIN_TOKEN_LENGTH:
        raise TriageError(f"the token in {source} is shorter than {MIN_TOKEN_LENGTH} characters")
    if not (token.isascii() and token.isprintable()) or any(c.isspace() for c in token):
        raise TriageError(f"the token in {source} must be one word of printable ASCII")
    return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is only reachable from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def check_bind(host: str, allow_remote: bool, has_token: bool) -> str | None:
    """Refuse to serve the network unless asked to, and never then without a token.

    Returns:
        None on a loopback address, else the warning to print.

    Raises:
        TriageError: a non-loopback ``host`` without ``allow_remote``, or without a token.
    """
    if is_loopback(host):
        return None
    if not allow_remote:
        raise TriageError(
            f"--host {host} is not a loopback address, so other machines could use the model: "
            "pass --allow-remote to serve the network (a token is then required)"
        )
    if not has_token:
        raise TriageError(
            f"serving {host} needs a token: set {TOKEN_ENV} or pass --token-file "
            f"(at least {MIN_TOKEN_LENGTH} characters)"
        )
    return (
        f"serving the network on {host}: requests need the bearer token, but travel in clear "
        "text; put a TLS-terminating proxy in front"
    )


def model_uri(settings: Settings, which: str) -> str:
    """``models:/<name>@<alias>`` or ``models:/<name>/<version>`` for ``which``.

    Raises:
        RegistryError: the alias is unset (checked here, so the server does not start, then fail).
    """
    from triage_ml import registry  # MLflow: only once a server is about to start

    if which.isdigit():
        return f"models:/{settings.model_name}/{which}"
    if registry.alias_version(registry.client(settings), settings.model_name, which) is None:
        raise RegistryError(
            f"model '{settings.model_name}' has no '{which}' alias yet; "
            "run `triage-ml retrain` first"
        )
    return f"models:/{settings.model_name}@{which}"


def serve_command(
    uri: str,
    host: str,
    port: int,
    workers: int,
    limits: ServeLimits | None = None,
    token_file: Path | None = None,
    allow_remote: bool = False,
) -> list[str]:
    """The command that serves ``uri`` with :mod:`triage_ml.scoring.app`, in this environment.

    The token itself never goes on the command line: the server reads ``token_file``, or
    ``TRIAGE_SERVE_TOKEN`` from the environment it inherits.
    """
    command = [
        sys.executable,
        "-m",
        "triage_ml.scoring.app",
        "--model-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        *(limits or ServeLimits()).arguments(),
    ]
    if token_file is not None:
        command += ["--token-file", str(token_file)]
    return command + (["--allow-remote"] if allow_remote else [])


def serve_environment(settings: Settings) -> dict[str, str]:
    """The server's environment: the workspace's stores, and this environment's tools first on PATH.

    The model's own code may start tools from PATH, which a virtual
    environment that is not activated does not provide.
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
