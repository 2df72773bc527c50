"""The scoring flow partitions its work; worker processes (a pool, Dask) give what threads give."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import store
from triage_ml.flows.score import score
from triage_ml.settings import Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def stored_predictions(settings: Settings) -> pd.DataFrame:
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        frame = pd.read_sql(
            sa.select(store.predictions).order_by(store.predictions.c.ticket_id), conn
        )
    return frame.drop(columns=["scored_at"]).reset_index(drop=True)


def use_small_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Score in partitions of at most 500 tickets, in chunks of 200.

    That makes 4 partitions of the trained workspace's tickets, two per worker.
    """
    monkeypatch.setenv("TRIAGE_SCORE_PARTITION_ROWS", "500")
    monkeypatch.setenv("TRIAGE_SCORE_CHUNK_ROWS", "200")


def use_store_copy(
    settings: Settings, directory: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> Settings:
    """Point TRIAGE_DATABASE_URL at a fresh copy of the workspace's unscored store; new settings."""
    copy = directory / f"{name}.db"
    shutil.copy(settings.store_url.removeprefix("sqlite:///"), copy)
    monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{copy}")
    return Settings()


@pytest.fixture(scope="module")
def scored_on_threads(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The predictions threads store, in small partitions: what every other runner must store."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("TRIAGE_HOME", str(trained_home))
        use_small_partitions(monkeypatch)
        settings = use_store_copy(
            Settings(), tmp_path_factory.mktemp("threads"), monkeypatch, "threads"
        )
        summary = score(settings)
        assert summary["partitions"] == 4 and summary["scored"] > 1000
        assert score(settings)["scored"] == 0  # nothing twice
        predictions = stored_predictions(settings)
    assert len(predictions) == summary["scored"]
    return predictions


@pytest.fixture
def small_partitions(trained_workspace: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The trained workspace, scored in small partitions (see use_small_partitions)."""
    use_small_partitions(monkeypatch)
    return trained_workspace


def test_dask_workers_score_exactly_what_threads_score(
    small_partitions: Settings,
    scored_on_threads: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIAGE_SCORE_RUNNER", "dask")
    settings = use_store_copy(small_partitions, tmp_path, monkeypatch, "dask")
    assert score(settings)["partitions"] == 4
    pd.testing.assert_frame_equal(stored_predictions(settings), scored_on_threads)


def test_a_process_pool_scores_what_threads_score_on_the_cli_s_one_temporary_server(
    small_partitions: Settings,
    scored_on_threads: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``triage-ml score`` without an API URL: the pool's workers report to its temporary server."""
    processes = use_store_copy(small_partitions, tmp_path, monkeypatch, "processes")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API")}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("triage-ml")), "score", "--json"],
        capture_output=True,
        env={**env, "TRIAGE_SCORE_RUNNER": "processes"},
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["partitions"] == 4
    assert done.stderr.count("Starting temporary server") == 1, done.stderr[-3000:]
    assert (
        done.stderr.count("Task run 'score_partition") == 4
    )  # the workers' runs, seen by the flow's server
    pd.testing.assert_frame_equal(stored_predictions(processes), scored_on_threads)


def test_workers_load_a_version_s_files_without_a_registry_client(
    trained_workspace: Settings, monkeypatch
) -> None:
    import mlflow
    import pandas as pd

    from triage_ml import registry
    from triage_ml.registry import versions

    client = registry.client(trained_workspace)
    version = registry.alias_version(client, trained_workspace.model_name, "champion")
    uri = registry.version_files(client, trained_workspace.model_name, version)
    expected = mlflow.pyfunc.load_model(f"models:/{trained_workspace.model_name}/{version}")
    versions._cached_model.cache_clear()

    def no_client(*args, **kwargs):
        raise AssertionError("a registry client was opened")

    monkeypatch.setattr(mlflow.tracking.client.MlflowClient, "__init__", no_client)
    model = registry.process_model(trained_workspace, uri)
    versions._cached_model.cache_clear()
    tickets = pd.DataFrame(
        {"subject": ["Charged twice"], "body": ["I was charged twice for my subscription"]}
    )
    assert (
        not uri.startswith("models:/") and model.metadata.model_uuid == expected.metadata.model_uuid
    )
    pd.testing.assert_frame_equal(
        pd.DataFrame(model.predict(tickets)), pd.DataFrame(expected.predict(tickets))
    )


def test_partitions_on_threads_load_the_model_once_and_leave_sys_modules_clean(
    trained_workspace: Settings,
) -> None:
    import sys
    import threading

    from triage_ml import registry
    from triage_ml.registry import versions

    versions._cached_model.cache_clear()
    version = registry.alias_version(
        registry.client(trained_workspace), trained_workspace.model_name, "champion"
    )
    models: list[object] = []
    uri = f"models:/{trained_workspace.model_name}/{version}"
    threads = [
        threading.Thread(
            target=lambda: models.append(registry.process_model(trained_workspace, uri))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(models) == 2 and models[0] is models[1]
    assert "dbutils" not in sys.modules  # MLflow's loader stand-in is gone
