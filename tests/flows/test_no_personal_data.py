"""A retraining on tickets full of personal data leaves none of it where users of the tools look.

Real flows (ingest, retrain) on a real Prefect API and MLflow store; then
every MLflow artifact file (run, child runs, logged and registered model,
skops archives opened), param, tag and dataset, and every Prefect flow run
parameter, task run, state message, log line and artifact is searched for
each personal string and its fragments.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pandas as pd
import pytest

from triage_ml import synth
from triage_ml.settings import Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]

FAST_CANDIDATES = '["complement_nb"]'

# Five customers; each one's data is in many tickets, so the vocabulary's
# minimum document frequency alone would not keep it out.
CUSTOMERS: tuple[dict[str, str], ...] = (
    {
        "name": "Zbigniewa Wrzosek",
        "email": "zbigniewa.wrzosek77@pocztex-mail.pl",
        "phone": "+48 512 904 377",
        "card": "4539 1488 0343 6467",
        "iban": "PL61 1090 1014 0000 0712 1981 2874",
    },
    {
        "name": "Olufemi Thornbury",
        "email": "o.thornbury@quillfeather-co.uk",
        "phone": "(415) 555-0172",
        "card": "5500-0054-2301-9921",
        "iban": "GB33 BUKB 2020 1555 5555 55",
    },
    {
        "name": "Kristjana Vilhjalmsdottir",
        "email": "kristjana.vilhjalms@fjordpost.is",
        "phone": "+354 611 2847",
        "card": "3714 4963 5398 4310",
        "iban": "DE44 5001 0517 5407 3249 31",
    },
    {
        "name": "Ignatius Quarrendon",
        "email": "iquarrendon@brackenmoor-mail.net",
        "phone": "020 7946 0958",
        "card": "6011000990139424",
        "iban": "NL02 ABNA 0123 4567 89",
    },
    {
        "name": "Marisol Etxeberria",
        "email": "marisol_etx@zumarraga-post.es",
        "phone": "+34 612 345 678",
        "card": "4916 3389 0127 5543",
        "iban": "ES91 2100 0418 4502 0005 1332",
    },
)


def personal_strings() -> set[str]:
    """Every personal string, and each run of letters or digits in it, lowercased.

    Runs shorter than five characters are left out: four digits of a card
    are not personal alone, and short strings turn up by chance in binary files.
    """
    needles: set[str] = set()
    for customer in CUSTOMERS:
        for value in customer.values():
            needles |= {value, re.sub(r"[ \-]", "", value), *re.split(r"[^0-9A-Za-z]+", value)}
    return {n.lower() for n in needles if len(n) >= 5}


def with_personal_data(tickets: pd.DataFrame) -> pd.DataFrame:
    """Every ticket quotes its customer's card, IBAN, e-mail and phone, and ends in a signature."""
    out = tickets.copy()
    bodies = []
    for i, body in enumerate(out["body"].tolist()):
        c = CUSTOMERS[i % len(CUSTOMERS)]
        bodies.append(
            f"My card {c['card']} was charged; refund to IBAN {c['iban']}. "
            f"Write to {c['email']} or call {c['phone']}.\n\n{body}\n\n"
            f"Best regards,\n{c['name']}\n{c['phone']}"
        )
    out["body"] = bodies
    return out


def found_in(text: str, needles: set[str]) -> set[str]:
    lowered = text.lower()
    return {n for n in needles if n in lowered}


def file_texts(root: Path) -> Iterator[tuple[str, str]]:
    """(name, content) of every file under ``root``, zip archives (skops) opened member by member.

    Binary content is decoded as Latin-1, so every byte is searched.
    """
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    yield f"{path}!{member}", archive.read(member).decode("latin-1")
        else:
            yield str(path), path.read_bytes().decode("latin-1")


def mlflow_texts(settings: Settings, tmp: Path) -> Iterator[tuple[str, str]]:
    """Params, tags, datasets and artifact files of every run, logged model and model version."""
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    client = mlflow.MlflowClient(settings.tracking_uri, settings.registry_uri)
    experiment = client.get_experiment_by_name(settings.experiment_name)
    for run in client.search_runs([experiment.experiment_id]):
        yield f"run {run.info.run_id} data", json.dumps(run.data.to_dictionary())
        inputs = [
            {"name": d.dataset.name, "source": d.dataset.source, "schema": d.dataset.schema}
            for d in run.inputs.dataset_inputs
        ]
        yield f"run {run.info.run_id} inputs", json.dumps(inputs)
        where = tmp / "runs" / run.info.run_id
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(where))
        yield from file_texts(where)
    for model in mlflow.search_logged_models(
        experiment_ids=[experiment.experiment_id], output_format="list"
    ):
        yield f"logged model {model.model_id}", json.dumps([model.params, model.tags])
        where = tmp / "models" / model.model_id
        mlflow.artifacts.download_artifacts(
            artifact_uri=model.artifact_location, dst_path=str(where)
        )
        yield from file_texts(where)
    for version in client.search_model_versions(f"name='{settings.model_name}'"):
        yield f"version {version.version}", json.dumps([version.tags, version.description])
        where = tmp / "versions" / str(version.version)
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{settings.model_name}/{version.version}", dst_path=str(where)
        )
        yield from file_texts(where)


