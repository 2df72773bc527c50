"""The parallel run end to end: a real SQLite store, a real MLflow workspace, the real flows.

Version 1 is the champion the retraining made; version 2 learned the same
history with its most common category renamed (the category "changed
meaning"). It shadows version 1 from the CLI, scores every new ticket into
``shadow_predictions`` (never into anything a caller reads), and once agents'
labels agree with it, the live gate promotes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from triage_ml import cli, registry, store
from triage_ml.errors import RegistryError
from triage_ml.monitoring import shadow
from triage_ml.registry import gate, promotion
from triage_ml.settings import GateSettings, Settings
from triage_ml.store.tables import AUTO_APPLIED, CORRECTED
from triage_ml.training import candidates, fit
from triage_ml.training.inputs import prepare

pytestmark = [pytest.mark.flows, pytest.mark.slow]


@dataclass(frozen=True)
class Parallel:
    """The module's workspace: its settings, data directory, and the renamed category."""

    home: Path
    data: Path
    renamed: str


def register_renamed(settings: Settings, tickets: pd.DataFrame, renamed: str) -> str:
    """Fit a small model on ``tickets`` with ``renamed`` relabeled; register it (version 2)."""
    relabeled = tickets.assign(
        category=tickets["category"].where(tickets["category"] != renamed, f"{renamed} v2")
    )
    with threadpool_limits(1):
        spec = candidates.category_specs(("complement_nb",), grids={})[-1]
        predictor = fit.fit_predictor(prepare(relabeled), spec, {"review_threshold": 0.5}, seed=0)
    registry.use_workspace(settings)
    with mlflow.start_run() as run:
        uri = registry.log_triage_model(predictor, registry.input_example(tickets))
    return registry.register(uri, settings.model_name, run.info.run_id).version


def flows_conftest(config: pytest.Config):
    """This folder's conftest module, as pytest loaded it (every conftest is named "conftest")."""
    found = config.pluginmanager.get_plugin(str(Path(__file__).with_name("conftest.py")))
    assert found is not None
    return found


