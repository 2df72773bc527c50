"""Running the API: one uvicorn process over the workspace's store and champion.

The champion is loaded (and verified) and the store opened and migrated before the
socket is bound, so a missing champion or an unreachable store ends ``triage-ml api
serve`` with one line instead of a server that fails on its first request. SIGTERM
stops the server gracefully and the command ends with 0; Ctrl-C does the same and ends
with 130. uvicorn's access log keeps the method, path and status of each request (ticket
ids are fine there), never a query string or a body.
"""

from __future__ import annotations

import copy
import gc
import logging
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from triage_ml.errors import TriageError
from triage_ml.settings import Settings

logger = logging.getLogger(__name__)

KEEP_ALIVE_SECONDS = 5
# How `api serve` tells its worker processes which config file the settings came from.
WORKER_CONFIG_ENV = "TRIAGE_API_WORKER_CONFIG"
# The folder where each worker process marks that it has started.
WORKER_STARTED_ENV = "TRIAGE_API_WORKERS_STARTED"
WORKER_APP = "triage_ml.api.server:worker_app"
ReadyCallback = Callable[[str, int, str], None]


class WithoutQuery(logging.Filter):
    """Drop the query string from uvicorn's access-log lines: the path says enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, its path cut at ``?``."""
        if isinstance(record.args, tuple) and len(record.args) == 5:
            address, method, path, version, status = record.args
            record.args = (address, method, str(path).split("?", 1)[0], version, status)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging config, its access lines without query strings, the API's INFO lines on."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"without_query": {"()": WithoutQuery}}
    config["handlers"]["access"]["filters"] = ["without_query"]
    # stdout is the command's result (one JSON object with --json): every log line is stderr's.
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["loggers"]["triage_ml"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (0 picks a free port).

    Raises:
        TriageError: the address cannot be bound (in use, not this machine's).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise TriageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def server_config(app: Any, settings: Settings, **options: Any) -> Any:
    """The uvicorn config of ``app``: connections bounded, short keep-alive, quiet headers."""
    import uvicorn

    return uvicorn.Config(
        app,
        limit_concurrency=settings.api.max_connections,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        log_config=log_config(),
        server_header=False,
        lifespan="off",
        **options,
    )


@contextmanager
def sigterm_ends_quietly() -> Iterator[None]:
    """After uvicorn's graceful stop on SIGTERM it raises SIGTERM again: let that end the run.

    Without this, the command's own handler would turn it into exit 143; a service manager's
    stop is a normal end (0). Ctrl-C keeps its meaning (130).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def announce_when_started(
    server: Any, host: str, port: int, champion: str, ready: ReadyCallback
) -> threading.Thread:
    """Start a thread that calls ``ready(host, port, champion)`` once ``server`` accepts."""

    def wait() -> None:
        while not server.started:
            if server.should_exit or not threading.main_thread().is_alive():
                return
            time.sleep(0.05)
        ready(host, port, champion)

    thread = threading.Thread(target=wait, name="api-ready", daemon=True)
    thread.start()
    return thread


def serve(
    settings: Settings, host: str, port: int, ready: ReadyCallback, config: Path | None = None
) -> dict[str, Any]:
    """Serve the API on ``host``:``port`` until stopped.

    Args:
        settings: the workspace.
        host: the address to bind (already checked by the caller).
        port: the port (0 picks a free one).
        ready: called with the bound host, port and champion version once requests are taken.
        config: the config file ``settings`` were read with; worker processes (``api.workers``
            above 1) read theirs from it and the environment, as the command did.

    Returns:
        What ran: host, port, champion version.

    Raises:
        TriageError: no champion, the store unreachable, the address unusable.
    """
    import uvicorn

    from triage_ml import registry, store
    from triage_ml.api import idempotency
    from triage_ml.api.app import create_app
    from triage_ml.api.triage import Triager

    # Bound first (cheap) so a port in use fails before the champion loads; nobody can
    # connect until uvicorn listens on it.
    with listening_socket(host, port) as sock:
        port = sock.getsockname()[1]
        triager = Triager(settings, registry.use_workspace(settings))
        triager.load()
        champion = triager.champion_version
        with store.opened(settings.store_url) as engine:
            keep = timedelta(hours=settings.api.idempotency_hours)
            idempotency.forget_expired(engine, store.utcnow(), keep)
            if settings.api.workers > 1:
                serve_in_workers(settings, sock, (host, port, champion), ready, config)
                return {"host": host, "port": port, "champion": champion}
            server = uvicorn.Server(server_config(create_app(settings, engine, triager), settings))
            warm_up(settings, engine, triager)
            settle_heap()
            announce_when_started(server, host, port, champion, ready)
            with sigterm_ends_quietly(), refreshed(triager, settings.api.model_refresh_seconds):
                run(server, sock)
    return {"host": host, "port": port, "champion": triager.champion_version}


def serve_in_workers(
    settings: Settings,
    sock: socket.socket,
    where: tuple[str, int, str],
    ready: ReadyCallback,
    config: Path | None,
) -> None:
    """Serve with ``api.workers`` processes accepting on ``sock``, until SIGTERM or Ctrl-C.

    One Python process answers on one core at a time (its GIL), so a busy API needs
    several. uvicorn's supervisor starts them (and replaces one that dies); each runs
    :func:`worker_app`. Rate limits are then counted per process.
    """
    from uvicorn.supervisors import Multiprocess

    with tempfile.TemporaryDirectory(prefix="triage-api-workers-") as started:
        os.environ[WORKER_CONFIG_ENV] = "" if config is None else str(config)
        os.environ[WORKER_STARTED_ENV] = started
        options = server_config(WORKER_APP, settings, factory=True, workers=settings.api.workers)
        announce_when_all_started(Path(started), settings.api.workers, where, ready)
        Multiprocess(options, sockets=[sock]).run()


def worker_app() -> Any:
    """uvicorn's factory in each worker process: the settings read as the command read them
    (environment and config file), the champion loaded and refreshed, the store opened."""
    from triage_ml import registry, store
    from triage_ml.api.app import create_app
    from triage_ml.api.triage import Triager

    config = os.environ.get(WORKER_CONFIG_ENV) or None
    settings = Settings.load(Path(config) if config else None)
    triager = Triager(settings, registry.use_workspace(settings))
    triager.load()
    # Alive as long as the worker: uvicorn ends the process when it stops serving.
    start_refreshing(triager, settings.api.model_refresh_seconds)
    engine = store.connect(settings.store_url)
    app = create_app(settings, engine, triager)
    warm_up(settings, engine, triager)
    settle_heap()
    # Seen by announce_when_all_started: this worker accepts from now on.
    (Path(os.environ[WORKER_STARTED_ENV]) / str(os.getpid())).touch()
    return app


def announce_when_all_started(
    started: Path, workers: int, where: tuple[str, int, str], ready: ReadyCallback
) -> threading.Thread:
    """Start a thread that calls ``ready`` once every worker has built its app.

    Not at the first one: clients that connected while the others still loaded the
    champion would keep their connections on that one worker.
    """

    def wait() -> None:
        while threading.main_thread().is_alive():
            if started.is_dir() and len(list(started.iterdir())) >= workers:
                ready(*where)
                return
            time.sleep(0.2)

    thread = threading.Thread(target=wait, name="api-ready", daemon=True)
    thread.start()
    return thread


@contextmanager
def refreshed(triager: Any, seconds: float) -> Iterator[None]:
    """Re-read the aliases on a thread of its own while the server runs.

    A promoted champion is then loaded before a request needs it, so no create pays for
    the load and ``/v1/health`` names the version that answers. Ticking at half the
    interval keeps the thread ahead of a request's own check.
    """
    stop = start_refreshing(triager, seconds)
    try:
        yield
    finally:
        stop.set()


def warm_up(settings: Settings, engine: Any, triager: Any) -> None:
    """Create, correct and close a made-up ticket, then roll it all back.

    A process's first requests otherwise paid for loading the contracts, compiling the
    statements and the model's first predictions: about a second, in which every request
    behind them queued (docs/benchmarks.md). Nothing is stored and nothing logged; a
    failure is a warning, and the server starts anyway.
    """
    from triage_ml import store
    from triage_ml.api import service
    from triage_ml.api.schemas import Status, TicketClose, TicketIn, TicketUpdate

    ticket_id, now = f"warm-up-{os.getpid()}-{time.time_ns()}", store.utcnow()
    category = min(triager.categories())
    logging.disable(logging.INFO)
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            body = "A made-up ticket that warms the server up; it is never stored."
            service.create_ticket(
                conn, settings, triager, TicketIn(ticket_id=ticket_id, body=body), now
            )
            change = TicketUpdate(status=Status.OPEN, category=category, agent_id="warm-up")
            service.update_ticket(conn, settings, triager, ticket_id, change, now)
            service.close_ticket(conn, settings, triager, ticket_id, TicketClose(), now)
            transaction.rollback()
    except Exception as exc:
        logger.warning("warm-up failed (%s); serving anyway", type(exc).__name__)
    finally:
        logging.disable(logging.NOTSET)


def settle_heap() -> None:
    """Put every object alive now (a loaded model's hundreds of thousands) out of the garbage
    collector's reach: a full collection over them took 0.23 s, a pause every request
    waiting at that moment shared (measured in docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()


def start_refreshing(triager: Any, seconds: float) -> threading.Event:
    """A daemon thread re-reading the aliases every ``seconds / 2``; set the event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds / 2):
            serving = (triager.champion_version, triager.challenger_version)
            triager.refresh_if_due()
            if (triager.champion_version, triager.challenger_version) != serving:
                settle_heap()

    threading.Thread(target=loop, name="api-model-refresh", daemon=True).start()
    return stop


def run(server: Any, sock: socket.socket) -> None:
    """Run ``server`` on ``sock`` until it stops; a failed start is one TriageError line."""
    try:
        server.run(sockets=[sock])
    except SystemExit as stopped:
        if stopped.code not in (0, None):
            raise TriageError("the API server failed to start (see the line above)") from None
