"""The monitor flow end to end: a real SQLite store, a real MLflow workspace, the real flows.

Version 1 learned a history from early 2026. The month before today brings "live" tickets
it scores: all from one channel in one language (drift), and labeled by agents with each
category's meaning shifted to the next one (live macro-F1 collapses). The monitor must
see both, tell a real local webhook without ticket text, record its figures, and start
one retraining inline, then wait out its cool-down.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from triage_ml import cli, registry, store, synth
from triage_ml.settings import Settings
from triage_ml.store import thresholds as threshold_queries
from triage_ml.synth.schema import CATEGORIES

pytestmark = [pytest.mark.flows, pytest.mark.slow]


class Receiver(BaseHTTPRequestHandler):
    """Keeps each POST's JSON body."""

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class Monitored:
    """The module's workspace, its live tickets, the webhook's bodies and the first run."""

    home: Path
    live: pd.DataFrame
    received: list[dict[str, Any]]
    state: Any


def flows_conftest(config: pytest.Config):
    """This folder's conftest module, as pytest loaded it (every conftest is named "conftest")."""
    found = config.pluginmanager.get_plugin(str(Path(__file__).with_name("conftest.py")))
    assert found is not None
    return found


def live_tickets(rows: int = 400) -> pd.DataFrame:
    """A month of recent labeled tickets: one channel, one language, categories shifted by one."""
    start = datetime.now(UTC) - timedelta(days=30)
    tickets = synth.generate(rows, months=1, seed=41, start=start).tickets
    order = list(CATEGORIES)
    shifted = {name: order[(i + 1) % len(order)] for i, name in enumerate(order)}
    return tickets.assign(
        ticket_id="LIVE-" + tickets["ticket_id"],
        channel="social",
        language="de",
        category=tickets["category"].map(shifted),
    )


@pytest.fixture(scope="module")
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def monitor_env(patch: pytest.MonkeyPatch, home: Path, hook: str, trigger: str) -> Settings:
    patch.setenv("TRIAGE_HOME", str(home))
    patch.setenv("TRIAGE_TRAIN__CANDIDATES", '["complement_nb"]')
    patch.setenv("TRIAGE_TRAIN__PRIORITY_MODEL", "stacked")
    patch.setenv("TRIAGE_MONITOR__DRIFT_DAYS", "14")
    patch.setenv("TRIAGE_MONITOR__WEBHOOK_URL", hook)
    patch.setenv("TRIAGE_MONITOR__TRIGGER", trigger)
    return Settings()


def hook_url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/hooks/monitor/SECRET"


