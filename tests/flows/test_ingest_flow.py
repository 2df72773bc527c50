"""The ingest flow with batch checks: a bad batch is stored, blocked, reported, not trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from triage_ml import cli, store, synth
from triage_ml.training import dataset

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def ingest(capsys: pytest.CaptureFixture[str], path: Path) -> dict:
    assert cli.main(["ingest", "tickets", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_bad_batches_are_blocked_not_lost(
    prefect_harness, workspace_store, capsys, tmp_path: Path
) -> None:
    history = synth.generate(800, months=3, seed=4)
    good = synth.write(history, tmp_path / "good")["tickets"]
    first = ingest(capsys, good)
    assert first["status"] == "accepted" and first["batch_failures"] == []
    assert Path(first["data_docs"]).is_file()

    empty = history.tickets.head(200).assign(ticket_id=lambda f: "E" + f["ticket_id"])
    empty.loc[empty.index[:180], ["subject", "body"]] = ""
    unknown = history.tickets.iloc[200:400].assign(ticket_id=lambda f: "U" + f["ticket_id"])
    unknown.loc[unknown.index[::2], "category"] = "Gardening"
    results = {}
    for name, frame in (("empty", empty), ("unknown", unknown)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        results[name] = ingest(capsys, tmp_path / f"{name}.csv")

    assert results["empty"]["status"] == "blocked"
    assert any(
        line.startswith("body:") and "empty" in line for line in results["empty"]["batch_failures"]
    )
    assert (
        results["empty"]["read"]
        == results["empty"]["stored"]
        + results["empty"]["quarantined"]
        + results["empty"]["skipped"]
    )
    assert results["unknown"]["status"] == "blocked" and results["unknown"]["stored"] == 200
    assert any("category" in line for line in results["unknown"]["batch_failures"])

    engine = store.connect(workspace_store.store_url)
    snapshot = dataset.load_snapshot(engine)
    assert snapshot.batch_ids == (first["batch_id"],)  # both bad batches are out of training
    assert "Gardening" not in set(snapshot.frame["category"])

    assert (
        cli.main(
            [
                "batches",
                "accept",
                results["unknown"]["batch_id"],
                "--reason",
                "new category",
                "--json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert "Gardening" in set(dataset.load_snapshot(engine).frame["category"])
    engine.dispose()


def test_a_sql_source_password_never_reaches_the_prefect_api(
    prefect_harness, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd
    import sqlalchemy as sa
    from prefect.client.orchestration import get_client

    from triage_ml.flows.ingest import ingest_tickets
    from triage_ml.ingest import ColumnMapping, sources
    from triage_ml.settings import Settings

    helpdesk = sa.create_engine(postgres_url)
    pd.DataFrame(
        {"ticket_id": ["P1", "P2"], "body": ["refund", "login"], "category": ["Billing", "Account"]}
    ).to_sql("helpdesk", helpdesk, index=False)
    helpdesk.dispose()
    # The test server trusts loopback connections, so it accepts the password and ignores it.
    real_url = postgres_url.replace("://postgres@", "://postgres:s3cret-pw@", 1)
    opened: list[str] = []
    database_url = sources.database_url
    monkeypatch.setattr(
        sources, "database_url", lambda url: opened.append(url) or database_url(url)
    )

    (tmp_path / "home").mkdir()
    state = ingest_tickets(
        None,
        ColumnMapping(),
        sql=sources.SqlSource(real_url, table="helpdesk"),
        settings=Settings(home=tmp_path / "home"),
        return_state=True,
    )

    assert state.is_completed() and state.result()["stored"] == 2
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert "s3cret-pw" not in json.dumps(run.parameters)
    assert run.parameters["sql"]["url"] == real_url.replace("s3cret-pw", "***")
    assert opened == [real_url]  # the flow itself read with the real URL
