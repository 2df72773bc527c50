"""Prefect that explains itself: the artifacts of real ingest and retrain runs, read back from the
Prefect API (links to MLflow and the Data Docs, tables, progress), a parameter that overrides the
workspace settings, and surveys ingested by their own flow."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from triage_ml import cli, synth
from triage_ml.settings import Settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import Artifact

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def artifacts_of(flow_run_id: Any) -> dict[str, Artifact]:
    """The artifacts of one flow run (its tasks' included), by key.

    Through the API's filter endpoint rather than ``read_artifacts``: on
    3.8.8 with the pinned fastapi the client's ``None`` for the task run
    filter is refused (422), and an empty task run filter leaves out every
    artifact made outside a task.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import Artifact

    query = {"artifacts": {"flow_run_id": {"any_": [str(flow_run_id)]}}, "limit": 50, "offset": 0}
    with get_client(sync_client=True) as client:
        found = client.request("POST", "/artifacts/filter", json=query).json()
    return {item["key"]: Artifact.model_validate(item) for item in found}


def flow_runs_named(name: str) -> int:
    """How many runs of the flow ``name`` the Prefect API holds."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[name])),
            sort=FlowRunSort.ID_DESC,
            limit=200,
        )
    return len(found)


@pytest.fixture(scope="module")
def runs(prefect_harness, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fresh workspace: an inbox drain (one good file, one bad), surveys, one retrain.

    The retrain's parameters override the workspace's candidates and folds.
    """
    from triage_ml.flows.ingest import ingest_inbox
    from triage_ml.flows.retrain import monthly_retrain

    home = tmp_path_factory.mktemp("explains") / "home"
    paths = synth.write(synth.generate(500, months=2, seed=11), home.parent / "data")
    (home / "inbox" / "tickets").mkdir(parents=True)
    (home / "inbox" / "tickets" / "history.csv").write_bytes(paths["tickets"].read_bytes())
    (home / "inbox" / "tickets" / "broken.csv").write_text("")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIAGE_HOME", str(home))
        patch.setenv("TRIAGE_TRAIN__CANDIDATES", '["complement_nb"]')
        patch.setenv("TRIAGE_TRAIN__PRIORITY_MODEL", "stacked")
        settings = Settings()
        inbox = ingest_inbox(settings=settings, return_state=True)
        surveys_before = flow_runs_named("ingest-surveys")
        assert cli.main(["ingest", "surveys", str(paths["surveys"]), "--json"]) == 0
        surveys_after = flow_runs_named("ingest-surveys")
        retrain = monthly_retrain(
            candidates=["baseline"], cv_folds=2, settings=settings, return_state=True
        )
    return {
        "settings": settings,
        "inbox": inbox,
        "retrain": retrain,
        "surveys_runs": surveys_after - surveys_before,
    }


def test_a_retrain_links_its_mlflow_run_and_tables_its_candidates(runs: dict[str, Any]) -> None:
    state = runs["retrain"]
    assert state.is_completed(), state.message
    record = state.result()
    held = artifacts_of(state.state_details.flow_run_id)

    assert {"promotion-decision", "mlflow-run", "candidates", "retrain-progress"} <= set(held)
    assert held["promotion-decision"].type == "markdown"
    link = held["mlflow-run"]
    assert link.type == "markdown"  # what Prefect 3.8 stores a link artifact as
    assert f"[MLflow run {record['run_id']}](http://127.0.0.1:5000/#/experiments/" in link.data
    assert link.data.endswith(f"/runs/{record['run_id']})")
    assert "make mlflow-ui" in link.description

    table = held["candidates"]
    rows = json.loads(table.data)
    assert table.type == "table"
    # The parameters overrode the workspace's candidates (complement_nb) and folds (3).
    assert [row["name"] for row in rows] == ["baseline"]
    assert rows[0]["folds"] == 2 and rows[0]["chosen"] == "yes"
    assert 0 < rows[0]["CV macro-F1"] <= 1 and rows[0]["standard error"] >= 0


def test_a_retrain_shows_its_progress_as_a_finished_progress_artifact(
    runs: dict[str, Any],
) -> None:
    progress = artifacts_of(runs["retrain"].state_details.flow_run_id)["retrain-progress"]

    assert progress.type == "progress"
    assert float(progress.data) == 100.0 and progress.description == "retrain: done"


def test_a_bad_parameter_fails_the_run_in_one_line(runs: dict[str, Any]) -> None:
    from triage_ml.flows.retrain import monthly_retrain

    state = monthly_retrain(min_delta=0.0, settings=runs["settings"], return_state=True)

    assert state.is_failed()
    assert str(state.message).count("\n") == 0
    assert "gate.min_delta: Input should be greater than 0" in str(state.message)


def test_the_inbox_run_tables_each_file_and_links_the_data_docs(runs: dict[str, Any]) -> None:
    state, settings = runs["inbox"], runs["settings"]
    assert state.is_completed(), state.message
    held = artifacts_of(state.state_details.flow_run_id)

    rows = json.loads(held["ingest-inbox"].data)
    assert held["ingest-inbox"].type == "table"
    # Moved files are renamed <time>-<name>.
    assert {(row["file"].rsplit("-", 1)[-1], row["outcome"]) for row in rows} == {
        ("history.csv", "accepted"),
        ("broken.csv", "failed"),
    }
    index = settings.gx_root / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert index.is_file() and not (settings.gx_root / "gx").exists()
    assert f"]({index.as_uri()})" in held["data-docs"].data
    assert float(held["ingest-progress"].data) == 100.0


def test_surveys_are_ingested_by_their_own_flow(runs: dict[str, Any]) -> None:
    assert runs["surveys_runs"] == 1
