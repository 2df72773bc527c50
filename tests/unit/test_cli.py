"""The CLI's bad-input contract: one clear `error:` line, exit code 2, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from triage_ml import cli

pytestmark = pytest.mark.unit


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


def assert_nothing_stored(home: Path) -> None:
    assert (
        not (home / "triage.db").exists()
        or pd.read_sql_table("tickets", f"sqlite:///{home / 'triage.db'}").empty
    )


def test_missing_file(workspace, capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "ingest", "tickets", str(tmp_path / "nope.csv"))
    assert_one_line_error(code, err, "not found", "nope.csv")
    assert_nothing_stored(workspace.home)


def test_empty_file(workspace, capsys, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = run(capsys, "ingest", "tickets", str(empty))
    assert_one_line_error(code, err, "empty", "empty.csv")
    assert_nothing_stored(workspace.home)


def test_wrong_column_name(workspace, capsys, tickets_csv: Path) -> None:
    code, _, err = run(capsys, "ingest", "tickets", str(tickets_csv), "--category-column", "queue")
    assert_one_line_error(code, err, "'queue'", "not found")
    assert_nothing_stored(workspace.home)


def test_wrong_text_column(workspace, capsys, tickets_csv: Path) -> None:
    code, _, err = run(
        capsys, "ingest", "tickets", str(tickets_csv), "--text-columns", "title,description"
    )
    assert_one_line_error(code, err, "title", "not found")


def test_label_column_with_one_class(workspace, capsys, tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    pd.DataFrame({"text": ["a b c", "d e f", "g h i"], "label": ["Billing"] * 3}).to_csv(
        path, index=False
    )
    code, _, err = run(
        capsys,
        "ingest",
        "tickets",
        str(path),
        "--text-columns",
        "text",
        "--category-column",
        "label",
    )
    assert_one_line_error(code, err, "single class", "Billing")
    assert_nothing_stored(workspace.home)


def test_feedback_missing_columns(workspace, capsys, tmp_path: Path) -> None:
    path = tmp_path / "fb.csv"
    pd.DataFrame({"ticket": ["T1"], "fix": ["Billing"]}).to_csv(path, index=False)
    code, _, err = run(capsys, "ingest", "feedback", str(path))
    assert_one_line_error(code, err, "ticket_id", "not found")


def test_invalid_configuration(workspace, capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRIAGE_GATE__MIN_DELTA", "not-a-number")
    code, _, err = run(capsys, "ingest", "tickets", str(tmp_path / "x.csv"))
    assert_one_line_error(code, err, "invalid configuration", "min_delta")


def test_evaluate_without_champion(workspace, capsys, tickets_csv: Path) -> None:
    code, _, err = run(capsys, "evaluate", str(tickets_csv), "--json")
    assert_one_line_error(code, err, "champion", "retrain")


def test_generate_writes_files_and_json(workspace, capsys, tmp_path: Path) -> None:
    code, out, _ = run(
        capsys,
        "generate",
        "--tickets",
        "120",
        "--months",
        "2",
        "--new-tickets",
        "10",
        "--out",
        str(tmp_path / "g"),
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["tickets"] == 120 and result["new_tickets"] == 10
    assert all(Path(p).exists() for p in result["files"].values())


def test_generate_without_new_tickets(workspace, capsys, tmp_path: Path) -> None:
    code, out, _ = run(
        capsys,
        "generate",
        "--tickets",
        "120",
        "--new-tickets",
        "0",
        "--out",
        str(tmp_path / "g"),
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["new_tickets"] == 0 and "new_tickets" not in result["files"]


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--tickets", "0", "0 is below the minimum of 1"),
        ("--seed", "-3", "-3 is below the minimum of 0"),
        ("--months", "six", "'six' is not a whole number"),
    ],
)
def test_generate_refuses_bad_counts(
    workspace, capsys, tmp_path: Path, flag: str, value: str, needle: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["generate", flag, value, "--out", str(tmp_path / "g")])
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "g").exists()


def test_real_entry_point_prints_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "TRIAGE_HOME": str(tmp_path / "ws"),
    }
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "triage-ml"),
            "ingest",
            "tickets",
            "missing.csv",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == "error: input file not found: missing.csv"
