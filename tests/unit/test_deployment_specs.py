"""The deployment specs: the issue's defaults, entrypoints that exist, one definition for both."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest

from triage_ml.flows import deployments
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit


def test_defaults_are_monthly_retraining_and_scoring_every_15_minutes() -> None:
    specs = {spec.flow_name: spec for spec in deployments.deployment_specs(Settings())}
    assert specs["monthly-retrain"].cron == "0 3 1 * *"
    assert specs["scheduled-scoring"].interval_minutes == 15
    assert specs["ingest-inbox"].interval_minutes == 5
    assert specs["monitor"].cron == "0 6 * * *"
    assert {spec.timezone for spec in specs.values()} == {"UTC"}
    assert {spec.concurrency_limit for spec in specs.values()} == {1}
    assert Settings().schedules.work_pool == "triage-ml"


def test_every_entrypoint_is_the_flow_it_names() -> None:
    for spec in deployments.deployment_specs(Settings()):
        path, function = spec.entrypoint.split(":")
        assert (deployments.project_root() / path).is_file()
        flow = getattr(
            importlib.import_module(path.removesuffix(".py").replace("/", ".")), function
        )
        assert flow.name == spec.flow_name


def test_schedules_carry_the_timezone_and_intervals_start_on_the_hour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIAGE_SCHEDULES__TIMEZONE", "America/New_York")
    specs = {spec.flow_name: spec for spec in deployments.deployment_specs(Settings())}
    cron = deployments.schedule(specs["monthly-retrain"])
    assert (cron.cron, cron.timezone) == ("0 3 1 * *", "America/New_York")
    interval = deployments.schedule(specs["scheduled-scoring"])
    assert interval.interval == timedelta(minutes=15) and interval.timezone == "America/New_York"
    assert (interval.anchor_date.hour, interval.anchor_date.minute) == (0, 0)


def test_collisions_are_queued_not_cancelled() -> None:
    spec = deployments.deployment_specs(Settings())[0]
    config = deployments.concurrency(spec)
    assert config.limit == 1 and config.collision_strategy.value == "ENQUEUE"
