"""The suite's PostgreSQL plugin: where it finds pg_ctl, the root wrapper, fresh databases."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest

import fixtures_postgres
from fixtures_postgres import PostgresServer

pytestmark = pytest.mark.unit


def fake_pg_ctl(folder: Path) -> Path:
    folder.mkdir(parents=True)
    script = folder / "pg_ctl"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def test_no_binaries_anywhere_is_none(tmp_path: Path) -> None:
    found = fixtures_postgres.find_pg_ctl(
        path=str(tmp_path), pattern=str(tmp_path / "postgresql" / "*" / "bin")
    )
    assert found is None


def test_the_newest_installed_version_is_found_off_path(tmp_path: Path) -> None:
    for version in ("9.6", "13", "15"):
        fake_pg_ctl(tmp_path / "postgresql" / version / "bin")
    found = fixtures_postgres.find_pg_ctl(
        path=str(tmp_path / "empty"), pattern=str(tmp_path / "postgresql" / "*" / "bin")
    )
    assert found == tmp_path / "postgresql" / "15" / "bin" / "pg_ctl"


def test_pg_ctl_on_path_wins(tmp_path: Path) -> None:
    on_path = fake_pg_ctl(tmp_path / "bin")
    fake_pg_ctl(tmp_path / "postgresql" / "15" / "bin")
    found = fixtures_postgres.find_pg_ctl(
        path=str(tmp_path / "bin"), pattern=str(tmp_path / "postgresql" / "*" / "bin")
    )
    assert found == on_path


def test_the_wrapper_runs_pg_ctl_as_postgres_when_root_and_as_itself_otherwise() -> None:
    env = {**os.environ, fixtures_postgres.PG_CTL_ENV: "/usr/bin/id"}
    done = subprocess.run(
        [str(fixtures_postgres.WRAPPER), "-un"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("postgres" if os.geteuid() == 0 else os.environ["USER"])


def test_the_wrapper_skips_initdb_s_sync_of_a_throwaway_cluster() -> None:
    env = {**os.environ, fixtures_postgres.PG_CTL_ENV: "/bin/echo"}
    done = subprocess.run(
        [str(fixtures_postgres.WRAPPER), "initdb", "--pgdata", "/x"], env=env, capture_output=True
    )
    assert done.stdout.decode().split() == ["initdb", "--pgdata", "/x", "-o", "--no-sync"]


def test_the_wrapper_without_a_real_pg_ctl_fails_with_a_reason() -> None:
    env = {k: v for k, v in os.environ.items() if k != fixtures_postgres.PG_CTL_ENV}
    done = subprocess.run(
        [str(fixtures_postgres.WRAPPER), "--version"], env=env, capture_output=True, text=True
    )
    assert done.returncode != 0 and fixtures_postgres.PG_CTL_ENV in done.stderr


def database_exists(server: PostgresServer, name: str) -> bool:
    with psycopg.connect(server.url().replace("+psycopg", ""), autocommit=True) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return found.fetchone() is not None


def test_databases_are_fresh_and_dropped_with_their_connections(
    postgres_server: PostgresServer,
) -> None:
    first, second = postgres_server.create_database(), postgres_server.create_database("other")
    assert first != second and second.rsplit("/", 1)[1].startswith("other_")
    name = first.rsplit("/", 1)[1]
    open_connection = psycopg.connect(first.replace("+psycopg", ""))
    assert open_connection.execute("SHOW fsync").fetchone() == ("off",)
    postgres_server.drop_database(first)  # an open connection does not block the drop
    open_connection.close()
    assert not database_exists(postgres_server, name)
    postgres_server.drop_database(second)
