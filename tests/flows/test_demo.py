"""The whole path, as `triage-ml demo` runs it: ingest -> retrain -> promote -> score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from mlflow import MlflowClient

from triage_ml import cli, registry, store
from triage_ml.settings import Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]

DEMO_ARGS = ["demo", "--tickets", "1500", "--months", "3", "--new-tickets", "200", "--json"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = cli.main(list(argv))
    out = capsys.readouterr().out.strip()
    return code, (json.loads(out) if code == 0 else {})


@pytest.fixture
def fast_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_TRAIN__CANDIDATES", '["complement_nb", "logreg", "ensemble"]')


def table_counts(settings: Settings) -> dict[str, int]:
    engine = sa.create_engine(settings.store_url)
    with engine.connect() as conn:
        counts = {
            t.name: store.count_rows(conn, t)
            for t in (
                store.tickets,
                store.feedback,
                store.surveys,
                store.predictions,
                store.decisions,
                store.batches,
            )
        }
    engine.dispose()
    return counts


def test_demo_twice_promotes_once_and_duplicates_nothing(
    prefect_harness, workspace, fast_candidates, capsys, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    code, first = run_cli(capsys, *DEMO_ARGS)
    assert code == 0
    assert first["retrain"]["promoted"] is True
    assert first["retrain"]["champion_version"] == first["retrain"]["challenger_version"] == "1"
    assert first["score"]["scored"] == 1700 and first["score"]["model_version"] == "1"
    assert 0.6 < first["retrain"]["challenger_metrics"]["category_macro_f1"] < 1.0
    after_first = table_counts(workspace)

    code, second = run_cli(capsys, *DEMO_ARGS)
    assert code == 0
    assert all(
        part["stored"] == 0 and part["skipped"] == part["read"]
        for part in second["ingest"].values()
    )
    # Same data: the champion learned from every test row, so nothing can judge the challenger.
    assert second["retrain"]["promoted"] is False
    assert "unseen rows failed: 0 of" in second["retrain"]["reason"]
    assert (
        second["retrain"]["champion_version"] == "1"
        and second["retrain"]["challenger_version"] == "2"
    )
    assert second["score"]["scored"] == 0
    after_second = table_counts(workspace)
    assert {k: v for k, v in after_second.items() if k not in ("decisions", "batches")} == {
        k: v for k, v in after_first.items() if k not in ("decisions", "batches")
    }
    assert after_second["decisions"] == 2

    client = MlflowClient(workspace.tracking_uri, workspace.registry_uri)
    assert registry.alias_version(client, workspace.model_name, "champion") == "1"
    rejected = client.get_model_version(workspace.model_name, "2")
    assert (
        rejected.tags["promotion.decision"] == "rejected"
        and "rejected" in rejected.tags["promotion.reason"]
    )
    parent = client.get_run(first["retrain"]["run_id"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(r.data.tags["candidate"] for r in children) == [
        "baseline",  # always a candidate, though the demo does not name it
        "complement_nb",
        "ensemble",
        "logreg",
    ]
    assert all("cv_macro_f1_mean" in r.data.metrics for r in children)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "evaluation")}
    assert {
        "evaluation/category_confusion_matrix.png",
        "evaluation/category_f1_per_class.png",
        "evaluation/priority_confusion_matrix.png",
        "evaluation/misclassified_examples.json",
    } <= artifacts
    assert parent.data.metrics["flow_seconds"] > parent.data.metrics["fit_seconds_total"] > 0
    assert {i.dataset.name for i in parent.inputs.dataset_inputs} == {
        "tickets-training",
        "tickets-test",
    }
    trained = client.download_artifacts(parent.info.run_id, "lineage/trained_ticket_ids.txt")
    assert len(Path(trained).read_text().split("\n")) == first["ingest"]["tickets"]["stored"]
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()

    code, status = run_cli(capsys, "status", "--json")
    assert code == 0 and status["champion"]["version"] == "1"
    # MLflow holds the figure rounded to 4 places; the result holds it whole.
    assert status["champion"]["metrics"]["category_macro_f1"] == pytest.approx(
        first["retrain"]["challenger_metrics"]["category_macro_f1"], abs=5e-5
    )
    assert [d["promoted"] for d in status["decisions"]] == [False, True]

    labeled = Path(workspace.home) / "demo-data" / "tickets.csv"
    code, evaluated = run_cli(capsys, "evaluate", str(labeled), "--json")
    assert code == 0 and evaluated["n"] == 1500 and evaluated["model_version"] == "1"
    assert 0.5 < evaluated["category"]["macro_f1"] <= 1.0 and "macro_f1" in evaluated["priority"]
