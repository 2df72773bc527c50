"""A database error that quotes a ticket reaches Prefect without the ticket.

PostgreSQL reports a violated constraint with ``DETAIL: Failing row contains
(...)``, the whole row; the ingest flow's state message and logs must not
carry it, and the workspace keeps the full traceback for whoever runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from triage_ml import store, synth
from triage_ml.settings import Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]

PERSONAL = ("Jan Kowalczyk", "jan.kowalczyk@poczta-example.pl", "4539 1488 0343 6467")


def prefect_messages(flow_run_id: object) -> list[str]:
    """The flow run's parameters and state message, its task runs' messages and its log lines."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.client.schemas.sorting import TaskRunSort
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
            sort=TaskRunSort.ID_DESC,
            limit=200,
        )
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200, offset=0
        )
    return [
        json.dumps(run.parameters),
        str(run.state.message),
        *(str(task.state.message) for task in tasks),
        *(line.message for line in logs),
    ]


def test_a_failing_row_quoted_by_postgresql_stays_out_of_prefect(
    prefect_harness, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from triage_ml.flows._common import withheld_errors_log
    from triage_ml.flows.ingest import ingest_tickets

    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIAGE_DATABASE_URL", postgres_url)
    settings = Settings()
    settings.home.mkdir()
    with store.opened(postgres_url) as engine, engine.begin() as connection:
        # A rule of the database that the batch breaks: PostgreSQL's error quotes the row.
        connection.execute(
            sa.text("ALTER TABLE tickets ADD CONSTRAINT short_bodies CHECK (length(body) < 400)")
        )
    tickets = synth.generate(40, months=1, seed=3).tickets
    name, email, card = PERSONAL
    tickets.loc[5, "body"] = f"Card {card}, write to {email}. " + "Please help. " * 40 + name
    path = tmp_path / "tickets.csv"
    tickets.to_csv(path, index=False)

    state = ingest_tickets(path=str(path), settings=settings, return_state=True)

    assert state.is_failed()
    assert "IntegrityError" in str(state.message) and "kept out of Prefect" in str(state.message)
    seen = "\n".join(prefect_messages(state.state_details.flow_run_id))
    assert "withheld-errors.log" in seen
    assert [s for s in PERSONAL if s in seen] == []
    kept = withheld_errors_log(settings).read_text(encoding="utf-8")
    # What Prefect would have shown: PostgreSQL's DETAIL quotes the failing row's ticket text
    # (the store's engine already hides SQLAlchemy's bound parameters).
    assert "Failing row contains" in kept and "Failing row contains" not in seen
