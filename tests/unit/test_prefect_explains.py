"""Prefect that explains itself, in plain functions: typed parameters and their overrides, the
links and tables the flows publish, and make targets that send no telemetry."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from triage_ml.errors import ConfigError
from triage_ml.flows import reports
from triage_ml.flows._common import update_progress, with_overrides
from triage_ml.flows.retrain import STAGES, known_candidates, monthly_retrain, stage
from triage_ml.ingest import expectations
from triage_ml.registry import runs
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TELEMETRY_OFF = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


# ---- typed parameters of monthly-retrain ---------------------------------------------------


def test_the_retrain_flow_offers_typed_documented_parameters() -> None:
    from prefect.utilities.callables import parameter_schema

    schema = parameter_schema(monthly_retrain).model_dump()
    properties = schema["properties"]

    assert list(properties)[:8] == [
        "candidates",
        "cv_folds",
        "cv_rows",
        "priority_model",
        "abstain_rate",
        "min_delta",
        "absolute_floor",
        "require_significance",
    ]
    assert "settings" in properties and not schema.get("required")
    listed = properties["candidates"]["anyOf"][0]
    assert listed["type"] == "array" and "complement_nb" in listed["items"]["enum"]
    assert properties["priority_model"]["anyOf"][0]["enum"] == ["auto", "stacked", "baseline"]
    assert properties["cv_folds"]["anyOf"][0]["type"] == "integer"
    assert properties["min_delta"]["anyOf"][0]["type"] == "number"
    assert all(properties[name].get("description") for name in list(properties)[:8])


def test_overrides_replace_only_the_values_given_and_keep_the_rest() -> None:
    settings = Settings(home=Path("/tmp/unused"))

    train = with_overrides(settings, "train", cv_folds=5, priority_model="baseline", cv_rows=None)
    gate = with_overrides(train, "gate", min_delta=0.02, require_significance=False)

    assert (gate.train.cv_folds, gate.train.priority_model) == (5, "baseline")
    assert gate.train.cv_rows == settings.train.cv_rows
    assert (gate.gate.min_delta, gate.gate.require_significance) == (0.02, False)
    assert gate.gate.absolute_floor == settings.gate.absolute_floor
    assert settings.train.cv_folds == 3  # the workspace's settings are left as they were
    assert with_overrides(settings, "gate", min_delta=None) is settings


@pytest.mark.parametrize(
    ("section", "values", "expected"),
    [
        ("train", {"cv_folds": 1}, "train.cv_folds: Input should be greater than or equal to 2"),
        ("train", {"abstain_rate": 0.7}, "train.abstain_rate: Input should be less than 0.5"),
        ("gate", {"min_delta": 0.0}, "gate.min_delta: Input should be greater than 0 (got 0.0)"),
    ],
)
def test_an_override_out_of_range_is_one_line(
    section: str, values: dict[str, float], expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        with_overrides(Settings(home=Path("/tmp/unused")), section, **values)

    assert str(raised.value).startswith(expected) and "\n" not in str(raised.value)


def test_candidate_names_are_checked_before_any_work() -> None:
    assert known_candidates(None) is None
    assert known_candidates(["logreg", "ensemble"]) == ("logreg", "ensemble")
    for bad, said in ((["logreg", "xgboost"], "['xgboost']"), ([], "none given")):
        with pytest.raises(ConfigError, match=re.escape(said)) as raised:
            known_candidates(bad)  # type: ignore[arg-type]
        assert "complement_nb" in str(raised.value)


# ---- progress --------------------------------------------------------------------------------


def test_retrain_stages_report_their_place_among_all_stages() -> None:
    from triage_ml import progress

    heard: list[tuple[str, float, float]] = []
    with progress.listening(lambda *report: heard.append(report)):
        stage("snapshot")
        stage("register and gate")

    assert heard == [
        ("retrain: snapshot", 0, len(STAGES)),
        ("retrain: register and gate", len(STAGES) - 1, len(STAGES)),
    ]


def test_the_progress_artifact_gets_a_percentage_within_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from triage_ml.flows import _common

    sent: list[tuple[float, str]] = []
    monkeypatch.setattr(
        _common,
        "update_progress_artifact",
        lambda _id, share, description: sent.append((share, description)),
    )
    for completed, total in ((3, 12), (12, 12), (15, 12), (0, 0)):
        update_progress("artifact-id", "scoring", completed, total)  # type: ignore[arg-type]

    assert [share for share, _ in sent] == [25.0, 100.0, 100.0, 0.0]


# ---- links and tables ------------------------------------------------------------------------


def test_a_local_store_links_to_the_make_mlflow_ui_address() -> None:
    url, where = runs.ui_url("sqlite:////tmp/home/mlflow.db", "7", "abc123")

    assert url == "http://127.0.0.1:5000/#/experiments/7/runs/abc123"
    assert "make mlflow-ui" in where


def test_a_tracking_server_links_to_itself_without_its_credentials() -> None:
    url, where = runs.ui_url("https://ds:s3cret@mlflow.internal:8443/", "1", "r9")

    assert url == "https://mlflow.internal:8443/#/experiments/1/runs/r9"
    assert "s3cret" not in url + where and "mlflow.internal:8443" in where


def test_the_candidates_table_has_one_row_per_candidate_and_marks_the_choice() -> None:
    pool = [
        SimpleNamespace(name="baseline", mean=0.71234, standard_error=0.01111, fold_scores=(1, 2)),
        SimpleNamespace(name="logreg", mean=0.75678, standard_error=0.00999, fold_scores=(1, 2)),
    ]

    rows = reports.candidates_table(pool, "logreg")

    assert rows == [
        {
            "name": "baseline",
            "CV macro-F1": 0.7123,
            "standard error": 0.0111,
            "folds": 2,
            "chosen": "",
        },
        {
            "name": "logreg",
            "CV macro-F1": 0.7568,
            "standard error": 0.01,
            "folds": 2,
            "chosen": "yes",
        },
    ]


def test_the_inbox_table_has_one_row_per_file_with_the_same_columns() -> None:
    report = {
        "files": 2,
        "processed": [
            {
                "kind": "tickets",
                "file": "/in/processed/a.csv",
                "status": "accepted",
                "stored": 9,
                "quarantined": 1,
                "skipped": 0,
            }
        ],
        "failed": [{"kind": "surveys", "file": "/in/failed/b.csv", "reason": "empty file"}],
    }

    rows = reports.inbox_table(report)

    assert [row["outcome"] for row in rows] == ["accepted", "failed"]
    assert rows[0]["stored"] == 9 and rows[1]["reason"] == "empty file"
    assert len({tuple(row) for row in rows}) == 1  # every row has the same columns


def test_the_scoring_table_has_a_row_per_partition_and_the_total() -> None:
    parts = [
        SimpleNamespace(scored=10, needs_review=2, chunks=1),
        SimpleNamespace(scored=8, needs_review=1, chunks=2),
    ]

    rows = reports.scoring_table(parts, [(None, "T10"), ("T10", None)])

    assert [row["partition"] for row in rows] == ["(start, T10]", "(T10, end]", "all"]
    assert rows[-1] == {"partition": "all", "scored": 18, "needs review": 3, "chunks": 3}


def test_the_data_docs_index_is_inside_the_workspace_gx_folder_not_a_second_gx(
    tmp_path: Path,
) -> None:
    gx_root = tmp_path / "gx"

    expectations.open_context(gx_root)

    assert (gx_root / "great_expectations.yml").is_file()
    assert not (gx_root / "gx").exists()
    assert expectations.docs_index(gx_root) == (
        gx_root / "uncommitted" / "data_docs" / "local_site" / "index.html"
    )


# ---- make targets ----------------------------------------------------------------------------

SERVER_COMMANDS = re.compile(r"prefect server start|mlflow ui|mlflow/server\.sh|mlflow server")


def make_targets() -> dict[str, str]:
    """Each target of the Makefile with its recipe."""
    targets: dict[str, str] = {}
    current = None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if match := re.match(r"^([A-Za-z][\w-]*):(?!=)", line):
            current = match.group(1)
            targets[current] = ""
        elif current and line.startswith("\t"):
            targets[current] += line + "\n"
        elif line and not line.startswith("#"):
            current = None
    return targets


def test_every_target_that_starts_a_server_or_ui_runs_without_telemetry(tmp_path: Path) -> None:
    targets = make_targets()
    servers = {name for name, recipe in targets.items() if SERVER_COMMANDS.search(recipe)}
    assert {"prefect-ui", "mlflow-ui", "mlflow-server"} <= servers
    assert "$(MAKE)" in targets["ui"] and "mlflow-ui" in targets["ui"]
    for name in servers | {"ui"}:
        assert not re.search(r"unexport|DO_NOT_TRACK=|TELEMETRY=|ANALYTICS_ENABLED=", targets[name])

    # What a recipe's commands see, whatever the caller's environment says.
    probe = tmp_path / "probe.mk"
    probe.write_text("telemetry-probe:\n\t@env\n")
    caller = {**os.environ, "DO_NOT_TRACK": "0", "MLFLOW_DISABLE_TELEMETRY": "false"}
    caller["PREFECT_SERVER_ANALYTICS_ENABLED"] = "true"
    done = subprocess.run(
        ["make", "--no-print-directory", "-f", "Makefile", "-f", str(probe), "telemetry-probe"],
        cwd=ROOT,
        env=caller,
        capture_output=True,
        text=True,
        check=True,
    )
    seen = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert {name: seen.get(name) for name in TELEMETRY_OFF} == TELEMETRY_OFF


def test_the_cli_turns_telemetry_off_before_prefect_and_mlflow_load(tmp_path: Path) -> None:
    # In a child process: prepare_environment sets process-wide variables (Prefect's logging).
    script = (
        "import json, os; from triage_ml.cli.runner import prepare_environment;"
        "from triage_ml.settings import Settings; prepare_environment(Settings());"
        f"print(json.dumps({{k: os.environ.get(k) for k in {sorted(TELEMETRY_OFF)}}}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY_OFF}
    env["TRIAGE_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )

    assert json.loads(done.stdout.strip().splitlines()[-1]) == TELEMETRY_OFF