def prefect_texts(flow_run_ids: list[UUID]) -> Iterator[tuple[str, str]]:
    """Parameters, state messages, task runs, log lines and artifacts of the given flow runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    runs = FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids))
    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs(flow_run_filter=runs, sort=FlowRunSort.ID_DESC, limit=200):
            yield f"flow run {run.name}", json.dumps([run.parameters, run.state.message])
        tasks = client.read_task_runs(flow_run_filter=runs, sort=TaskRunSort.ID_DESC, limit=200)
        for task in tasks:
            yield f"task run {task.name}", json.dumps([task.name, task.state.message])
        logs, offset = LogFilter(flow_run_id=LogFilterFlowRunId(any_=flow_run_ids)), 0
        while page := client.read_logs(log_filter=logs, offset=offset, limit=200):
            yield from ((f"log of {line.flow_run_id}", line.message) for line in page)
            offset += len(page)
        # The REST API itself: the client's filter joins every artifact with a task run,
        # which leaves out those a flow publishes outside its tasks.
        response = client.request(
            "POST",
            "/artifacts/filter",
            json={
                "artifacts": {"flow_run_id": {"any_": [str(i) for i in flow_run_ids]}},
                "sort": "ID_DESC",
                "limit": 200,
                "offset": 0,
            },
        )
        response.raise_for_status()
        for artifact in response.json():
            yield f"artifact {artifact['key']}", json.dumps(artifact)


@pytest.fixture(scope="module")
def trained_on_personal_data(
    prefect_harness, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, list[UUID]]:
    """A workspace that ingested and retrained on tickets full of personal data; its flow runs."""
    from triage_ml.flows.ingest import ingest_tickets
    from triage_ml.flows.retrain import monthly_retrain

    root = tmp_path_factory.mktemp("personal")
    tickets = with_personal_data(synth.generate(900, months=3, seed=23).tickets)
    path = root / "tickets.csv"
    tickets.to_csv(path, index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIAGE_HOME", str(root / "home"))
        patch.setenv("TRIAGE_TRAIN__CANDIDATES", FAST_CANDIDATES)
        settings = Settings()
        settings.home.mkdir()
        ingested = ingest_tickets(path=str(path), settings=settings, return_state=True)
        retrained = monthly_retrain(settings=settings, return_state=True)
    assert ingested.is_completed() and retrained.is_completed(), retrained.message
    assert ingested.result()["stored"] > 0.9 * len(tickets)
    return settings, [s.state_details.flow_run_id for s in (ingested, retrained)]


def test_the_data_is_full_of_personal_strings() -> None:
    # The search would find them: the same function on the raw tickets does.
    tickets = with_personal_data(synth.generate(20, months=1, seed=1).tickets)
    raw = {value.lower() for customer in CUSTOMERS for value in customer.values()}
    assert raw <= found_in(tickets.to_csv(), personal_strings())


def test_no_mlflow_artifact_param_or_tag_holds_personal_data(
    trained_on_personal_data: tuple[Settings, list[UUID]], tmp_path: Path
) -> None:
    settings, _ = trained_on_personal_data
    needles = personal_strings()
    searched = {name: found_in(text, needles) for name, text in mlflow_texts(settings, tmp_path)}
    assert any(name.endswith("input_example.json") for name in searched)
    assert any(name.endswith("serving_input_example.json") for name in searched)
    assert any("misclassified_examples" in name for name in searched)
    assert any(".skops!" in name for name in searched)  # the fitted pipelines, opened
    assert {name: hits for name, hits in searched.items() if hits} == {}


def test_no_prefect_parameter_state_log_or_artifact_holds_personal_data(
    trained_on_personal_data: tuple[Settings, list[UUID]],
) -> None:
    _, flow_runs = trained_on_personal_data
    needles = personal_strings()
    searched = [(name, found_in(text, needles)) for name, text in prefect_texts(flow_runs)]
    assert sum(name.startswith("log of") for name, _ in searched) > 10
    assert sum(name.startswith("task run") for name, _ in searched) > 10
    assert {"artifact ingest-tickets", "artifact promotion-decision"} <= {n for n, _ in searched}
    assert [(name, hits) for name, hits in searched if hits] == []
