"""The scoring flow partitions its work; on Dask worker processes it gives what one process gives."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from flows.score import score
from triage_ml import store
from triage_ml.settings import Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def stored_predictions(settings: Settings) -> pd.DataFrame:
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        frame = pd.read_sql(sa.select(store.predictions).order_by(store.predictions.c.ticket_id), conn)
    return frame.drop(columns=["scored_at"]).reset_index(drop=True)


def test_dask_workers_score_exactly_what_one_process_scores(trained_workspace: Settings, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    original = Path(trained_workspace.store_url.removeprefix("sqlite:///"))
    monkeypatch.setenv("TRIAGE_SCORE_PARTITION_ROWS", "500")
    monkeypatch.setenv("TRIAGE_SCORE_CHUNK_ROWS", "200")
    results = {}
    for runner in ("threads", "dask"):
        copy = tmp_path / f"{runner}.db"
        shutil.copy(original, copy)
        monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{copy}")
        monkeypatch.setenv("TRIAGE_SCORE_RUNNER", runner)
        settings = Settings()
        summary = score(settings)
        assert summary["partitions"] == 3 and summary["scored"] > 1000
        assert score(settings)["scored"] == 0  # nothing twice
        results[runner] = stored_predictions(settings)
    assert len(results["threads"]) == summary["scored"]
    pd.testing.assert_frame_equal(results["threads"], results["dask"])


def test_partitions_on_threads_load_the_model_once_and_leave_sys_modules_clean(trained_workspace: Settings) -> None:
    import sys
    import threading

    from triage_ml import registry

    registry._cached_model.cache_clear()
    version = registry.alias_version(registry.client(trained_workspace), trained_workspace.model_name, "champion")
    models: list[object] = []
    threads = [threading.Thread(target=lambda: models.append(registry.process_model(trained_workspace, version))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(models) == 2 and models[0] is models[1]
    assert "dbutils" not in sys.modules  # MLflow's loader stand-in is gone
