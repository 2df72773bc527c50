"""One Prefect test harness per session for every flow test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from triage_ml.settings import Settings

FAST_CANDIDATES = '["complement_nb"]'


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API (its own database) shared by the session's flow tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def trained_home(prefect_harness, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with a small labeled history and version 1 as champion, shared by the session.

    Its synthetic files, and 300 unlabeled ``new_tickets.csv``, are in ``<home>/../data``.
    """
    from flows.retrain import monthly_retrain
    from triage_ml import cli, synth

    home = tmp_path_factory.mktemp("trained") / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIAGE_HOME", str(home))
        patch.setenv("TRIAGE_TRAIN__CANDIDATES", FAST_CANDIDATES)
        paths = synth.write(synth.generate(1200, months=3, seed=5), home.parent / "data")
        synth.generate_unlabeled(300, seed=6).to_csv(home.parent / "data" / "new_tickets.csv", index=False)
        assert cli.main(["ingest", "tickets", str(paths["tickets"]), "--json"]) == 0
        assert monthly_retrain()["champion_after"] == "1"
    return home


@pytest.fixture
def trained_workspace(trained_home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The shared trained workspace, as the current TRIAGE_HOME of one test."""
    monkeypatch.setenv("TRIAGE_HOME", str(trained_home))
    monkeypatch.setenv("TRIAGE_TRAIN__CANDIDATES", FAST_CANDIDATES)
    return Settings()
