"""Unit tests of the retraining stages that need no fitted model."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import mlflow
import numpy as np
import pandas as pd
import pytest

from triage_ml import registry
from triage_ml.registry import status
from triage_ml.settings import Settings
from triage_ml.training import candidates, dataset, retrain, selection

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One MLflow workspace for this module's run tests (a fresh one costs seconds of migrations).

    Each test finds its own runs under its own parent run.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIAGE_HOME", str(tmp_path_factory.mktemp("tracked") / "home"))
        yield Settings()


def test_lineage_records_the_digest_of_every_row_and_the_schema_without_text() -> None:
    part = pd.DataFrame(
        {
            "ticket_id": [f"t{i}" for i in range(30)],
            "subject": ["Refund"] * 30,
            "body": ["Charged twice."] * 30,
            "category": ["Billing", "Sales", "Returns"] * 10,
            "customer_ltv": [float(i) for i in range(30)],
        }
    )
    data = retrain.lineage_dataset(part, "tickets-training", schema_rows=10)
    assert data.name == "tickets-training" and data.digest == dataset.frame_digest(part)
    # The schema comes from the first rows; the digest still covers the rows after them.
    assert (
        retrain.lineage_dataset(part.head(10), "tickets-training", schema_rows=10).digest
        != data.digest
    )
    assert data.schema.input_names() == ["ticket_id", "category", "customer_ltv"]


def test_a_candidate_is_logged_as_a_child_run_with_its_fold_scores(tracked: Settings) -> None:
    # The CV time is not part of Scored; the flow measures it and the child run records it.
    client = registry.use_workspace(tracked)
    scored = selection.Scored("logreg", {"C": 3.0}, None, (0.7, 0.9), 2, np.empty((0, 0)))
    with mlflow.start_run(run_name="parent") as parent:
        retrain.log_candidate(scored, parent.info.run_id, 1.5)
    (child,) = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert child.data.tags["candidate"] == "logreg" and child.data.params == {"C": "3.0"}
    assert child.data.tags["git_sha"] == registry.git_sha()
    assert child.data.metrics == pytest.approx(
        {
            "cv_category_macro_f1": 0.8,
            "cv_category_macro_f1_se": 0.1,
            "cv_category_macro_f1_fold_0": 0.7,
            "cv_category_macro_f1_fold_1": 0.9,
            "cv_settings_tried": 2.0,
            "cv_macro_f1_mean": 0.8,
            "cv_macro_f1_std_error": 0.1,
            "cv_seconds": 1.5,
            "fit_seconds": 1.5,
        }
    )


def test_a_child_run_opened_in_a_worker_thread_lasts_as_long_as_its_fit(
    tracked: Settings,
) -> None:
    client = registry.use_workspace(tracked)

    def fit(parent_run_id: str) -> None:
        with retrain.candidate_run("logreg", parent_run_id):
            time.sleep(0.3)

    with mlflow.start_run(run_name="parent") as parent, ThreadPoolExecutor(1) as pool:
        pool.submit(fit, parent.info.run_id).result()
    (child,) = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert child.info.end_time - child.info.start_time >= 300
    assert child.info.run_name == "candidate-logreg" and child.info.status == "FINISHED"


def test_a_fit_that_fails_ends_its_child_run_as_failed(tracked: Settings) -> None:
    client = registry.use_workspace(tracked)
    with (
        mlflow.start_run(run_name="parent") as parent,
        pytest.raises(ValueError),
        retrain.candidate_run("lightgbm", parent.info.run_id),
    ):
        raise ValueError("no fit")
    (child,) = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert child.info.status == "FAILED"


def test_child_params_are_the_searched_keys_with_the_chosen_values() -> None:
    (spec,) = candidates.category_specs(["complement_nb"])[1:]
    rng = np.random.default_rng(0)
    y = np.array(["a", "b"] * 20)
    matrix = rng.random((40, 5)) + (y == "a")[:, None]
    folds = selection.make_folds(y, 2, 100, 0, False)
    scored = selection.cross_validate(spec, matrix, folds, 0)
    assert set(scored.params) == set(candidates.CATEGORY_GRIDS["complement_nb"]) == {"alpha"}
    assert scored.params["alpha"] in candidates.CATEGORY_GRIDS["complement_nb"]["alpha"]


def test_the_parent_gets_configuration_and_the_childrens_metric_names(
    tracked: Settings,
) -> None:
    client = registry.use_workspace(tracked)
    chosen = selection.Scored("logreg", {"C": 3.0}, None, (0.7, 0.9), 2, np.empty((0, 0)))
    with mlflow.start_run(run_name="parent") as parent:
        retrain.log_configuration(tracked)
        retrain.log_comparable_metrics(
            chosen, {"category_macro_f1": 0.75}, {"fit_seconds_total": 4.0}
        )
    run = client.get_run(parent.info.run_id)
    assert run.data.params["candidate"] == "logreg" and run.data.params["candidate.C"] == "3.0"
    assert run.data.params["gate.min_delta"] == str(tracked.gate.min_delta)
    assert "penalty" not in str(run.data.params)
    metrics = run.data.metrics
    assert metrics["cv_category_macro_f1"] == pytest.approx(0.8)
    assert metrics["test_category_macro_f1"] == 0.75 and metrics["fit_seconds"] == 4.0


def test_status_lists_parents_of_both_namings_and_no_children(tracked: Settings) -> None:
    registry.use_workspace(tracked)
    december = datetime(2026, 12, 6, tzinfo=UTC)
    with mlflow.start_run(run_name="monthly-retrain"):
        pass
    with (
        mlflow.start_run(run_name=registry.run_name(12, december)) as parent,
        mlflow.start_run(run_name="candidate-logreg", nested=True),
    ):
        pass
    listed = status.recent_runs(tracked)
    # The other tests' parents are named "parent": not retraining runs.
    assert len(listed) == 2 and listed[0]["run_id"] == parent.info.run_id


def test_the_input_example_is_made_up_whatever_the_tickets() -> None:
    tickets = pd.DataFrame(
        {
            "subject": ["Refund to jan.kowalczyk@poczta-example.pl"],
            "body": ["Card 4539 1488 0343 6467, call +48 512 904 377.\nRegards,\nJan Kowalczyk"],
            "customer_ltv": [10],
            "ticket_id": ["t1"],
        }
    )
    example = registry.input_example(tickets)
    assert list(example.columns) == ["subject", "body", "customer_ltv"]
    assert len(example) == 2 and example["customer_ltv"].dtype == float
    text = example.to_json()
    assert not any(s in text for s in ("kowalczyk", "4539", "512 904", "Jan"))
    assert example.equals(registry.input_example(tickets.assign(body="other")))
    assert list(registry.input_example().columns) == [
        "subject",
        "body",
        "channel",
        "customer_tier",
        "customer_ltv",
        "language",
        "repeat_contacts",
    ]


def test_figures_reach_mlflow_rounded_to_four_places(tracked: Settings) -> None:
    client = registry.use_workspace(tracked)
    with mlflow.start_run(run_name="rounding") as run:
        registry.runs.log_metrics({"category_macro_f1": 0.746993801, "fit_seconds": 4.652508})
    assert client.get_run(run.info.run_id).data.metrics == {
        "category_macro_f1": 0.747,
        "fit_seconds": 4.6525,
    }
