"""The scoring deployment's entry point picks the task runner from the settings of its machine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from triage_ml import store
from triage_ml.settings import Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def test_scheduled_scoring_runs_on_the_configured_dask_cluster(
    trained_workspace: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import LocalCluster

    from triage_ml.flows.score import scheduled_scoring

    copy = tmp_path / "store.db"
    shutil.copy(Path(trained_workspace.store_url.removeprefix("sqlite:///")), copy)
    with store.opened(f"sqlite:///{copy}") as engine, engine.begin() as conn:
        conn.execute(sa.delete(store.predictions))
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{copy}")
        monkeypatch.setenv("TRIAGE_SCORE_RUNNER", "dask")
        monkeypatch.setenv("TRIAGE_DASK_ADDRESS", cluster.scheduler_address)
        monkeypatch.setenv("TRIAGE_SCORE_PARTITION_ROWS", "600")
        summary = scheduled_scoring()
        prefixes = {name.split("-")[0] for name in cluster.scheduler.task_prefixes}
    assert summary["scored"] > 1000 and summary["partitions"] >= 2
    assert "score_partition" in prefixes  # the partitions ran on the cluster the settings named
