"""register -> gate -> alias as one Prefect transaction; rollback and forced promotion (CLI)."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from triage_ml import cli, registry, store
from triage_ml.flows.retrain import monthly_retrain
from triage_ml.registry import gate, promotion
from triage_ml.settings import Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def audit(settings: Settings) -> list[dict]:
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        return store.recent_decisions(conn, 100)


def newest_version(client: MlflowClient, settings: Settings) -> str:
    return str(
        max(int(v.version) for v in client.search_model_versions(f"name = '{settings.model_name}'"))
    )


def retrain_crashing_in(stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the retraining with ``promotion.<stage>`` raising; the flow fails with that error."""

    def crash(*args):
        raise RuntimeError(f"simulated crash in {stage}")

    monkeypatch.setattr(promotion, stage, crash)
    with pytest.raises(RuntimeError, match=f"simulated crash in {stage}"):
        monthly_retrain()


def test_a_crash_between_register_and_alias_leaves_the_champion(
    trained_workspace: Settings, monkeypatch
) -> None:
    settings, client = trained_workspace, registry.client(trained_workspace)
    before = registry.aliases(client, settings)
    retrain_crashing_in("evaluate_champion", monkeypatch)
    assert registry.aliases(client, settings) == before
    orphan = newest_version(client, settings)
    assert orphan != before.champion
    assert (
        client.get_model_version(settings.model_name, orphan).tags["promotion.decision"]
        == "aborted"
    )
    newest = audit(settings)[0]
    assert (newest["action"], newest["challenger_version"], newest["promoted"]) == (
        "aborted",
        orphan,
        False,
    )


def test_a_crash_after_the_alias_moved_puts_it_back(
    trained_workspace: Settings, monkeypatch
) -> None:
    settings, client = trained_workspace, registry.client(trained_workspace)
    before = registry.aliases(client, settings)
    promote = gate.Decision(
        True, "promoted: forced by the test", {"category_macro_f1": 0.99}, None, None
    )
    monkeypatch.setattr(promotion, "judge", lambda *args: promote)
    retrain_crashing_in("log_decision", monkeypatch)
    assert registry.aliases(client, settings) == before
    moved = newest_version(client, settings)
    actions = [(r["action"], r["challenger_version"]) for r in audit(settings)[:3]]
    assert actions == [("aborted", moved), ("revert", before.champion), ("gate", moved)]
    assert (
        client.get_model_version(settings.model_name, moved).tags["promotion.decision"] == "aborted"
    )


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = cli.main([*argv, "--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else {}), captured.err


def test_forced_promotion_and_rollback_from_the_cli_are_audited(
    trained_workspace: Settings, capsys
) -> None:
    settings, client = trained_workspace, registry.client(trained_workspace)
    champion = registry.aliases(client, settings).champion
    other = client.copy_model_version(
        f"models:/{settings.model_name}/{champion}", settings.model_name
    ).version

    code, _, err = run_cli(capsys, "promote", str(other), "--reason", "no force")
    assert code == 2 and err.strip().splitlines()[-1].startswith(
        "error: promote bypasses the gate and needs --force"
    )

    code, forced, _ = run_cli(
        capsys, "promote", str(other), "--force", "--reason", "hotfix for the billing queue"
    )
    assert code == 0 and (forced["champion_before"], forced["champion"]) == (champion, str(other))
    code, rolled, _ = run_cli(capsys, "rollback", "--reason", "hotfix misroutes refunds")
    assert code == 0 and (rolled["champion_before"], rolled["champion"]) == (str(other), champion)
    assert registry.alias_version(client, settings.model_name, "champion") == champion
    code, status, _ = run_cli(capsys, "status")
    assert (
        code == 0
        and status["champion"]["version"] == champion
        and status["champion"]["previous_champion"] is None
    )

    code, trail, _ = run_cli(capsys, "audit", "--limit", "2")
    assert code == 0
    assert [(d["action"], d["reason"]) for d in trail["decisions"]] == [
        ("rollback", "hotfix misroutes refunds"),
        ("force-promote", "hotfix for the billing queue"),
    ]


def test_the_retraining_run_logs_where_its_time_went(trained_workspace: Settings) -> None:
    settings, client = trained_workspace, registry.client(trained_workspace)
    champion = registry.aliases(client, settings).champion
    run_id = client.get_model_version(settings.model_name, str(champion)).run_id
    logged = client.get_run(run_id).data.metrics
    timing = ("prepare_seconds", "fit_seconds_total", "predict_seconds", "flow_seconds")
    assert all(logged[name] > 0 for name in (*timing, "predict_tickets_per_second"))
    assert logged["flow_seconds"] > logged["fit_seconds_total"] + logged["predict_seconds"]
