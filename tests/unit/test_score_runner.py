"""The scoring flow's task runner and which workers get this process's temporary Prefect server."""

from __future__ import annotations

import pytest
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

from triage_ml.flows.score import api_shared_with_workers, task_runner
from triage_ml.scoring.startup import import_skops_first
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("runner", "address"), [("threads", None), ("dask", "tcp://scheduler.example:8786")]
)
def test_threads_and_a_remote_dask_cluster_get_no_loopback_server(
    runner: str, address: str | None, tmp_path
) -> None:
    with (
        temporary_settings(restore_defaults={PREFECT_API_URL}),
        api_shared_with_workers(Settings(home=tmp_path, score_runner=runner, dask_address=address)),
    ):
        assert get_current_settings().api.url is None


def test_an_api_url_already_set_is_left_alone(tmp_path) -> None:
    with (
        temporary_settings(updates={PREFECT_API_URL: "http://prefect.example:4200/api"}),
        api_shared_with_workers(Settings(home=tmp_path, score_runner="processes")),
    ):
        assert get_current_settings().api.url == "http://prefect.example:4200/api"


def test_pool_workers_run_the_skops_first_initializer(tmp_path) -> None:
    import subprocess
    import sys

    runner = task_runner(Settings(home=tmp_path, score_runner="processes"))
    assert runner._initializer is import_skops_first
    # What a fresh process has loaded after it: skops, and neither Prefect nor MLflow. (In a
    # pool worker Prefect's own initializer runs first and imports Prefect; MLflow comes after.)
    code = (
        "import sys; from triage_ml.scoring.startup import import_skops_first; "
        "import_skops_first(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'skops', 'prefect', 'mlflow'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "['skops']"
