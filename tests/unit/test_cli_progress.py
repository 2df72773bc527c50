"""The CLI's progress bar, and the demo's direct link to the MLflow runs table."""

from __future__ import annotations

import io
import json

import pytest
import typer
from rich.console import Console

from triage_ml import progress
from triage_ml.cli import demo, progress_bar, render, runner
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit


def recording_console() -> tuple[Console, io.StringIO]:
    text = io.StringIO()
    return Console(file=text, width=100, color_system=None), text


def test_the_bar_shows_each_piece_of_work_at_its_latest_stage() -> None:
    console, text = recording_console()
    with progress_bar.showing(True, console):
        progress.report("retrain: load snapshot", 0, 5)
        progress.report("retrain: fit [candidates]", 2, 5)
        progress.report("scoring: tickets scored", 300, 1000)
    drawn = text.getvalue()
    assert "retrain: fit [candidates]" in drawn and "2/5" in drawn
    assert "scoring: tickets scored" in drawn and "300/1000" in drawn
    assert "load snapshot" not in drawn  # one bar per piece of work, not one per stage


def test_work_of_unknown_size_spins_instead_of_failing() -> None:
    console, text = recording_console()
    with progress_bar.showing(True, console):
        progress.report("ingest tickets: reading a.csv", 0, 0)
    assert "ingest tickets: reading a.csv" in text.getvalue()


def test_nothing_listens_when_disabled() -> None:
    console, text = recording_console()
    with progress_bar.showing(False, console):
        progress.report("retrain: fit", 1, 2)
    assert text.getvalue() == ""


def test_listener_is_removed_after_the_command() -> None:
    console, text = recording_console()
    with progress_bar.showing(True, console):
        pass
    progress.report("retrain: after", 1, 2)
    assert "after" not in text.getvalue()


@pytest.mark.parametrize(
    ("env", "as_json", "expected"),
    [("1", True, True), ("0", False, False), ("", True, False), ("", False, False)],
)
def test_the_bar_is_wanted_at_a_terminal_without_json_or_when_forced(
    monkeypatch: pytest.MonkeyPatch, env: str, as_json: bool, expected: bool
) -> None:
    # Under pytest stderr is captured, not a terminal: only TRIAGE_PROGRESS=1 turns it on.
    monkeypatch.setenv(progress_bar.PROGRESS_ENV, env)
    assert progress_bar.wanted(as_json) is expected


def reporting_app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def work(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
        def action(settings: Settings) -> dict[str, object]:
            for done in range(1, 4):
                progress.report("work: step", done, 3)
            return {"done": 3}

        runner.invoke(ctx, action, lambda r: f"done {r['done']}", as_json)

    return app


def test_a_command_draws_its_bar_on_stderr_and_keeps_json_on_stdout(
    workspace: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(progress_bar.PROGRESS_ENV, "1")
    reporting_app()(["--json"], standalone_mode=False)
    out, err = capsys.readouterr()
    assert json.loads(out) == {"done": 3}
    assert "work: step" in err and "3/3" in err


def test_a_command_without_a_terminal_draws_no_bar(
    workspace: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(progress_bar.PROGRESS_ENV, raising=False)
    reporting_app()([], standalone_mode=False)
    out, err = capsys.readouterr()
    assert out.strip() == "done 3" and "work: step" not in err


def test_the_demo_links_to_the_runs_table_of_its_experiment(workspace: Settings) -> None:
    url = demo.runs_table_url(workspace, "7")
    assert url == "http://127.0.0.1:5000/#/experiments/7/runs"
    text = "\n".join(render.where_to_look(url))
    assert "http://127.0.0.1:5000/#/experiments/7/runs" in text


def test_the_runs_link_follows_a_tracking_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_MLFLOW_TRACKING_URI", "http://mlflow.internal:8080/")
    url = demo.runs_table_url(Settings(), "3")
    assert url == "http://mlflow.internal:8080/#/experiments/3/runs"


def test_the_runs_link_leaves_a_tracking_servers_credentials_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIAGE_MLFLOW_TRACKING_URI", "https://ds:s3cret@mlflow.internal/")
    assert demo.runs_table_url(Settings(), "3") == "https://mlflow.internal/#/experiments/3/runs"
