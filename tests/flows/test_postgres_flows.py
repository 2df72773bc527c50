"""The flows with the ticket store on a real PostgreSQL server: retrain, promotion, scoring, audit.

They share one PostgreSQL-backed trained workspace (``pg_trained_workspace``),
built by the same ingest + retrain as the SQLite ``trained_workspace``.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from triage_ml import cli, registry, store
from triage_ml.flows.retrain import monthly_retrain
from triage_ml.flows.score import score
from triage_ml.registry import gate, promotion
from triage_ml.settings import Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def audit(settings: Settings) -> list[dict]:
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        return store.recent_decisions(conn, 100)


def count(settings: Settings, table: sa.Table) -> int:
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        return store.count_rows(conn, table)


def test_the_trained_workspace_keeps_its_tickets_in_postgresql(
    pg_trained_workspace: Settings,
) -> None:
    settings = pg_trained_workspace
    assert settings.store_url.startswith("postgresql+psycopg://")
    assert not (settings.home / "triage.db").exists()
    assert count(settings, store.tickets) == 1200
    first = audit(settings)[-1]
    assert (first["action"], first["challenger_version"], first["promoted"]) == ("gate", "1", True)


def test_a_retrain_that_passes_the_gate_moves_the_champion(
    pg_trained_workspace: Settings, monkeypatch
) -> None:
    settings, client = pg_trained_workspace, registry.client(pg_trained_workspace)
    before = registry.aliases(client, settings)
    promote = gate.Decision(
        True, "promoted: forced by the test", {"category_macro_f1": 0.99}, None, None
    )
    monkeypatch.setattr(promotion, "judge", lambda *args: promote)
    record = monthly_retrain()
    after = registry.aliases(client, settings)
    assert (
        record["promote"]
        and record["champion_after"] == record["challenger_version"] != before.champion
    )
    assert (after.champion, after.previous) == (record["challenger_version"], before.champion)
    newest = audit(settings)[0]
    assert (newest["action"], newest["challenger_version"], newest["promoted"]) == (
        "gate",
        after.champion,
        True,
    )


def test_the_scoring_flow_scores_new_tickets_once(pg_trained_workspace: Settings, capsys) -> None:
    settings = pg_trained_workspace
    new_tickets = settings.home.parent / "data" / "new_tickets.csv"
    assert cli.main(["ingest", "tickets", str(new_tickets), "--unlabeled", "--json"]) == 0
    capsys.readouterr()
    already = count(settings, store.predictions)
    summary = score(settings)
    assert summary["scored"] >= 300 and summary["scored"] + already == count(
        settings, store.predictions
    )
    assert score(settings)["scored"] == 0  # nothing twice


def test_forced_promotion_and_rollback_from_the_cli(pg_trained_workspace: Settings, capsys) -> None:
    settings, client = pg_trained_workspace, registry.client(pg_trained_workspace)
    champion = registry.aliases(client, settings).champion
    other = client.copy_model_version(
        f"models:/{settings.model_name}/{champion}", settings.model_name
    ).version
    assert cli.main(["promote", str(other), "--force", "--reason", "hotfix", "--json"]) == 0
    assert cli.main(["rollback", "--reason", "hotfix misroutes", "--json"]) == 0
    outputs = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [(o["champion_before"], o["champion"]) for o in outputs] == [
        (champion, str(other)),
        (str(other), champion),
    ]
    assert [r["action"] for r in audit(settings)[:2]] == [promotion.ROLLBACK, promotion.FORCED]
