"""`triage-ml deploy` and `serve-flows` against a real Prefect server, as an operator runs them.

Every command runs as a subprocess with its own environment, so this
process's Prefect settings (the other flow tests' harness) stay untouched.
What the server holds is read back over its REST API.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fixtures_prefect_server import PrefectServer
from servers import free_port, tail
from triage_ml import cli, synth

pytestmark = [pytest.mark.flows, pytest.mark.slow]

TRIAGE_ML = str(Path(sys.executable).parent / "triage-ml")
PREFECT = str(Path(sys.executable).parent / "prefect")
# Inbox ingestion once a day (at midnight, Berlin time): a scheduled inbox run coming due while
# the worker test runs would compete for the deployment's one concurrency slot with its own run.
SETTINGS = {
    "TRIAGE_SCHEDULES__TIMEZONE": "Europe/Berlin",
    "TRIAGE_SCHEDULES__SCORE_INTERVAL_MINUTES": "10",
    "TRIAGE_SCHEDULES__INGEST_INTERVAL_MINUTES": "1440",
    "TRIAGE_SCHEDULES__WORK_POOL_CONCURRENCY": "3",
}


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``triage-ml <args>`` in a subprocess."""
    return subprocess.run(
        [TRIAGE_ML, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def deployments_by_flow(server: PrefectServer) -> dict[str, dict[str, Any]]:
    """The server's deployments named ``triage-ml``, keyed by flow name."""
    flows = {f["id"]: f["name"] for f in server.api("POST", "/flows/filter", {})}
    return {
        flows[d["flow_id"]]: d
        for d in server.api("POST", "/deployments/filter", {})
        if d["name"] == "triage-ml"
    }


def drop_tickets(home: Path, rows: int, seed: int) -> Path:
    """A small labeled ticket file dropped into the workspace inbox."""
    target = home / "inbox" / "tickets" / f"tickets-{seed}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    synth.generate(rows, months=2, seed=seed).tickets.to_csv(target, index=False)
    return target


@pytest.fixture(scope="module")
def deployed(
    prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    """`triage-ml deploy --json` run once against the real server: (its output, the workspace)."""
    home = tmp_path_factory.mktemp("deploy") / "home"
    started = time.monotonic()
    done = run_cli(prefect_server.cli_env(TRIAGE_HOME=str(home), **SETTINGS), "deploy", "--json")
    assert done.returncode == 0, done.stderr
    print(f"\ntriage-ml deploy took {time.monotonic() - started:.1f} s", file=sys.stderr)
    return json.loads(done.stdout), home


def test_deploy_registers_schedules_parameters_pool_and_limits(
    prefect_server: PrefectServer, deployed
) -> None:
    output, _ = deployed
    held = deployments_by_flow(prefect_server)
    assert set(held) == {"monthly-retrain", "scheduled-scoring", "ingest-inbox", "monitor"}

    retrain, scoring, inbox = (
        held["monthly-retrain"],
        held["scheduled-scoring"],
        held["ingest-inbox"],
    )
    assert [s["schedule"]["cron"] for s in retrain["schedules"]] == ["0 3 1 * *"]
    assert [s["schedule"]["cron"] for s in held["monitor"]["schedules"]] == ["0 6 * * *"]
    assert held["monitor"]["entrypoint"] == "triage_ml/flows/monitor.py:monitor"
    assert retrain["schedules"][0]["schedule"]["timezone"] == "Europe/Berlin"
    assert [s["schedule"]["interval"] for s in scoring["schedules"]] == [600.0]
    assert [s["schedule"]["interval"] for s in inbox["schedules"]] == [86400.0]
    assert {s["schedule"]["timezone"] for s in scoring["schedules"] + inbox["schedules"]} == {
        "Europe/Berlin"
    }
    assert (
        scoring["parameters"] == {"rescore": False}
        and retrain["parameters"] == {}
        and inbox["parameters"] == {}
    )
    assert retrain["entrypoint"] == "triage_ml/flows/retrain.py:monthly_retrain"
    # The UI's "custom run" form: the typed parameters that override the workspace's settings.
    offered = retrain["parameter_openapi_schema"]["properties"]
    assert {"candidates", "cv_folds", "priority_model", "min_delta", "settings"} <= set(offered)
    assert offered["priority_model"]["anyOf"][0]["enum"] == ["auto", "stacked", "baseline"]
    assert scoring["entrypoint"] == "triage_ml/flows/score.py:scheduled_scoring"
    for deployment in held.values():
        assert deployment["work_pool_name"] == "triage-ml"
        assert deployment["global_concurrency_limit"]["limit"] == 1
        assert deployment["concurrency_options"]["collision_strategy"] == "ENQUEUE"
        assert deployment["paused"] is False
        assert all(s["active"] for s in deployment["schedules"])

    pool = prefect_server.api("GET", "/work_pools/triage-ml")
    assert pool["type"] == "process" and pool["concurrency_limit"] == 3
    assert output["work_pool"] == {"name": "triage-ml", "type": "process", "concurrency_limit": 3}

    printed = {d["name"]: d for d in output["deployments"]}
    next_retrain = datetime.fromisoformat(
        printed["monthly-retrain/triage-ml"]["schedules"][0]["next_runs"][0]
    )
    in_berlin = next_retrain.astimezone(ZoneInfo("Europe/Berlin"))
    assert (in_berlin.day, in_berlin.hour, in_berlin.minute) == (1, 3, 0)
    assert next_retrain > datetime.now(UTC)
    assert printed["scheduled-scoring/triage-ml"]["concurrency_limit"] == 1


def test_a_process_worker_runs_a_deployed_flow(
    prefect_server: PrefectServer, deployed, tmp_path: Path
) -> None:
    _, home = deployed
    bad = home / "inbox" / "tickets" / "bad.csv"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("foo,bar\n1,2\n", encoding="utf-8")
    inbox = deployments_by_flow(prefect_server)["ingest-inbox"]
    run = prefect_server.api("POST", f"/deployments/{inbox['id']}/create_flow_run", {})

    env = prefect_server.cli_env(
        TRIAGE_HOME=str(home),
        PREFECT_API_URL=prefect_server.api_url,
        PREFECT_HOME=str(tmp_path / "worker-prefect"),
    )
    worker = subprocess.run(
        [PREFECT, "worker", "start", "--pool", "triage-ml", "--run-once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]

    assert prefect_server.wait_for_run(run["id"], timeout=30)["state_type"] == "COMPLETED"
    assert not bad.exists()
    reasons = list((home / "inbox" / "failed" / "tickets").glob("*-bad.csv.reason.txt"))
    assert len(reasons) == 1 and "not found" in reasons[0].read_text()


def test_serve_flows_serves_the_deployments_and_runs_one(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    home = tmp_path / "served"
    dropped = drop_tickets(home, 200, seed=21)
    since = datetime.now(UTC)
    log = tmp_path / "serve-flows.log"
    # PYTHONFAULTHANDLER: should it hang on shutdown, SIGABRT prints every thread's stack
    # (see stop_serving).
    env = prefect_server.cli_env(TRIAGE_HOME=str(home), PYTHONFAULTHANDLER="1")
    with log.open("w") as err:
        serving = subprocess.Popen(
            [TRIAGE_ML, "serve-flows", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        held = wait_for_served(prefect_server, serving, since, log)
        run = prefect_server.api(
            "POST", f"/deployments/{held['ingest-inbox']['id']}/create_flow_run", {}
        )
        assert prefect_server.wait_for_run(run["id"])["state_type"] == "COMPLETED"
        processed = list((home / "inbox" / "processed" / "tickets").glob(f"*-{dropped.name}"))
        assert len(processed) == 1 and not dropped.exists()
        # The run's state is final about 2 s before its process exits: Ctrl-C comes once it is idle.
        wait_for_no_children(serving, log)
    finally:
        out = stop_serving(serving, log)
    assert serving.returncode == 0, tail(log)
    assert json.loads(out) == {
        "served": [
            "monthly-retrain/triage-ml",
            "scheduled-scoring/triage-ml",
            "ingest-inbox/triage-ml",
            "monitor/triage-ml",
        ],
        "stopped": True,
    }
    # Prefect pauses served schedules on shutdown, so no run piles up with nobody to execute it.
    assert all(d["paused"] for d in deployments_by_flow(prefect_server).values())


def stop_serving(serving: subprocess.Popen[str], log: Path, timeout: float = 60) -> str:
    """Ctrl-C, as an operator stops it; its stdout. A hang fails with every thread's stack."""
    serving.send_signal(signal.SIGINT)
    try:
        return serving.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        serving.send_signal(signal.SIGABRT)  # faulthandler dumps the threads, then the process dies
        serving.communicate(timeout=30)
        raise AssertionError(
            f"serve-flows did not stop within {timeout} s of SIGINT:\n{tail(log, lines=100)}"
        ) from None


def wait_for_no_children(process: subprocess.Popen[str], log: Path, timeout: float = 60) -> None:
    """Wait until ``process`` has no child processes left."""
    deadline = time.monotonic() + timeout
    while children := child_pids(process.pid):
        assert process.poll() is None and time.monotonic() < deadline, (
            f"children {children} still running:\n{tail(log)}"
        )
        time.sleep(0.2)


def child_pids(pid: int) -> list[str]:
    """The child processes of ``pid``, from Linux's /proc (a thread may end while it is read)."""
    found: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            found += (task / "children").read_text().split()
    return found


def wait_for_served(
    server: PrefectServer,
    serving: subprocess.Popen[str],
    since: datetime,
    log: Path,
    timeout: float = 180,
) -> dict[str, dict[str, Any]]:
    """Wait until serve-flows has (re)registered its four deployments and is polling for runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert serving.poll() is None, tail(log)
        held = deployments_by_flow(server)
        fresh = {
            name: d for name, d in held.items() if datetime.fromisoformat(d["updated"]) >= since
        }
        if len(fresh) == 4 and all(d["status"] == "READY" for d in fresh.values()):
            return fresh
        time.sleep(1)
    raise AssertionError(f"serve-flows did not register its deployments within {timeout} s")


@pytest.mark.parametrize("command", ["deploy", "serve-flows"])
def test_without_an_api_url_deploy_and_serve_flows_refuse_in_one_line(
    command: str, tmp_path: Path
) -> None:
    env = {
        k: v
        for k, v in PrefectServer("", tmp_path, tmp_path, 0)
        .cli_env(TRIAGE_HOME=str(tmp_path / "h"))
        .items()
        if k != "TRIAGE_PREFECT_API_URL"
    }
    done = run_cli(env, command, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(
        f"error: {command} needs a Prefect server: set TRIAGE_PREFECT_API_URL"
    )


def test_deploy_to_an_unreachable_api_is_one_error_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    done = run_cli(
        PrefectServer(url, tmp_path, tmp_path, 0).cli_env(TRIAGE_HOME=str(tmp_path / "h")), "deploy"
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: cannot reach the Prefect API at {url}: [Errno 111] Connection refused"
    ]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "TRIAGE_SCHEDULES__RETRAIN_CRON",
            "0 25 1 * *",
            "error: invalid configuration: schedules.retrain_cron: ",
        ),
        (
            "TRIAGE_SCHEDULES__RETRAIN_CRON",
            "monthly",
            "error: invalid configuration: schedules.retrain_cron: ",
        ),
        (
            "TRIAGE_SCHEDULES__TIMEZONE",
            "Europe/Atlantis",
            "error: invalid configuration: schedules.timezone: ",
        ),
        (
            "TRIAGE_SCHEDULES__SCORE_INTERVAL_MINUTES",
            "0",
            "error: invalid configuration: schedules.score_interval_minutes: ",
        ),
    ],
)
def test_bad_schedule_settings_are_one_line(
    variable: str,
    value: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    assert cli.main(["deploy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
