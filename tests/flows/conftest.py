"""One Prefect test harness per session for every flow test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from triage_ml.settings import Settings

FAST_CANDIDATES = '["complement_nb"]'
# The priority model pinned: choosing it by CV is tested in tests/unit and by the demo's test.
FAST_PRIORITY = "stacked"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API (its own database) shared by the session's flow tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def train_home(home: Path, database_url: str | None = None) -> Path:
    """Ingest a small labeled history into the workspace ``home``; retrain once (v1 is champion).

    Its synthetic files, and 300 unlabeled ``new_tickets.csv``, go to ``<home>/../data``.
    """
    from triage_ml import cli, synth
    from triage_ml.flows.retrain import monthly_retrain

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIAGE_HOME", str(home))
        patch.setenv("TRIAGE_TRAIN__CANDIDATES", FAST_CANDIDATES)
        patch.setenv("TRIAGE_TRAIN__PRIORITY_MODEL", FAST_PRIORITY)
        if database_url:
            patch.setenv("TRIAGE_DATABASE_URL", database_url)
        paths = synth.write(synth.generate(1200, months=3, seed=5), home.parent / "data")
        synth.generate_unlabeled(300, seed=6).to_csv(
            home.parent / "data" / "new_tickets.csv", index=False
        )
        assert cli.main(["ingest", "tickets", str(paths["tickets"]), "--json"]) == 0
        assert monthly_retrain()["champion_after"] == "1"
    return home


@pytest.fixture(scope="session")
def trained_home(prefect_harness, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with a small labeled history and version 1 as champion, shared by the session.

    Its synthetic files, and 300 unlabeled ``new_tickets.csv``, are in ``<home>/../data``.
    """
    return train_home(tmp_path_factory.mktemp("trained") / "home")


@pytest.fixture(scope="session")
def pg_trained_home(
    prefect_harness, postgres_server, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """Like ``trained_home``, with the ticket store in a PostgreSQL database: (home, database URL).

    One per session: the PostgreSQL flow tests share it, as the SQLite ones share ``trained_home``.
    """
    url = postgres_server.create_database("flows")
    return train_home(tmp_path_factory.mktemp("pg-trained") / "home", url), url


@pytest.fixture
def trained_workspace(trained_home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The shared trained workspace, as the current TRIAGE_HOME of one test."""
    monkeypatch.setenv("TRIAGE_HOME", str(trained_home))
    monkeypatch.setenv("TRIAGE_TRAIN__CANDIDATES", FAST_CANDIDATES)
    monkeypatch.setenv("TRIAGE_TRAIN__PRIORITY_MODEL", FAST_PRIORITY)
    return Settings()


@pytest.fixture
def pg_trained_workspace(
    pg_trained_home: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The shared PostgreSQL-backed trained workspace, as TRIAGE_HOME and TRIAGE_DATABASE_URL."""
    home, url = pg_trained_home
    monkeypatch.setenv("TRIAGE_HOME", str(home))
    monkeypatch.setenv("TRIAGE_DATABASE_URL", url)
    monkeypatch.setenv("TRIAGE_TRAIN__CANDIDATES", FAST_CANDIDATES)
    monkeypatch.setenv("TRIAGE_TRAIN__PRIORITY_MODEL", FAST_PRIORITY)
    return Settings()


@pytest.fixture(params=["sqlite", "postgresql"])
def workspace_store(
    request: pytest.FixtureRequest, workspace: Settings, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The fresh ``workspace``, its ticket store in SQLite (default) or new PostgreSQL database."""
    if request.param == "sqlite":
        return workspace
    monkeypatch.setenv("TRIAGE_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return Settings()