@pytest.fixture(scope="module")
def monitored(
    prefect_harness,
    receiver: ThreadingHTTPServer,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Monitored:
    """Version 1 champion; the live month ingested and scored; one monitor run (trigger off)."""
    from triage_ml.flows.monitor import monitor

    home = flows_conftest(request.config).train_home(tmp_path_factory.mktemp("monitor") / "home")
    live = live_tickets()
    path = home.parent / "data" / "live.csv"
    live.to_csv(path, index=False)
    with pytest.MonkeyPatch.context() as patch:
        settings = monitor_env(patch, home, hook_url(receiver), "off")
        assert cli.main(["ingest", "tickets", str(path), "--json"]) == 0
        assert cli.main(["score", "--json"]) == 0
        state = monitor(settings=settings, return_state=True)
    return Monitored(home, live, receiver.received, state)


@pytest.fixture
def settings(monitored: Monitored, receiver, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return monitor_env(monkeypatch, monitored.home, hook_url(receiver), "off")


def artifacts_of(flow_run_id: Any) -> dict[str, Any]:
    """The artifacts of one flow run by key (the API's filter endpoint, as in
    test_prefect_artifacts.py)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import Artifact

    query = {"artifacts": {"flow_run_id": {"any_": [str(flow_run_id)]}}, "limit": 50, "offset": 0}
    with get_client(sync_client=True) as client:
        found = client.request("POST", "/artifacts/filter", json=query).json()
    return {item["key"]: Artifact.model_validate(item) for item in found}


def first_result(monitored: Monitored) -> dict[str, Any]:
    assert monitored.state.is_completed(), monitored.state.message
    return monitored.state.result()


def test_live_quality_drops_and_drift_is_seen(monitored: Monitored) -> None:
    result = first_result(monitored)
    assert result["champion"]["version"] == "1"
    held_out = result["champion"]["held_out_f1"]
    assert held_out is not None and held_out > 0.5
    measured = [row for row in result["live"] if row["version"] == "1" and row["macro_f1"]]
    assert len(measured) >= 3  # weekly windows of the live month with enough labels
    assert all(row["macro_f1"] < held_out - 0.05 for row in measured)
    drifted = {row["figure"] for row in result["drift"]["figures"] if row["drifted"]}
    assert result["drift"]["drifted"] and {"channel", "language"} <= drifted
    kinds = [alert["kind"] for alert in result["alerts"]]
    assert kinds[:2] == ["live-quality", "drift"]
    assert result["retrain"] == {
        "triggered": False,
        "mode": "off",
        "why": "monitor.trigger is off",
    }
    assert result["shadow"] == {"challenger": None, "promoted": None}
    assert result["automation"] and {"category", "labeled", "auto_threshold"} <= set(
        result["automation"][0]
    )


def test_figures_are_logged_on_the_champions_run_and_thresholds_stored(
    monitored: Monitored, settings: Settings
) -> None:
    result = first_result(monitored)
    assert result["live_metrics_logged"] > 0
    client = registry.use_workspace(settings)
    run_id = client.get_model_version(settings.model_name, "1").run_id
    history = client.get_metric_history(run_id, "live_category_macro_f1")
    assert len(history) >= 3 and all(point.value < 0.5 for point in history)
    plots = [item.path for item in client.list_artifacts(run_id, "monitor")]
    assert plots == ["monitor/live_quality.png"]
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        rows = threshold_queries.threshold_rows(conn, "1")
    assert {row["source"] for row in rows} >= {"live"}


def test_artifacts_events_and_the_audit_trail(monitored: Monitored, settings: Settings) -> None:
    result = first_result(monitored)
    held = artifacts_of(monitored.state.state_details.flow_run_id)
    assert {"live-quality", "drift", "campaigns", "automation-coverage", "monitor-alerts"} <= set(
        held
    )
    assert held["live-quality"].type == "table" and held["monitor-alerts"].type == "markdown"
    assert "**live-quality**" in held["monitor-alerts"].data
    assert result["notify"]["events"] == len(result["alerts"])
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        actions_taken = [row["action"] for row in store.recent_decisions(conn, 20)]
    assert "monitor-alert" in actions_taken and "retrain-triggered" not in actions_taken


def test_the_webhook_hears_the_alerts_without_personal_data(monitored: Monitored) -> None:
    result = first_result(monitored)
    body = monitored.received[0]
    assert body["model"] == "ticket-triage" and body["version"] == "1"
    assert [alert["kind"] for alert in body["alerts"]] == [a["kind"] for a in result["alerts"]]
    assert result["notify"]["status"] == "sent"
    published = json.dumps(monitored.received) + json.dumps(result, default=str)
    assert "SECRET" not in json.dumps(result, default=str)
    live = monitored.live
    for text in [*live["body"].str[:40], *live["customer_id"].dropna().astype(str)]:
        assert text not in published


def test_an_inline_trigger_retrains_once_then_cools_down(
    monitored: Monitored, receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from triage_ml.flows.monitor import monitor

    first_result(monitored)
    settings = monitor_env(monkeypatch, monitored.home, hook_url(receiver), "inline")
    started = monitor(settings=settings)
    assert started["live_metrics_logged"] == 0  # the same windows: nothing logged twice
    retrain = started["retrain"]
    assert retrain["triggered"] and retrain["mode"] == "inline"
    assert retrain["result"]["challenger_version"] == "2"
    again = monitor(settings=settings)["retrain"]
    assert not again["triggered"] and again["why"].startswith("cool-down until ")
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        rows = store.recent_decisions(conn, 50)
    triggered = [row for row in rows if row["action"] == "retrain-triggered"]
    assert len(triggered) == 1
    assert "live macro-F1" in triggered[0]["reason"]
    assert json.loads(triggered[0]["details"])["trigger"] == "inline"


def test_the_cli_prints_the_monitor_or_refuses_in_one_line(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assert cli.main(["monitor"]) == 0
    out = capsys.readouterr().out
    assert "Live quality per week" in out and "alert drift:" in out and "retrain:" in out

    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "empty"))
    assert cli.main(["monitor"]) == 2
    err = capsys.readouterr().err
    assert err == "error: the store has no tickets yet: ingest some first" + (
        " (`triage-ml ingest tickets FILE`)\n"
    )
    tickets = synth.generate(60, months=1, seed=3).tickets
    tickets.to_csv(tmp_path / "t.csv", index=False)
    assert cli.main(["ingest", "tickets", str(tmp_path / "t.csv"), "--json"]) == 0
    capsys.readouterr()
    assert cli.main(["monitor"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model 'ticket-triage' has no 'champion' alias yet")
    assert err.count("\n") == 1


def test_a_run_as_of_a_past_day_sees_nothing_created_after_it(
    monitored: Monitored, settings: Settings
) -> None:
    from triage_ml.flows.monitor import monitor

    before_live_month = datetime.now(UTC) - timedelta(days=45)
    result = monitor(settings=settings, as_of=before_live_month)
    live_ids = [row for row in result["live"] if row["version"] == "1"]
    assert all(pd.Timestamp(row["window"], tz="UTC") < before_live_month for row in live_ids)
    assert result["drift"]["message"].startswith("not enough recent tickets (0 <")
    assert "live-quality" not in {alert["kind"] for alert in result["alerts"]}