@pytest.fixture(scope="module")
def parallel(
    prefect_harness, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Parallel:
    """Version 1 champion (history scored by it), version 2 registered beside it."""
    train_home = flows_conftest(request.config).train_home
    home = train_home(tmp_path_factory.mktemp("shadow") / "home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIAGE_HOME", str(home))
        assert cli.main(["score", "--json"]) == 0  # the history: the champion's answers only
        tickets = pd.read_csv(home.parent / "data" / "tickets.csv")
        renamed = str(tickets["category"].value_counts().index[0])
        assert register_renamed(Settings(), tickets, renamed) == "2"
    return Parallel(home, home.parent / "data", renamed)


@pytest.fixture
def settings(parallel: Parallel, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRIAGE_HOME", str(parallel.home))
    return Settings()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = cli.main([*argv, "--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else {}), captured.err


def audit(settings: Settings, limit: int = 10) -> list[dict]:
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        return store.recent_decisions(conn, limit)


def read(settings: Settings, statement) -> pd.DataFrame:
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        return pd.read_sql(statement, conn)


def test_1_bad_starts_and_stops_are_one_line_errors(settings: Settings, capsys) -> None:
    for argv, message in (
        (("shadow", "start", "99"), "error: model 'ticket-triage' has no version 99"),
        (("shadow", "start", "1"), "error: version 1 is the champion of 'ticket-triage'"),
        (("shadow", "stop"), "error: model 'ticket-triage' has no 'challenger' version"),
    ):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and err.strip().splitlines()[-1].startswith(message), err
    code, status, _ = run_cli(capsys, "shadow", "status")
    assert code == 0 and (status["challenger"], status["champion"]) == (None, "1")


def test_2_start_from_the_cli_sets_the_alias_and_audits_it(settings: Settings, capsys) -> None:
    code, started, _ = run_cli(capsys, "shadow", "start", "2", "--reason", "new refunds flow")
    assert code == 0
    assert (started["action"], started["challenger"], started["champion"]) == (
        "shadow-start",
        "2",
        "1",
    )
    client = registry.client(settings)
    assert registry.alias_version(client, settings.model_name, "challenger") == "2"
    assert registry.aliases(client, settings) == registry.Aliases("1", None)
    newest = audit(settings)[0]
    assert (newest["action"], newest["challenger_version"], newest["promoted"]) == (
        "shadow-start",
        "2",
        False,
    )
    assert newest["reason"] == "new refunds flow"
    code, _, err = run_cli(capsys, "shadow", "start", "2")
    assert code == 2 and "already the shadow challenger" in err
    code, status, _ = run_cli(capsys, "shadow", "status")
    assert code == 0 and (status["challenger"], status["shadow_predictions"]) == ("2", 0)
    assert status["since"] is not None
    code, overall, _ = run_cli(capsys, "status")
    assert code == 0 and overall["challenger"] == "2"


def test_3_new_tickets_are_scored_by_both_but_only_the_champion_answers(
    settings: Settings, parallel: Parallel, capsys, tmp_path: Path
) -> None:
    new = parallel.data / "new_tickets.csv"
    assert run_cli(capsys, "ingest", "tickets", str(new), "--unlabeled")[0] == 0
    code, scored, _ = run_cli(capsys, "score")
    assert code == 0 and scored["model_version"] == "1"
    assert (scored["shadow_version"], scored["scored"], scored["shadow_scored"]) == ("2", 300, 300)
    answered = read(settings, "SELECT ticket_id, model_version, category FROM shadow_predictions")
    fresh = set(pd.read_csv(new)["ticket_id"].astype(str))
    assert set(answered["ticket_id"]) == fresh and set(answered["model_version"]) == {"2"}
    assert f"{parallel.renamed} v2" in set(answered["category"])
    # What callers read holds the champion's answers only: the store's predictions ...
    served = read(settings, "SELECT DISTINCT model_version FROM predictions")
    assert served["model_version"].tolist() == ["1"]
    # ... and a scored file.
    output = tmp_path / "scored.csv"
    assert run_cli(capsys, "score", "--input", str(new), "--output", str(output))[0] == 0
    written = pd.read_csv(output)
    assert set(written["model_version"].astype(str)) == {"1"}
    assert f"{parallel.renamed} v2" not in set(written["category"])
    code, status, _ = run_cli(capsys, "shadow", "status")
    assert (status["shadow_predictions"], status["paired"], status["labeled_rows"]) == (300, 300, 0)
    assert status["comparison"]["message"] == "not enough labeled live rows (0 < 100)"


def agents_agree_with_the_challenger(settings: Settings) -> int:
    """Feedback on the shadowed tickets: agents give the challenger's answers; 20 auto-applied."""
    answers = read(
        settings,
        "SELECT s.ticket_id, s.category, s.priority, p.category AS champion_category"
        " FROM shadow_predictions s JOIN predictions p ON p.ticket_id = s.ticket_id",
    )
    auto = answers.index < 20
    rows = pd.DataFrame(
        {
            "feedback_id": [f"F-{i}" for i in range(len(answers))],
            "ticket_id": answers["ticket_id"],
            "corrected_category": answers["category"].where(~auto, answers["champion_category"]),
            "corrected_priority": answers["priority"],
            "corrected_at": pd.Timestamp.now(tz="UTC"),
            "label_source": [AUTO_APPLIED if a else CORRECTED for a in auto],
            "batch_id": "live-labels",
            "ingested_at": pd.Timestamp.now(tz="UTC"),
        }
    )
    with store.opened(settings.store_url) as engine, engine.begin() as conn:
        store.insert_rows(conn, store.feedback, rows, ("corrected_at", "ingested_at"))
    return len(rows) - 20


def test_4_live_evidence_promotes_the_challenger(settings: Settings, capsys) -> None:
    labeled = agents_agree_with_the_challenger(settings)
    code, status, _ = run_cli(capsys, "shadow", "status")
    assert code == 0 and status["labeled_rows"] == labeled == 280
    assert status["comparison"]["decision"]["promote"], status["comparison"]["decision"]["reason"]
    client = registry.client(settings)
    with store.opened(settings.store_url) as engine:
        comparison = shadow.compare(engine, settings, "1", "2")
        moved = shadow.promote(client, engine, settings, comparison)
        with pytest.raises(RegistryError, match="no longer the 'challenger'"):
            shadow.promote(client, engine, settings, comparison)
    assert (moved["champion_before"], moved["champion"], moved["previous_champion"]) == (
        "1",
        "2",
        "1",
    )
    assert registry.alias_version(client, settings.model_name, "challenger") is None
    newest = audit(settings)[0]
    assert (newest["action"], newest["challenger_version"], newest["champion_version"]) == (
        "live-promotion",
        "2",
        "1",
    )
    assert newest["promoted"] and newest["reason"].startswith("on 280 labeled live rows: promoted")
    details = json.loads(newest["details"])
    assert details["live_rows"] == 280 and details["interval"][0] > 0


def test_5_a_passing_retrain_shadows_instead_when_configured(settings: Settings) -> None:
    client = registry.client(settings)
    champion = registry.aliases(client, settings).champion
    source = f"models:/{settings.model_name}/1"
    copied = client.copy_model_version(source, settings.model_name)
    registered = registry.RegisteredModel(settings.model_name, str(copied.version), source, "run")
    passing = gate.Decision(
        True, "promoted: every check passed", {"category_macro_f1": 0.9}, None, None
    )
    shadowing = settings.model_copy(update={"gate": GateSettings(on_pass="shadow")})
    with store.opened(settings.store_url) as engine:
        final, moved = promotion.apply_decision(
            client, engine, shadowing, passing, registered, champion
        )
    assert (
        moved is None and not final.promote and final.reason.startswith("shadow: passed the gate")
    )
    assert registry.aliases(client, settings).champion == champion
    assert registry.alias_version(client, settings.model_name, "challenger") == registered.version
    tags = client.get_model_version(settings.model_name, registered.version).tags
    assert tags["promotion.decision"] == "shadow"
    actions = [(r["action"], r["challenger_version"], r["promoted"]) for r in audit(settings)[:2]]
    assert actions == [
        ("shadow-start", registered.version, False),
        ("gate", registered.version, False),
    ]
    with store.opened(settings.store_url) as engine:
        stopped = shadow.stop(client, engine, settings, "enough")
    assert (stopped["challenger"], stopped["shadow_predictions"]) == (registered.version, 0)
    assert registry.alias_version(client, settings.model_name, "challenger") is None
    assert audit(settings)[0]["action"] == "shadow-stop"


def test_6_a_first_model_still_becomes_champion_when_shadowing(settings: Settings) -> None:
    fresh = settings.model_copy(
        update={"model_name": "fresh-triage", "gate": GateSettings(on_pass="shadow")}
    )
    client = registry.client(settings)
    source = f"models:/{settings.model_name}/1"
    copied = client.copy_model_version(source, fresh.model_name)
    registered = registry.RegisteredModel(fresh.model_name, str(copied.version), source, "run")
    passing = gate.Decision(True, "first model: nothing to beat, floor met", {}, None, None)
    with store.opened(settings.store_url) as engine:
        final, _ = promotion.apply_decision(client, engine, fresh, passing, registered, None)
    assert final.promote
    assert registry.aliases(client, fresh).champion == registered.version
    assert registry.alias_version(client, fresh.model_name, "challenger") is None
