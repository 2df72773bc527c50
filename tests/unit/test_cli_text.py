"""The Typer CLI's surface: text output, --version, help, flags per command, --config, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from triage_ml import __version__, cli, ingest, store
from triage_ml.cli import render
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def help_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The help of a command, on one line per word so wrapping does not matter."""
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0
    return " ".join(out.replace("│", " ").split())


@pytest.fixture
def plain_ingest(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """The ingest flow swapped for the library chain it runs (no Prefect); keeps the settings."""
    from triage_ml.flows import ingest as ingest_flows

    seen: list[Settings] = []

    def ingest_tickets(
        path: str | None, mapping: Any, sql: Any = None, settings: Settings | None = None
    ) -> dict[str, Any]:
        assert settings is not None
        seen.append(settings)
        engine = store.connect(settings.store_url)
        try:
            summary = ingest.ingest_configured(engine, settings, "tickets", Path(path), mapping)
        finally:
            engine.dispose()
        return summary.as_dict()

    monkeypatch.setattr(ingest_flows, "ingest_tickets", ingest_tickets)
    return seen


def test_version(capsys) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"triage-ml {__version__}"


def test_help_shows_defaults_and_an_example(capsys) -> None:
    text = help_text(capsys, "generate")
    assert "[default: 6000]" in text and "Example: triage-ml generate" in text
    assert "Example: triage-ml demo" in help_text(capsys, "demo")


def test_a_command_shows_only_its_own_flags(capsys) -> None:
    tickets, feedback = (
        help_text(capsys, "ingest", "tickets"),
        help_text(capsys, "ingest", "feedback"),
    )
    assert "--text-columns" in tickets and "--unlabeled" in tickets
    assert "--text-columns" not in feedback and "--unlabeled" not in feedback
    assert "--sql-url" in feedback and "--json" in feedback and "--config" in feedback
    assert "--rescore" not in help_text(capsys, "status")


def test_a_bad_flag_value_is_one_error_line(workspace, capsys, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["audit", "--limit", "0"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "--limit" in err
    assert "0 is below the minimum of 1" in err and "Traceback" not in err


def test_an_unknown_flag_is_one_error_line(workspace, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["ingest", "feedback", "x.csv", "--unlabeled"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1 and "--unlabeled" in err


@pytest.mark.parametrize("before_command", [True, False])
def test_config_flag_leaves_the_environment_alone(
    workspace, capsys, monkeypatch, tmp_path: Path, before_command: bool
) -> None:
    monkeypatch.delenv("TRIAGE_CONFIG", raising=False)
    path = tmp_path / "triage.toml"
    path.write_text('model_name = "from-flag"\n[gate]\nmin_delta = 0.02\n')
    flag = ["--config", str(path)]
    argv = (
        [*flag, "config", "show", "--json"]
        if before_command
        else ["config", "show", *flag, "--json"]
    )
    environment = dict(os.environ)
    code, out, _ = run(capsys, *argv)
    assert code == 0
    shown = json.loads(out)
    assert shown["model_name"] == "from-flag" and shown["gate"]["min_delta"] == 0.02
    assert shown["sources"]["config_file"] == str(path.resolve())
    assert "TRIAGE_CONFIG" not in os.environ
    # The owner pid the first command of a process marks for its Prefect server is no setting.
    settings_only = {"TRIAGE_ML_CLI_PID"}
    assert {
        k: v for k, v in os.environ.items() if k.startswith("TRIAGE_") and k not in settings_only
    } == {
        k: v for k, v in environment.items() if k.startswith("TRIAGE_") and k not in settings_only
    }


def test_config_show_text_masks_credentials(workspace, capsys, monkeypatch) -> None:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", "postgresql+psycopg://triage:pg-secret@db/triage")
    code, out, _ = run(capsys, "config", "show")
    assert code == 0 and "pg-secret" not in out
    assert "in effect" in out and "triage:***@db" in out and "gate.min_delta" in out
    assert not out.lstrip().startswith("{")


def test_status_text_on_an_empty_workspace(workspace, capsys) -> None:
    code, out, _ = run(capsys, "status")
    assert code == 0 and not out.lstrip().startswith("{")
    assert "no champion yet" in out and "ticket store" in out and "no retraining runs yet" in out


def test_ingest_text_and_json_on_tiny_data(
    workspace, capsys, plain_ingest, tickets_csv: Path
) -> None:
    code, out, _ = run(capsys, "ingest", "tickets", str(tickets_csv))
    assert code == 0 and not out.lstrip().startswith("{")
    assert out.startswith("ingest tickets: read 600, stored 600, quarantined 0, skipped 0")
    assert plain_ingest[-1].home == workspace.home

    code, out, _ = run(capsys, "ingest", "tickets", str(tickets_csv), "--json")
    summary = json.loads(out)
    assert code == 0 and (summary["read"], summary["stored"], summary["skipped"]) == (600, 0, 600)

    code, out, _ = run(capsys, "batches", "list")
    assert code == 0 and "ingest batches" in out and summary["batch_id"] in out


def test_local_times_and_rounded_figures() -> None:
    assert render.figure(0.123456) == "0.123" and render.figure(None) == "-"
    assert render.local_time(None) == "-"
    shown = render.local_time("2026-12-06T10:00:00")
    assert shown.startswith("2026-12-0") and shown != "2026-12-06T10:00:00"


def test_no_command_is_one_error_line(capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main([])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1 and "missing command" in err


def test_shell_completion_completes_commands_and_flags(capsys, monkeypatch) -> None:
    monkeypatch.setenv("_TRIAGE_ML_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "triage-ml ingest tickets --unl")
    monkeypatch.setenv("COMP_CWORD", "3")
    with pytest.raises(SystemExit):
        cli.main([])
    assert capsys.readouterr().out.split() == ["--unlabeled"]


def test_evaluate_text_says_how_often_the_model_abstained() -> None:
    from rich.console import Console

    result = {
        "model_version": "3",
        "n": 200,
        "rejected_rows": 0,
        "category": {"macro_f1": 0.8, "accuracy": 0.81, "abstained": 0.05},
        "category_ranked": {"macro_f1": 0.84, "accuracy": 0.85},
    }
    console = Console(width=200, record=True)
    console.print(render.evaluate(result))
    text = console.export_text()
    assert "abstained (category unknown) on 5.0% of the rows" in text
    assert "macro-F1 0.8400, accuracy 0.8500" in text
    console = Console(width=200, record=True)
    console.print(render.evaluate({**result, "category_ranked": None}))
    assert "abstained (category" not in console.export_text()
