"""Pytest plugin: one real PostgreSQL server per test session, started and stopped by the suite.

Registered from ``tests/conftest.py`` (``pytest_plugins``). Tests ask for
``postgres_server`` (session scope) and call ``create_database()`` for a fresh
``postgresql+psycopg://`` URL, or use ``postgres_url`` for a database that is
dropped after the test. Tests are skipped only when no PostgreSQL binaries
exist at all; binaries that fail to start the server are an error.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import pgserver

_started: list[pgserver.PostgresServer] = []


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pgserver.PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 for the whole session (stopped at its end)."""
    bin_dir = pgserver.find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL tests skipped: no PostgreSQL binaries (pg_ctl/initdb) on PATH "
            "or in /usr/lib/postgresql/*/bin"
        )
    server = pgserver.start(bin_dir)
    _started.append(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: pgserver.PostgresServer) -> Iterator[str]:
    """A fresh empty database for one test, dropped afterwards."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how long the PostgreSQL start cost, so a slow machine shows up in the output."""
    for server in _started:
        terminalreporter.write_line(
            f"postgresql: test server from {server.bin_dir} on 127.0.0.1:{server.port} "
            f"started in {server.started_seconds:.1f} s"
        )
