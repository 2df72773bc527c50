"""The temporary Prefect server a command starts, found again after its command is gone.

Prefect starts its temporary ("ephemeral") API server lazily, as a child
process (``python -m uvicorn ... prefect.server.api.server:create_app``), and
stops it at interpreter exit. A command killed by a signal it cannot catch
(``kill -9``) never reaches that exit, and the server lives on. Prefect keeps
the child's pid on an object it creates itself and does not publish, so a
server is recognised by what it carries instead: its command line, its
``PREFECT_HOME`` (this workspace's), and :data:`OWNER_ENV`, the pid of the
command that started it, which :func:`mark_owner` puts in the environment the
server inherits. A server whose parent is no longer that command is an orphan.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

OWNER_ENV = "TRIAGE_ML_CLI_PID"
SERVER_APP = "prefect.server.api.server:create_app"
STOP_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Server:
    """A temporary Prefect server of one workspace."""

    process: psutil.Process
    owner: int | None

    def orphaned(self) -> bool:
        """Whether the command that started it is gone (its child is re-parented on exit)."""
        try:
            return self.owner is not None and self.process.ppid() != self.owner
        except psutil.NoSuchProcess:
            return False


def mark_owner() -> None:
    """Record this process as the owner of any server Prefect starts from now on."""
    os.environ[OWNER_ENV] = str(os.getpid())


def workspace_servers(prefect_home: Path | None) -> list[Server]:
    """The temporary Prefect servers running with ``prefect_home`` as their PREFECT_HOME.

    Args:
        prefect_home: the workspace's Prefect home; None for every workspace's.
    """
    wanted = prefect_home.resolve() if prefect_home is not None else None
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if SERVER_APP not in (proc.info.get("cmdline") or []):
            continue
        try:
            env = proc.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if env.get("PREFECT__SERVER_EPHEMERAL") != "1":
            continue
        if wanted is not None and Path(env.get("PREFECT_HOME", "")).resolve() != wanted:
            continue
        owner = env.get(OWNER_ENV)
        found.append(Server(proc, int(owner) if owner and owner.isdigit() else None))
    return found


def stop(servers: list[Server]) -> list[int]:
    """Terminate ``servers``, kill those still alive after a short wait; their pids."""
    processes = [server.process for server in servers]
    for proc in processes:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(processes, timeout=STOP_WAIT_SECONDS)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    return [proc.pid for proc in processes]


def reap_orphans(prefect_home: Path) -> list[int]:
    """Stop the servers of this workspace whose command was killed; their pids."""
    orphans = [server for server in workspace_servers(prefect_home) if server.orphaned()]
    pids = stop(orphans)
    for pid in pids:
        log.warning("stopped a Prefect server (pid %d) left running by a killed command", pid)
    return pids


def stop_own_servers() -> list[int]:
    """Stop the servers this process started and Prefect has not stopped; their pids."""
    me = os.getpid()
    return stop([server for server in workspace_servers(None) if server.owner == me])


@functools.cache
def stop_own_servers_at_exit() -> None:
    """Stop this process's servers at exit, once Prefect's own exit hook has run.

    Prefect registers its stop only after starting the server; a signal in
    between would leave it running. Exit hooks run last-registered first, and
    this one is registered before Prefect starts anything, so it runs after
    Prefect's (which also flushes the run's last logs to that server).
    Cached: registered once per process.
    """
    atexit.register(stop_own_servers)
