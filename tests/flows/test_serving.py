"""Scoring jobs outside this repository: a file in and out, the model alone, the HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from servers import free_port, running
from triage_ml import cli
from triage_ml.scoring import serving
from triage_ml.settings import Settings
from triage_model.predictor import OUTPUT_COLUMNS

pytestmark = [pytest.mark.flows, pytest.mark.slow]

REPO_SRC = Path(__file__).resolve().parents[2] / "src"


def new_tickets(settings: Settings) -> Path:
    return settings.home.parent / "data" / "new_tickets.csv"


def test_score_a_file_to_csv_and_parquet_with_bad_rows_set_aside(
    trained_workspace: Settings, tmp_path: Path, capsys
) -> None:
    tickets = pd.read_csv(new_tickets(trained_workspace))
    tickets.loc[3, "body"] = None  # breaks the contract: no text
    source = tmp_path / "in.csv"
    tickets.to_csv(source, index=False)

    assert (
        cli.main(["score", "--input", str(source), "--output", str(tmp_path / "out.csv"), "--json"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert (summary["scored"], summary["rejected"], summary["model_version"]) == (
        len(tickets) - 1,
        1,
        "1",
    )
    scored = pd.read_csv(tmp_path / "out.csv")
    assert {"ticket_id", *OUTPUT_COLUMNS, "model_version"} <= set(scored.columns)
    assert set(scored["ticket_id"]) == set(tickets["ticket_id"]) - {tickets.loc[3, "ticket_id"]}
    rejected = pd.read_csv(summary["rejected_file"])
    assert rejected["row_number"].tolist() == [4] and "body" in rejected["reasons"].iloc[0]

    assert (
        cli.main(
            ["score", "--input", str(source), "--output", str(tmp_path / "out.parquet"), "--json"]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        pd.read_parquet(tmp_path / "out.parquet")["category"].tolist()
        == scored["category"].tolist()
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--input", "{src}", "--output", "{tmp}/out.txt"],
            "--output must end in .csv, .parquet, .json or .jsonl",
        ),
        (["--input", "{src}"], "--input and --output go together"),
        (["--input", "{tmp}/missing.csv", "--output", "{tmp}/out.csv"], "missing.csv"),
    ],
)
def test_bad_score_requests_are_one_line_errors(
    trained_workspace: Settings, tmp_path: Path, capsys, argv, message
) -> None:
    args = [a.format(src=new_tickets(trained_workspace), tmp=tmp_path) for a in argv]
    assert cli.main(["score", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and message in err[-1]
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".out*"))


def test_the_champion_loads_and_predicts_with_triage_ml_unimportable(
    trained_workspace: Settings, tmp_path: Path
) -> None:
    # The editable install's import hook is removed and the repository's
    # source is off sys.path, so only the code the model carries can be used.
    script = textwrap.dedent(f"""
        import importlib.util, json, sys
        sys.meta_path[:] = [
            f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")
        ]
        sys.path[:] = [p for p in sys.path if not p.startswith({str(REPO_SRC)!r})]
        assert importlib.util.find_spec("triage_ml") is None, "triage_ml is still importable"
        import mlflow, pandas as pd
        model = mlflow.pyfunc.load_model("models:/{trained_workspace.model_name}@champion")
        out = model.predict(pd.read_csv({str(new_tickets(trained_workspace))!r}).head(20))
        code = sys.modules["triage_model"].__file__
        print(json.dumps({{"rows": len(out), "columns": list(out.columns), "code": code}}))
    """)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained_workspace.tracking_uri,
        "MLFLOW_REGISTRY_URI": trained_workspace.registry_uri,
    }
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rows"] == 20 and set(OUTPUT_COLUMNS) <= set(result["columns"])
    code = Path(result["code"])
    assert not result["code"].startswith(str(REPO_SRC)) and code.parent.parent.name == "code"


def post(url: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def server(trained_workspace: Settings, tmp_path: Path):
    """The scoring server on the champion, as ``triage-ml serve`` starts it, on a free port."""
    port = free_port()
    command = serving.serve_command(
        serving.model_uri(trained_workspace, "champion"), "127.0.0.1", port, 1
    )
    base = f"http://127.0.0.1:{port}"
    with running(
        command,
        serving.serve_environment(trained_workspace),
        tmp_path / "server.log",
        f"{base}/ping",
    ):
        yield base


def test_the_scoring_server_answers_single_tickets_over_http(
    server: str, trained_workspace: Settings
) -> None:
    ticket = {
        "subject": "Charged twice",
        "body": "I was charged twice for my subscription this month, please refund one.",
        "channel": "email",
        "customer_tier": "gold",
    }
    status, body = post(f"{server}/invocations", {"dataframe_records": [ticket]})
    assert status == 200, body
    (prediction,) = body["predictions"]
    assert prediction["category"] == "Billing" and prediction[
        "route"
    ] == trained_workspace.route_for("Billing")
    assert 0 < prediction["category_proba"] <= 1 and -1 <= prediction["sentiment"] <= 1
    assert isinstance(prediction["needs_review"], bool) and len(json.loads(prediction["top3"])) == 3
    # Every answer of the served model (docs/answers.md), the heads the data has among them.
    assert set(OUTPUT_COLUMNS) <= set(prediction), sorted(set(OUTPUT_COLUMNS) - set(prediction))
    assert prediction["language"] == "en" and prediction["sentiment_reason"] is None
    assert prediction["subcategory"] is None or prediction["subcategory_proba"] > 0
    assert prediction["type"] is not None  # the synthetic history has types; no bar for them
    assert prediction["team"] is None or prediction["team_proba"] > 0
    assert json.loads(prediction["escalation"]) == []
    assert 0 <= prediction["priority_score"] <= 100
    parts = json.loads(prediction["priority_parts"])
    assert set(parts) == {"model", "value", "sentiment", "weights"}

    latencies = []
    for _ in range(30):
        started = time.perf_counter()
        assert post(f"{server}/invocations", {"dataframe_records": [ticket]})[0] == 200
        latencies.append((time.perf_counter() - started) * 1000)
    print(
        f"single-ticket latency over 30 requests: p50 {np.percentile(latencies, 50):.1f} ms, "
        f"p99 {np.percentile(latencies, 99):.1f} ms "
        "(figures only; benchmarks/bench_serving.py measures)"
    )

    status, body = post(f"{server}/invocations", {"dataframe_records": [{"subject": "no body"}]})
    assert status == 400 and "body" in json.dumps(body)
