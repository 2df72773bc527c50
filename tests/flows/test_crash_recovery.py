"""Promotion is all or nothing even under ``kill -9``: a real ``triage-ml`` process is killed at
each step of a promotion, then the next command reconciles the registry, runs and audit.

The process kills itself (``TRIAGE_TEST_KILL_AT``, a test hook in ``registry.promotion``) at:
after registering the challenger, after committing the move's intent, after moving the alias,
after committing the audit row. The module trains one workspace whose champion (version 1) is
deliberately weak, fitted on the oldest tickets only, then ingests the newer ones, so that every
retraining promotes (the gate judges on the newest month, which version 1 never saw); each test
works on a copy of it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from fixtures_prefect_server import PrefectServer
from servers import VENV_BIN
from triage_ml import registry, store, synth
from triage_ml.registry import owners, promotion
from triage_ml.settings import Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]

FAST = {"TRIAGE_TRAIN__CANDIDATES": '["complement_nb"]', "TRIAGE_TRAIN__PRIORITY_MODEL": "stacked"}
# Version 1: naive Bayes smoothed flat, so it barely tells the categories apart.
WEAK_CHAMPION = {
    "TRIAGE_TRAIN__SEARCH": "false",
    "TRIAGE_TRAIN__CANDIDATE_PARAMS": '{"complement_nb": {"alpha": 1000000}}',
    "TRIAGE_GATE__ABSOLUTE_FLOOR": "0",
}
# Later retrainings beat it on category macro-F1; the other guardrails stay out of the way.
GATE_OPEN = {
    "TRIAGE_GATE__REQUIRE_SIGNIFICANCE": "false",
    "TRIAGE_GATE__MAX_PRIORITY_DROP": "1",
    "TRIAGE_GATE__MAX_CLASS_F1_DROP": "1",
    "TRIAGE_GATE__URGENT_RECALL_FLOOR": "0",
}
KILLED = -9


def triage_ml(
    server: PrefectServer, home: Path, *argv: str, kill_at: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run ``triage-ml`` on workspace ``home`` against the session's Prefect server."""
    env = server.cli_env(TRIAGE_HOME=str(home), **FAST, **GATE_OPEN, **extra)
    if kill_at is not None:
        env[promotion.KILL_AT_VARIABLE] = kill_at
    return subprocess.run(
        [str(VENV_BIN / "triage-ml"), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def succeeded(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def weak_champion_root(
    prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``<root>/home``: 1200 labeled tickets, version 1 (weak) champion, built by the CLI.

    Version 1 learns from the 150 oldest tickets; the rest are ingested after it.
    """
    root = tmp_path_factory.mktemp("crash-base")
    paths = synth.write(synth.generate(1200, months=3, seed=5), root / "data")
    tickets = pd.read_csv(paths["tickets"]).sort_values("created_at")
    tickets.head(150).to_csv(root / "data" / "oldest.csv", index=False)
    tickets.iloc[150:].to_csv(root / "data" / "newer.csv", index=False)
    home = root / "home"
    ingest = ("ingest", "tickets")
    succeeded(triage_ml(prefect_server, home, *ingest, str(root / "data" / "oldest.csv"), "--json"))
    first = succeeded(triage_ml(prefect_server, home, "retrain", "--json", **WEAK_CHAMPION))
    assert first["champion_version"] == "1"
    succeeded(triage_ml(prefect_server, home, *ingest, str(root / "data" / "newer.csv"), "--json"))
    return root


@pytest.fixture
def home(weak_champion_root: Path, tmp_path: Path) -> Path:
    """A copy of the module's workspace for one test."""
    return shutil.copytree(weak_champion_root, tmp_path / "copy") / "home"


def settings_of(home: Path) -> Settings:
    return Settings(home=home)


def audit(settings: Settings) -> list[dict]:
    """The audit rows, oldest first."""
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        return list(reversed(store.recent_decisions(conn, 1000)))


def pending_intents(settings: Settings) -> list[dict]:
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        return store.pending_intents(conn, settings.model_name)


def version_tags(client: MlflowClient, settings: Settings) -> dict[str, str | None]:
    return {
        str(v.version): v.tags.get("promotion.decision")
        for v in client.search_model_versions(f"name = '{settings.model_name}'")
    }


def run_statuses(client: MlflowClient, settings: Settings) -> list[str]:
    experiment = client.get_experiment_by_name(settings.experiment_name)
    return [r.info.status for r in client.search_runs([experiment.experiment_id])]


def assert_consistent(settings: Settings) -> MlflowClient:
    """Registry, runs and audit agree: the champion is where the newest audited move left it,
    every version carries a decision, no run is RUNNING and no move is pending."""
    client = registry.client(settings)
    rows = audit(settings)
    moved = [r for r in rows if r["promoted"]]
    assert registry.aliases(client, settings).champion == moved[-1]["challenger_version"]
    assert None not in version_tags(client, settings).values()
    assert "RUNNING" not in run_statuses(client, settings)
    assert pending_intents(settings) == []
    return client


def test_killed_after_register_leaves_an_aborted_version_and_a_failed_run(
    prefect_server: PrefectServer, home: Path
) -> None:
    settings = settings_of(home)
    killed = triage_ml(prefect_server, home, "retrain", kill_at=promotion.AFTER_REGISTER)
    assert killed.returncode == KILLED, killed.stderr[-3000:]
    client = registry.client(settings)
    assert version_tags(client, settings)["2"] is None  # what the crash leaves
    assert "RUNNING" in run_statuses(client, settings)

    status = succeeded(triage_ml(prefect_server, home, "status", "--json"))
    assert status["reconciled"]["versions_aborted"] == ["2"]
    assert len(status["reconciled"]["runs_failed"]) >= 1
    assert_consistent(settings)
    assert registry.aliases(client, settings).champion == "1"
    assert version_tags(client, settings)["2"] == promotion.ABORTED
    last = audit(settings)[-1]
    assert (last["action"], last["challenger_version"], last["promoted"]) == ("aborted", "2", False)


def test_killed_after_the_intent_moves_nothing(prefect_server: PrefectServer, home: Path) -> None:
    settings = settings_of(home)
    killed = triage_ml(prefect_server, home, "retrain", kill_at=promotion.AFTER_INTENT)
    assert killed.returncode == KILLED, killed.stderr[-3000:]
    assert [i["action"] for i in pending_intents(settings)] == [promotion.GATE]

    status = succeeded(triage_ml(prefect_server, home, "status", "--json"))
    assert [m["moved"] for m in status["reconciled"]["moves_undone"]] == [False]
    client = assert_consistent(settings)
    assert registry.aliases(client, settings) == registry.Aliases("1", None)
    assert version_tags(client, settings)["2"] == promotion.ABORTED
    assert [r["action"] for r in audit(settings)] == ["gate", "aborted"]


def test_killed_after_the_alias_moved_the_next_retrain_puts_it_back_audited(
    prefect_server: PrefectServer, home: Path
) -> None:
    settings = settings_of(home)
    killed = triage_ml(prefect_server, home, "retrain", kill_at=promotion.AFTER_ALIAS)
    assert killed.returncode == KILLED, killed.stderr[-3000:]
    client = registry.client(settings)
    # The crash itself: champion moved, and no audit row says so.
    assert registry.aliases(client, settings).champion == "2"
    assert [r["challenger_version"] for r in audit(settings)] == ["1"]

    record = succeeded(triage_ml(prefect_server, home, "retrain", "--json"))
    assert record["champion_version_before"] == "1"  # the reconciled champion was judged
    assert record["promoted"] and record["champion_version"] == "3"
    assert_consistent(settings)
    assert registry.aliases(client, settings) == registry.Aliases("3", "1")
    assert version_tags(client, settings) == {"1": "promoted", "2": "aborted", "3": "promoted"}
    actions = [
        (r["action"], r["challenger_version"], r["champion_version"]) for r in audit(settings)
    ]
    assert actions == [
        ("gate", "1", None),
        ("revert", "1", "2"),
        ("aborted", "2", None),
        ("gate", "3", "1"),
    ]


def test_killed_after_the_audit_row_keeps_the_audited_champion(
    prefect_server: PrefectServer, home: Path
) -> None:
    settings = settings_of(home)
    killed = triage_ml(prefect_server, home, "retrain", kill_at=promotion.AFTER_AUDIT)
    assert killed.returncode == KILLED, killed.stderr[-3000:]

    status = succeeded(triage_ml(prefect_server, home, "status", "--json"))
    assert status["reconciled"]["versions_tagged"] == ["2"]
    client = assert_consistent(settings)
    assert registry.aliases(client, settings) == registry.Aliases("2", "1")
    assert version_tags(client, settings)["2"] == "promoted"
    assert [(r["action"], r["challenger_version"]) for r in audit(settings)] == [
        ("gate", "1"),
        ("gate", "2"),
    ]


def test_a_killed_forced_promotion_is_undone_before_the_next_rollback_or_status(
    prefect_server: PrefectServer, home: Path
) -> None:
    settings = settings_of(home)
    client = registry.client(settings)
    other = client.copy_model_version(f"models:/{settings.model_name}/1", settings.model_name)
    killed = triage_ml(
        prefect_server,
        home,
        "promote",
        str(other.version),
        "--force",
        "--reason",
        "hotfix",
        kill_at=promotion.AFTER_ALIAS,
    )
    assert killed.returncode == KILLED, killed.stderr[-3000:]
    assert registry.aliases(client, settings) == registry.Aliases("2", "1")  # unaudited

    rolled = triage_ml(prefect_server, home, "rollback", "--reason", "undo", "--json")
    assert rolled.returncode == 2 and "no 'previous-champion' version" in rolled.stderr
    assert_consistent(settings)
    assert registry.aliases(client, settings) == registry.Aliases("1", None)
    assert [r["action"] for r in audit(settings)] == ["gate", "revert"]


def test_a_live_retrain_s_run_is_left_alone(prefect_server: PrefectServer, home: Path) -> None:
    """Reconciliation beside a running retraining marks nothing FAILED and moves nothing."""
    settings = settings_of(home)
    client = registry.client(settings)
    run = client.create_run(
        client.get_experiment_by_name(settings.experiment_name).experiment_id,
        tags={owners.OWNER_TAG: f"{socket.gethostname()}:1"},  # pid 1 is alive
    )
    status = succeeded(triage_ml(prefect_server, home, "status", "--json"))
    assert status["reconciled"]["runs_failed"] == []
    assert client.get_run(run.info.run_id).info.status == "RUNNING"


def test_retrain_on_an_empty_store_is_one_error_line(workspace: Settings, capsys) -> None:
    from triage_ml import cli

    code = cli.main(["retrain", "--json"])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in captured.err, captured.err
    assert lines == [
        "error: only 0 labeled tickets in the store; at least 50 are needed to train"
        " (ingest labeled tickets first: `triage-ml ingest tickets FILE`)"
    ]
