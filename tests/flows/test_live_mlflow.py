"""Live quality in MLflow: time series on the model version's run, logged once per window.

A real workspace (SQLite tracking store and file artifacts under tmp_path) with a registered
version whose run has finished, as the monitor finds it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from triage_ml import registry
from triage_ml.monitoring import live
from triage_ml.settings import Settings
from triage_ml.store.tables import CORRECTED, REVIEW, SUGGEST

pytestmark = pytest.mark.flows

WEEK1 = pd.Timestamp("2026-03-02T10:00:00Z")  # a Monday


def week_rows(start: pd.Timestamp, n: int, labeled: int, wrong: int) -> pd.DataFrame:
    """``n`` predictions of version 1 in the week of ``start``; ``labeled`` have a final label,
    the first ``wrong`` of them corrected to another class."""
    truth = ["Billing"] * labeled + [np.nan] * (n - labeled)
    truth[:wrong] = ["Refund"] * wrong
    return pd.DataFrame(
        {
            "ticket_id": [f"{start.date()}-{i}" for i in range(n)],
            "model_version": "1",
            "category": "Billing",
            "priority": "low",
            "tier": [REVIEW if i % 4 == 0 else SUGGEST for i in range(n)],
            "needs_review": False,
            "created_at": start,
            "scored_at": start,
            "final_category": truth,
            "final_category_source": [CORRECTED if pd.notna(t) else np.nan for t in truth],
            "final_priority": np.nan,
            "final_priority_source": np.nan,
        }
    )


@pytest.fixture
def version_run(workspace: Settings) -> tuple[MlflowClient, str]:
    """A registered version 1 whose (finished) run carries no live metric yet."""
    client = registry.use_workspace(workspace)
    experiment = client.get_experiment_by_name(workspace.experiment_name)
    run = client.create_run(experiment.experiment_id, run_name="retrain 2026-02")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(workspace.model_name)
    version = client.create_model_version(
        workspace.model_name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    return client, client.get_model_version(workspace.model_name, version.version).run_id


def steps(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float, int]]:
    history = client.get_metric_history(run_id, key)
    return sorted((m.step, round(m.value, 6), m.timestamp) for m in history)


def test_windows_become_steps_logged_once(
    version_run: tuple[MlflowClient, str], tmp_path: Path
) -> None:
    client, run_id = version_run
    week2 = WEEK1 + pd.Timedelta(days=7)
    frame = pd.concat([week_rows(WEEK1, 40, 32, 8), week_rows(week2, 40, 10, 0)])
    first = live.live_quality(frame, "week", 30).versions["1"]

    logged = live.log_to_mlflow(client, run_id, first)
    step1, step2 = first[0].step, first[1].step
    start_ms = int(pd.Timestamp("2026-03-02", tz="UTC").timestamp() * 1000)
    assert steps(client, run_id, "live_category_accuracy") == [(step1, 0.75, start_ms)]
    assert [s for s, _, _ in steps(client, run_id, "live_labeled")] == [step1, step2]
    assert steps(client, run_id, "live_category_precision.Billing")[0][:2] == (step1, 0.75)
    assert steps(client, run_id, "live_review_rate")[1][:2] == (step2, 0.25)
    keys = set(client.get_run(run_id).data.metrics)
    assert all(key.startswith("live_") for key in keys)
    assert not any("2026-03" in key for key in keys)  # no ticket id reaches a metric name
    assert logged == sum(len(live.window_metrics(w)) for w in first)

    assert live.log_to_mlflow(client, run_id, first) == 0
    assert len(client.get_metric_history(run_id, "live_labeled")) == 2

    # Labels arrive for week 2 and a week 3 begins: only what was never logged is added.
    later = pd.concat(
        [
            frame.iloc[:40],
            week_rows(week2, 40, 40, 4),
            week_rows(week2 + pd.Timedelta(days=7), 5, 0, 0),
        ]
    )
    second = live.live_quality(later, "week", 30).versions["1"]
    added = live.log_to_mlflow(client, run_id, second)
    assert [s for s, _, _ in steps(client, run_id, "live_category_accuracy")] == [step1, step2]
    assert steps(client, run_id, "live_category_accuracy")[1][1] == 0.9
    assert [v for _, v, _ in steps(client, run_id, "live_labeled")] == [32.0, 10.0, 0.0]
    assert added == len(live.window_metrics(second[2])) + len(
        set(live.window_metrics(second[1])) - set(live.window_metrics(first[1]))
    )

    artifacts = [a.path for a in client.list_artifacts(run_id, "monitor")]
    assert artifacts == ["monitor/live_quality.png"]
    png = Path(client.download_artifacts(run_id, "monitor/live_quality.png", str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
