"""Alias moves on a real MLflow registry and SQLite store: guard, audit, rollback, override."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from mlflow import MlflowClient

from triage_ml import registry, store
from triage_ml.errors import RegistryError, TriageError
from triage_ml.registry import gate, owners, promotion, recovery
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow registry for the module; every test uses its own model name."""
    return f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}"


@pytest.fixture
def settings(tracking_uri: str, tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path, mlflow_tracking_uri=tracking_uri, model_name=f"m-{uuid.uuid4().hex[:8]}"
    )


@pytest.fixture
def client(settings: Settings, tmp_path: Path) -> MlflowClient:
    """Three registered versions of the test's model (the registry only needs a source path)."""
    mlflow_client = registry.client(settings)
    mlflow_client.create_registered_model(settings.model_name)
    for _ in range(3):
        mlflow_client.create_model_version(settings.model_name, source=str(tmp_path))
    return mlflow_client


def audit_rows(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        return list(reversed(store.recent_decisions(conn, 100)))


def state(client: MlflowClient, settings: Settings) -> tuple[str | None, str | None]:
    now = registry.aliases(client, settings)
    return now.champion, now.previous


def test_forced_promotions_keep_the_replaced_champion_reachable(client, settings, engine) -> None:
    first = promotion.force_promote(client, engine, settings, "1", "bootstrap the registry")
    assert (first["champion_before"], first["champion"]) == (None, "1")
    promotion.force_promote(client, engine, settings, "2", "hotfix model")
    assert state(client, settings) == ("2", "1")
    rows = audit_rows(engine)
    assert [
        (r["action"], r["champion_version"], r["challenger_version"], r["promoted"]) for r in rows
    ] == [("force-promote", None, "1", True), ("force-promote", "1", "2", True)]
    assert rows[-1]["reason"] == "hotfix model" and json.loads(rows[-1]["details"])["actor"]
    assert (
        client.get_model_version(settings.model_name, "2").tags["promotion.decision"]
        == "force-promoted"
    )


def test_rollback_walks_back_one_champion_at_a_time(client, settings, engine) -> None:
    for version in ("1", "2", "3"):
        promotion.force_promote(client, engine, settings, version, f"step {version}")
    assert promotion.roll_back(client, engine, settings, "v3 misroutes billing")["champion"] == "2"
    assert state(client, settings) == ("2", "1")
    assert promotion.roll_back(client, engine, settings, "v2 too")["champion"] == "1"
    assert state(client, settings) == ("1", None)
    with pytest.raises(RegistryError, match="no 'previous-champion' version to roll back to"):
        promotion.roll_back(client, engine, settings, "once more")
    assert state(client, settings) == ("1", None)
    rollbacks = [r for r in audit_rows(engine) if r["action"] == "rollback"]
    assert [(r["champion_version"], r["challenger_version"]) for r in rollbacks] == [
        ("3", "2"),
        ("2", "1"),
    ]
    assert (
        client.get_model_version(settings.model_name, "3").tags["promotion.decision"]
        == "rolled-back"
    )


def test_rollback_never_offers_the_version_just_rolled_back_from(client, settings, engine) -> None:
    promotion.force_promote(client, engine, settings, "2", "a")
    promotion.force_promote(client, engine, settings, "1", "b")  # v1 replaced v2
    promotion.force_promote(client, engine, settings, "2", "c")  # v2 replaced v1
    promotion.roll_back(client, engine, settings, "v2 is bad")
    assert state(client, settings) == ("1", None)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c, e, s: promotion.roll_back(c, e, s, "why"), "has no champion to roll back"),
        (lambda c, e, s: promotion.force_promote(c, e, s, "9", "why"), "has no version 9"),
        (lambda c, e, s: promotion.force_promote(c, e, s, "1", "  "), "a reason is required"),
    ],
)
def test_bad_requests_are_one_line_errors_that_change_nothing(
    client, settings, engine, call, message
) -> None:
    with pytest.raises(TriageError, match=message):
        call(client, engine, settings)
    assert state(client, settings) == (None, None) and audit_rows(engine) == []


def test_promoting_the_champion_again_is_refused(client, settings, engine) -> None:
    promotion.force_promote(client, engine, settings, "1", "first")
    with pytest.raises(RegistryError, match="already the champion"):
        promotion.force_promote(client, engine, settings, "1", "again")
    assert len(audit_rows(engine)) == 1


