"""One `error:` line, never a traceback: a locked store, an unexpected failure, --debug."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from triage_ml import cli, ingest, store
from triage_ml.cli import runner
from triage_ml.errors import StoreError
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture
def locked_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A migrated SQLite store that a second, real connection holds with BEGIN EXCLUSIVE."""
    path = tmp_path / "locked.db"
    store.connect(f"sqlite:///{path}").dispose()
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    # A short wait instead of the default 60 s; the URL's ?timeout= is the setting.
    monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{path}?timeout=0.2")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    yield path
    holder.rollback()
    holder.close()


@pytest.mark.parametrize("command", [["batches", "list"], ["quarantine", "list"], ["status"]])
def test_a_store_locked_past_its_wait_is_one_line_naming_it(
    locked_store: Path, capsys, command: list[str]
) -> None:
    assert cli.main(command) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(locked_store) in line and "locked" in line and "0.2 s" in line


def test_a_write_that_meets_the_lock_is_one_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tickets_csv: Path
) -> None:
    # BEGIN IMMEDIATE lets readers in: the store opens, and the lock is met by the
    # batch's first write, past the check on connect (it used to escape as a traceback).
    path = tmp_path / "busy.db"
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{path}?timeout=0.2")
    settings = Settings()
    engine = store.connect(settings.store_url)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match=r"stayed locked .* \(0\.2 s\)") as raised:
            ingest.ingest_configured(engine, settings, "tickets", tickets_csv)
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()
    assert str(path) in str(raised.value)
    with store.opened(settings.store_url) as after, after.connect() as conn:
        assert store.count_rows(conn, store.tickets) == 0  # nothing half-written


def test_the_lock_wait_defaults_to_a_minute(tmp_path: Path) -> None:
    engine = store.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as conn:
        timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    engine.dispose()
    assert timeout == 60_000


def test_an_unexpected_error_is_one_line_with_the_traceback_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # A store file that is not a database: SQLite's DatabaseError is no TriageError.
    home = tmp_path / "home"
    home.mkdir()
    (home / "triage.db").write_bytes(b"\x93 not a database " * 256)
    monkeypatch.setenv("TRIAGE_HOME", str(home))
    assert cli.main(["batches", "list"]) == 1
    line = one_error_line(capsys.readouterr().err)
    log = home / "logs" / "triage-ml.log"
    assert line.startswith("error: unexpected DatabaseError: ") and f"traceback in {log}" in line
    assert "Traceback (most recent call last)" in log.read_text()


def test_debug_prints_the_traceback_before_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "triage.db").write_bytes(b"\x93 not a database " * 256)
    monkeypatch.setenv("TRIAGE_HOME", str(home))
    assert cli.main(["--debug", "batches", "list"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Traceback (most recent call last)")
    assert err.splitlines()[-1].startswith("error: unexpected DatabaseError: ")


def test_an_unexpected_message_is_masked_and_cut() -> None:
    exc = RuntimeError(
        "row from jane.doe@example.com failed on postgresql://app:hunter2@db/prod " + "x" * 500
    )
    text = runner.safe_message(exc)
    assert "jane.doe" not in text and "hunter2" not in text
    assert "[EMAIL]" in text and "postgresql://app:***@db/prod" in text
    assert len(text) == runner.MESSAGE_CHARS
