"""Shared fixtures. Every test runs against temporary stores, never ~/.prefect or ./mlruns."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import store, synth
from triage_ml.settings import Settings

pytest_plugins = ["fixtures_prefect_server", "fixtures_postgres"]

SHARED_SAMPLE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "tickets-sample" / "tickets.csv"
)


@pytest.fixture(scope="session")
def shared_sample() -> pd.DataFrame:
    """The realistic tickets sample beside the repository; tests skip where it is absent."""
    if not SHARED_SAMPLE.exists():
        pytest.skip(f"{SHARED_SAMPLE} is absent")
    return pd.read_csv(SHARED_SAMPLE)


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep Prefect, MLflow and matplotlib state inside a session temp dir."""
    root = tmp_path_factory.mktemp("env")
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith(("TRIAGE_", "PREFECT_", "MLFLOW_"))]:
        del os.environ[key]
    os.environ.update(
        {
            "PREFECT_HOME": str(root / "prefect"),
            "MPLCONFIGDIR": str(root / "mpl"),
            "DO_NOT_TRACK": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
            "TRIAGE_HOME": str(root / "default-home"),
            # Every retraining in the suite fits its heads with naive Bayes, a fraction of
            # logistic regression's cost; the heads' quality with the default classifier is
            # tests/model/test_heads_quality.py's and benchmarks/bench_heads.py's to measure.
            "TRIAGE_HEADS__CANDIDATE": "complement_nb",
        }
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh TRIAGE_HOME for one test; flows read it from the environment."""
    home = tmp_path / "home"
    monkeypatch.setenv("TRIAGE_HOME", str(home))
    return Settings()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty ticket store: a SQLite file, or a fresh database on the test PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    """An empty ticket store, once on SQLite and once on PostgreSQL."""
    eng = store.connect(store_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def small_data() -> synth.SyntheticData:
    """A small synthetic history shared by read-only tests."""
    return synth.generate(600, months=3, seed=11)


@pytest.fixture
def tickets_csv(tmp_path: Path, small_data: synth.SyntheticData) -> Path:
    """The small history written as CSV files; returns the tickets file."""
    return synth.write(small_data, tmp_path / "data")["tickets"]


# Tiers in the order their files are handed to the pytest-xdist workers (`--dist loadfile` sends
# files in collection order): the slow ones with real servers first, the many quick unit files
# last, so that neither worker sits idle while the other runs a long file at the end.
TIER_ORDER: tuple[str, ...] = ("ui", "flows", "model", "data", "unit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the collected tests by tier (:data:`TIER_ORDER`), keeping the order within a tier."""

    def tier(item: pytest.Item) -> int:
        folder = Path(str(item.fspath)).parent.name
        return TIER_ORDER.index(folder) if folder in TIER_ORDER else len(TIER_ORDER)

    items.sort(key=tier)