def test_a_stale_expectation_moves_nothing(client, settings, engine) -> None:
    promotion.force_promote(client, engine, settings, "1", "first")
    with pytest.raises(promotion.ChampionMovedError, match="champion moved from None to 1"):
        promotion.guarded_move(
            engine,
            client,
            settings,
            None,
            lambda before: registry.promote_version(client, settings, "2", before),
            lambda before, after: {"action": "gate", "promoted": True, "reason": "x"},
        )
    assert state(client, settings) == ("1", None) and len(audit_rows(engine)) == 1


def test_a_failed_audit_write_puts_the_aliases_back(client, settings, engine, monkeypatch) -> None:
    promotion.force_promote(client, engine, settings, "1", "first")

    def broken(conn, row):
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(store, "record_decision", broken)
    with pytest.raises(sa.exc.OperationalError):
        promotion.force_promote(client, engine, settings, "2", "second")
    monkeypatch.undo()
    assert state(client, settings) == ("1", None) and len(audit_rows(engine)) == 1


def test_two_concurrent_promotions_exactly_one_wins(client, settings, engine, monkeypatch) -> None:
    promotion.force_promote(client, engine, settings, "1", "first")
    # Widen the race: each promotion pauses between reading the champion and
    # moving it. Without the alias lock both would see v1 and both would move.
    read_aliases = registry.aliases
    both_started = threading.Barrier(2, timeout=30)

    def slow_aliases(*args):
        seen = read_aliases(*args)
        threading.Event().wait(0.5)
        return seen

    monkeypatch.setattr(registry, "aliases", slow_aliases)
    decision = gate.Decision(
        True,
        "promoted: every check passed",
        {"category_macro_f1": 0.9},
        {"category_macro_f1": 0.8},
        (0.01, 0.05),
    )
    outcomes: dict[str, gate.Decision] = {}

    def retraining(version: str) -> None:
        registered = registry.RegisteredModel(
            settings.model_name, version, "models:/unused", f"run-{version}"
        )
        both_started.wait()
        outcomes[version] = promotion.apply_decision(
            client, engine, settings, decision, registered, "1"
        )[0]

    threads = [threading.Thread(target=retraining, args=(v,)) for v in ("2", "3")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    monkeypatch.undo()

    winners = [v for v, d in outcomes.items() if d.promote]
    assert len(outcomes) == 2 and len(winners) == 1
    loser = ({"2", "3"} - set(winners)).pop()
    assert "champion moved from 1 to" in outcomes[loser].reason
    assert state(client, settings) == (winners[0], "1")
    gate_rows = [r for r in audit_rows(engine) if r["action"] == "gate"]
    assert sorted((r["challenger_version"], r["promoted"]) for r in gate_rows) == sorted(
        [(winners[0], True), (loser, False)]
    )
    assert (
        client.get_model_version(settings.model_name, loser).tags["promotion.decision"]
        == "rejected"
    )


def test_revert_restores_both_aliases_and_is_audited(client, settings, engine) -> None:
    promotion.force_promote(client, engine, settings, "1", "first")
    decision = gate.Decision(True, "promoted: every check passed", {}, {}, None)
    registered = registry.RegisteredModel(settings.model_name, "2", "models:/unused", "run-2")
    _, moved_from = promotion.apply_decision(client, engine, settings, decision, registered, "1")
    assert state(client, settings) == ("2", "1")
    promotion.revert_promotion(
        client, engine, settings, "2", moved_from, "the flow failed after the move"
    )
    assert state(client, settings) == ("1", None)
    assert audit_rows(engine)[-1]["action"] == "revert"
    assert (
        client.get_model_version(settings.model_name, "2").tags["promotion.decision"] == "aborted"
    )


# ---- crash recovery: intents, reconciliation -------------------------------------------------


@pytest.fixture(scope="module")
def dead_owner() -> str:
    """``host:pid`` of a real process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}"


def leave_pending_move(
    engine: sa.Engine, client: MlflowClient, settings: Settings, owner: str, version: str
) -> registry.Aliases:
    """What a process killed between moving the alias and auditing it leaves behind."""
    before = registry.aliases(client, settings)
    with engine.begin() as conn:
        store.write_intent(
            conn,
            {
                "model_name": settings.model_name,
                "action": promotion.FORCED,
                "owner": owner,
                "before_champion": before.champion,
                "before_previous": before.previous,
            },
        )
    registry.promote_version(client, settings, version, before)
    return before


def test_reconcile_undoes_a_dead_process_s_move_and_audits_it(
    client, settings, engine, dead_owner
) -> None:
    promotion.force_promote(client, engine, settings, "1", "first")
    leave_pending_move(engine, client, settings, dead_owner, "2")
    assert state(client, settings) == ("2", "1")
    summary = recovery.reconcile(engine, client, settings)
    assert [m["moved"] for m in summary["moves_undone"]] == [True]
    assert state(client, settings) == ("1", None)
    last = [r for r in audit_rows(engine) if r["action"] != "aborted"][-1]
    assert (last["action"], last["challenger_version"], last["champion_version"]) == (
        "revert",
        "1",
        "2",
    )
    assert json.loads(last["details"])["dead_owner"] == dead_owner
    with engine.connect() as conn:
        assert store.pending_intents(conn, settings.model_name) == []


def test_the_next_guarded_move_settles_a_dead_move_first(
    client, settings, engine, dead_owner
) -> None:
    promotion.force_promote(client, engine, settings, "1", "first")
    leave_pending_move(engine, client, settings, dead_owner, "2")
    # It saw the unaudited champion 2: the move is put back first, and then refused.
    with pytest.raises(promotion.ChampionMovedError, match="champion moved from 2 to 1"):
        promotion.force_promote(client, engine, settings, "3", "saw the unaudited champion")
    assert state(client, settings) == ("1", None)
    promotion.force_promote(client, engine, settings, "3", "sees the audited champion")
    assert state(client, settings) == ("3", "1")
    assert [r["action"] for r in audit_rows(engine)] == ["force-promote", "revert", "force-promote"]


def test_a_live_process_s_pending_move_is_left_alone(client, settings, engine) -> None:
    promotion.force_promote(client, engine, settings, "1", "first")
    leave_pending_move(engine, client, settings, owners.current_owner(), "2")
    summary = recovery.reconcile(engine, client, settings)
    assert summary["moves_undone"] == [] and summary["champion_restored"] is None
    assert state(client, settings) == ("2", "1")


def test_reconcile_puts_back_a_champion_the_audit_does_not_know(client, settings, engine) -> None:
    promotion.force_promote(client, engine, settings, "1", "first")
    promotion.force_promote(client, engine, settings, "2", "second")
    client.set_registered_model_alias(settings.model_name, settings.champion_alias, "3")
    summary = recovery.reconcile(engine, client, settings)
    assert summary["champion_restored"] == {"from": "3", "to": "2"}
    assert state(client, settings) == ("2", "1")
    last = [r for r in audit_rows(engine) if r["action"] != "aborted"][-1]
    assert (last["action"], last["challenger_version"], last["champion_version"]) == (
        recovery.RECONCILED,
        "2",
        "3",
    )
    assert recovery.reconcile(engine, client, settings)["champion_restored"] is None


def test_reconcile_decides_every_version_left_without_a_decision(client, settings, engine) -> None:
    with engine.begin() as conn:  # version 2's gate verdict was audited, its tag never written
        store.record_decision(
            conn, promotion.audit_row(settings, promotion.GATE, "2", False, "rejected: worse")
        )
    summary = recovery.reconcile(engine, client, settings)
    assert (sorted(summary["versions_aborted"]), summary["versions_tagged"]) == (["1", "3"], ["2"])
    tags = {
        v: client.get_model_version(settings.model_name, v).tags["promotion.decision"]
        for v in ("1", "2", "3")
    }
    assert tags == {"1": "aborted", "2": "rejected", "3": "aborted"}
    aborted = [r["challenger_version"] for r in audit_rows(engine) if r["action"] == "aborted"]
    assert sorted(aborted) == ["1", "3"]
    assert recovery.reconcile(engine, client, settings)["versions_aborted"] == []


def test_reconcile_fails_the_runs_of_dead_processes_only(
    client, settings, engine, dead_owner
) -> None:
    experiment = client.create_experiment(f"e-{uuid.uuid4().hex[:8]}")
    settings = settings.model_copy(
        update={"experiment_name": client.get_experiment(experiment).name}
    )
    dead = client.create_run(experiment, tags={owners.OWNER_TAG: dead_owner})
    child = client.create_run(experiment, tags={"mlflow.parentRunId": dead.info.run_id})
    live = client.create_run(experiment, tags={owners.OWNER_TAG: owners.current_owner()})
    failed = recovery.reconcile(engine, client, settings)["runs_failed"]
    assert sorted(failed) == sorted([dead.info.run_id, child.info.run_id])
    statuses = [client.get_run(r.info.run_id).info.status for r in (dead, child, live)]
    assert statuses == ["FAILED", "FAILED", "RUNNING"]
