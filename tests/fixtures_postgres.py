"""Pytest plugin: one real PostgreSQL server per test session, from pytest-postgresql.

Registered from ``tests/conftest.py`` (``pytest_plugins``). pytest-postgresql's
``postgresql_proc`` factory starts the server (initdb, ``pg_ctl start`` on a
free loopback port, stop and clean-up at the end of the session); this module
adds what the suite needs on top: ``postgres_server`` (session scope), whose
``create_database()`` gives a fresh ``postgresql+psycopg://`` URL, and
``postgres_url``, a database dropped after its test.

PostgreSQL refuses to run as root, so the factory's ``pg_ctl`` is
``tests/pg_ctl_wrapper.sh``, which runs the real one as the ``postgres`` user
when we are root. Tests are skipped only when no PostgreSQL binaries exist at
all; binaries that fail to start the server are an error.
"""

from __future__ import annotations

import glob
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_postgresql import factories
from pytest_postgresql.executors import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor

WRAPPER = Path(__file__).resolve().with_name("pg_ctl_wrapper.sh")
PG_CTL_ENV = "TRIAGE_TEST_PG_CTL"  # the real pg_ctl, for the wrapper

# Speed over durability: the data directory is thrown away after the session.
FAST_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
}

postgres_proc = factories.postgresql_proc(
    executable=str(WRAPPER),
    host="127.0.0.1",
    port=None,
    user="postgres",
    postgres_options=" ".join(f"-c {name}={value}" for name, value in FAST_SETTINGS.items()),
)


def find_pg_ctl(path: str | None = None, pattern: str = "/usr/lib/postgresql/*/bin") -> Path | None:
    """The real ``pg_ctl``: on ``path`` (default PATH) first, then the newest under ``pattern``.

    Returns:
        Its resolved path, or None when no PostgreSQL server binaries exist at all.
    """
    on_path = shutil.which("pg_ctl", path=path)
    if on_path:
        return Path(os.path.realpath(on_path))
    versions = [Path(folder) / "pg_ctl" for folder in glob.glob(pattern)]
    installed = [pg_ctl for pg_ctl in versions if pg_ctl.exists()]
    return max(installed, key=_version, default=None)


def _version(pg_ctl: Path) -> float:
    try:
        return float(pg_ctl.parent.parent.name)
    except ValueError:
        return 0.0


@dataclass
class PostgresServer:
    """The session's server (``proc``: pytest-postgresql's executor); trust authentication."""

    proc: PostgreSQLExecutor
    pg_ctl: Path
    started_seconds: float

    @property
    def port(self) -> int:
        """The server's TCP port on 127.0.0.1."""
        return int(self.proc.port)

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"{driver}://{self.proc.user}@{self.proc.host}:{self.port}/{database}"

    def _janitor(self, database: str) -> DatabaseJanitor:
        return DatabaseJanitor(
            user=self.proc.user, host=self.proc.host, port=self.port, dbname=database
        )

    def create_database(self, prefix: str = "t") -> str:
        """Create a fresh, uniquely named, empty database; its ``postgresql+psycopg://`` URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}".lower()
        self._janitor(name).init()
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (from :meth:`create_database`), closing its connections."""
        self._janitor(url.rsplit("/", 1)[1]).drop()


_started: list[PostgresServer] = []


@pytest.fixture(scope="session")
def real_pg_ctl() -> Iterator[Path]:
    """The real ``pg_ctl``, named to the wrapper; skips the session's PostgreSQL tests if none."""
    pg_ctl = find_pg_ctl()
    if pg_ctl is None:
        pytest.skip(
            "PostgreSQL tests skipped: no PostgreSQL binaries (pg_ctl) on PATH "
            "or in /usr/lib/postgresql/*/bin"
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PG_CTL_ENV, str(pg_ctl))
        yield pg_ctl


@pytest.fixture(scope="session")
def postgres_server(real_pg_ctl: Path, request: pytest.FixtureRequest) -> PostgresServer:
    """A PostgreSQL server on 127.0.0.1 for the whole session (stopped at its end)."""
    began = time.perf_counter()
    proc = request.getfixturevalue("postgres_proc")
    server = PostgresServer(proc, real_pg_ctl, time.perf_counter() - began)
    _started.append(server)
    return server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh empty database for one test, dropped afterwards."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how long the PostgreSQL start cost, so a slow machine shows up in the output."""
    for server in _started:
        terminalreporter.write_line(
            f"postgresql: test server ({server.pg_ctl}, via pytest-postgresql) on "
            f"127.0.0.1:{server.port} started in {server.started_seconds:.1f} s"
        )
