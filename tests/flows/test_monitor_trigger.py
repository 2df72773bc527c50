"""The monitor starts the retraining deployment on a real Prefect server, once per cool-down.

The server is the session's ``prefect server start`` process (not the flow tests' harness),
talked to through ``temporary_settings``. Only the retraining deployment is registered, on
a work pool of this test's own, so no worker runs it: the test asserts the run exists.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from fixtures_prefect_server import PrefectServer
from triage_ml import store
from triage_ml.monitoring import actions
from triage_ml.monitoring.actions import Alert
from triage_ml.settings import MonitorSettings, ScheduleSettings, Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]

DRIFT = Alert("drift", "recent tickets drifted from the training data: channel (PSI 1.20)", {})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "home").mkdir()
    return Settings(
        home=tmp_path / "home",
        monitor=MonitorSettings(trigger="deployment", cooldown_hours=72),
        schedules=ScheduleSettings(work_pool="monitor-trigger-test"),
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[sa.Engine]:
    with store.opened(settings.store_url) as opened:
        yield opened


def register_retrain(settings: Settings) -> str:
    """Register the monthly-retrain deployment alone (on the test's pool); its id."""
    from triage_ml.flows import deployments

    pool = deployments.ensure_work_pool(settings.schedules.work_pool, None)
    [retrain] = [
        deployment
        for deployment in deployments.runner_deployments(settings, pool.name)
        if deployment.entrypoint.endswith(":monthly_retrain")
    ]
    return str(retrain.apply(work_pool_name=pool.name))


def runs_of(server: PrefectServer, deployment_id: str) -> list[dict]:
    query = {"deployments": {"id": {"any_": [deployment_id]}}}
    return server.api("POST", "/flow_runs/filter", query)


def test_the_deployment_trigger_creates_one_retraining_run_then_cools_down(
    prefect_server: PrefectServer,
    settings: Settings,
    engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        with monkeypatch.context() as patch:
            patch.setattr(actions, "RETRAIN_FLOW", "no-such-flow")
            missing = actions.trigger_retrain(engine, settings, [DRIFT], "1")
        deployment_id = register_retrain(settings)
        before = len(runs_of(prefect_server, deployment_id))
        started = actions.trigger_retrain(engine, settings, [DRIFT], "1")
        again = actions.trigger_retrain(engine, settings, [DRIFT], "1")

    assert not missing["triggered"] and missing["error"] == (
        "the deployment no-such-flow/triage-ml is not registered (run `triage-ml deploy`)"
    )
    assert started["triggered"] and started["mode"] == "deployment"
    run = prefect_server.api("GET", f"/flow_runs/{started['flow_run_id']}")
    assert run["deployment_id"] == deployment_id and "triggered-by-monitor" in run["tags"]
    assert run["state_type"] == "SCHEDULED"  # timeout=0: created, left to a worker
    assert not again["triggered"] and again["why"].startswith("cool-down until ")
    assert len(runs_of(prefect_server, deployment_id)) == before + 1

    with engine.connect() as conn:
        [row] = store.recent_decisions(conn)
    assert (row["action"], row["champion_version"], row["promoted"]) == (
        "retrain-triggered",
        "1",
        False,
    )
    details = json.loads(row["details"])
    assert details["flow_run_id"] == started["flow_run_id"]
    assert details["deployment"] == "monthly-retrain/triage-ml"
    assert row["reason"] == DRIFT.message


def test_a_new_labels_alert_alone_starts_nothing(settings: Settings, engine: sa.Engine) -> None:
    labels = Alert("new-labels", "feedback uses 1 label(s) the champion does not know: X", {})
    outcome = actions.trigger_retrain(engine, settings, [labels], "1")
    assert outcome == {
        "triggered": False,
        "mode": "deployment",
        "why": "no live-quality or drift alert",
    }
