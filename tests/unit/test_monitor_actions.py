"""Acting on the monitor's figures: alerts, the webhook (a real local server), the cool-down."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from servers import free_port
from triage_ml import store
from triage_ml.monitoring import actions
from triage_ml.monitoring.drift import DriftReport
from triage_ml.monitoring.live import LiveReport, Window
from triage_ml.settings import MonitorSettings, Settings

pytestmark = pytest.mark.unit

TICKET_TEXT = "My card ending 4242 was charged twice, please call me at +44 20 7946 0958"


def window(day: str, f1: float | None, labeled: int = 40, step: int = 0) -> Window:
    enough = f1 is not None
    return Window(
        pd.Timestamp(day, tz="UTC"),
        step,
        predictions=60,
        labeled=labeled,
        enough=enough,
        message=None if enough else f"not enough labels ({labeled} < 30)",
        figures={"category_macro_f1": f1} if enough else {},
    )


def report_of(versions: dict[str, list[Window]]) -> LiveReport:
    return LiveReport(versions, "week", 30)


def drift(drifted: bool = True, new_labels: tuple[str, ...] = ()) -> DriftReport:
    figures = [
        {"name": "prediction", "psi": 0.41, "p_value": 0.0, "drifted": drifted},
        {"name": "length", "psi": 0.03, "p_value": 0.6, "drifted": False},
    ]
    return DriftReport(figures, list(new_labels), drifted=drifted)


MONITOR = MonitorSettings(f1_margin=0.05)


def test_live_quality_alert_uses_the_champions_latest_window_with_enough_labels() -> None:
    report = report_of(
        {
            "3": [
                window("2026-01-05", 0.90, step=0),
                window("2026-01-12", 0.70, step=1),
                # The newest window has too few labels: it must not hide the drop before it.
                window("2026-01-19", None, labeled=12, step=2),
            ],
            "2": [window("2026-01-19", 0.95, step=2)],
        }
    )
    alerts = actions.judge(report, None, 0.88, MONITOR, champion="3")
    assert [alert.kind for alert in alerts] == ["live-quality"]
    figures = alerts[0].figures
    assert figures["version"] == "3" and figures["window_start"] == "2026-01-12"
    assert figures["live_macro_f1"] == 0.7 and figures["held_out_macro_f1"] == 0.88
    assert "0.700" in alerts[0].message and "below its held-out 0.880" in alerts[0].message


@pytest.mark.parametrize("live_f1", [0.84, 0.83000001, 0.95])
def test_no_live_alert_within_the_margin(live_f1: float) -> None:
    report = report_of({"3": [window("2026-01-05", live_f1)]})
    assert actions.judge(report, None, 0.88, MONITOR, champion="3") == []


def test_no_live_alert_without_enough_labels_or_without_a_held_out_figure() -> None:
    thin = report_of({"3": [window("2026-01-05", None, labeled=3)]})
    assert actions.judge(thin, None, 0.9, MONITOR, champion="3") == []
    low = report_of({"3": [window("2026-01-05", 0.2)]})
    assert actions.judge(low, None, None, MONITOR, champion="3") == []
    assert actions.judge(None, None, 0.9, MONITOR) == []


def test_without_a_named_champion_the_version_with_the_newest_window_is_judged() -> None:
    report = report_of({"1": [window("2026-01-05", 0.1)], "2": [window("2026-02-05", 0.9, step=4)]})
    assert actions.judge(report, None, 0.9, MONITOR) == []


def test_drift_and_new_labels_become_alerts_that_name_figures_and_labels() -> None:
    alerts = actions.judge(None, drift(new_labels=("Warranty", "Crypto")), 0.9, MONITOR)
    assert [alert.kind for alert in alerts] == ["drift", "new-labels"]
    assert alerts[0].figures == {"prediction": 0.41}
    assert "prediction (PSI 0.41)" in alerts[0].message and "length" not in alerts[0].message
    assert alerts[1].figures == {"labels": ["Crypto", "Warranty"]}
    assert actions.judge(None, drift(drifted=False), 0.9, MONITOR) == []


def test_only_live_quality_and_drift_call_for_a_retraining() -> None:
    alerts = actions.judge(None, drift(new_labels=("Warranty",)), 0.9, MONITOR)
    assert [alert.kind for alert in actions.retrain_reasons(alerts)] == ["drift"]
    new_only = actions.judge(None, drift(drifted=False, new_labels=("X",)), 0.9, MONITOR)
    assert actions.retrain_reasons(new_only) == []


# ---- the webhook, on a real HTTP server ---------------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    """Keeps each POST's path and JSON body; answers the server's ``status`` after ``delay``."""

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.received.append((self.path, json.loads(self.rfile.read(length))))
        time.sleep(self.server.delay)
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received, server.status, server.delay = [], 204, 0.0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def hook(server: ThreadingHTTPServer, timeout: float = 5) -> MonitorSettings:
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/SECRET"
    return MonitorSettings(webhook_url=url, webhook_timeout_seconds=timeout)


def test_alerts_are_posted_as_json_without_ticket_text(receiver: ThreadingHTTPServer) -> None:
    alerts = actions.judge(None, drift(new_labels=("Warranty",)), 0.9, MONITOR)
    outcome = actions.notify(alerts, hook(receiver), model="ticket-triage", version="4")
    assert outcome["status"] == "sent" and outcome["webhook"] == "http://127.0.0.1/***"
    [(path, body)] = receiver.received
    assert path == "/hooks/T000/SECRET"
    assert body["model"] == "ticket-triage" and body["version"] == "4"
    assert [alert["kind"] for alert in body["alerts"]] == ["drift", "new-labels"]
    assert set(body["alerts"][0]) == {"kind", "message", "figures"}
    assert TICKET_TEXT not in json.dumps(body) and "SECRET" not in json.dumps(outcome)


def test_a_failing_webhook_is_reported_never_raised(
    receiver: ThreadingHTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    alerts = actions.judge(None, drift(), 0.9, MONITOR)
    receiver.status = 500
    outcome = actions.notify(alerts, hook(receiver))
    assert outcome == {"webhook": "http://127.0.0.1/***", "status": "failed", "error": "HTTP 500"}
    assert "the alert webhook http://127.0.0.1/*** failed: HTTP 500" in caplog.text
    assert "SECRET" not in caplog.text

    receiver.status, receiver.delay = 204, 1.5
    slow = actions.notify(alerts, hook(receiver, timeout=0.3))
    assert slow["status"] == "failed" and slow["error"] == "ReadTimeout"

    closed = MonitorSettings(webhook_url=f"http://127.0.0.1:{free_port()}/hook")
    refused = actions.notify(alerts, closed)
    assert refused["status"] == "failed" and refused["error"] == "ConnectError"


def test_no_webhook_or_no_alerts_sends_nothing(receiver: ThreadingHTTPServer) -> None:
    assert actions.notify(actions.judge(None, drift(), 0.9, MONITOR), MONITOR) == {
        "webhook": None,
        "status": "not configured",
    }
    assert actions.notify([], hook(receiver))["status"] == "nothing to send"
    assert receiver.received == []


# ---- cool-down and the audit trail, on a real SQLite store ---------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = store.connect(f"sqlite:///{tmp_path / 'store.db'}")
    yield engine
    engine.dispose()


def settings(tmp_path: Path, **monitor: Any) -> Settings:
    return Settings(home=tmp_path, monitor=MonitorSettings(**monitor))


def backdate(engine: sa.Engine, hours: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            store.decisions.update().values(decided_at=store.utcnow() - timedelta(hours=hours))
        )


def test_a_triggered_retrain_starts_a_cooldown_that_ends(
    sqlite_store: sa.Engine, tmp_path: Path
) -> None:
    config = settings(tmp_path, cooldown_hours=72)
    assert actions.in_cooldown(sqlite_store, config) is None
    alerts = actions.judge(None, drift(), 0.9, MONITOR)
    actions.record_alerts(sqlite_store, config, alerts, "3")
    assert actions.in_cooldown(sqlite_store, config) is None  # an alert alone does not cool down
    actions.record_trigger(sqlite_store, config, alerts, "3", {"trigger": "test"})
    backdate(sqlite_store, 10)
    message = actions.in_cooldown(sqlite_store, config)
    assert message is not None and message.startswith("cool-down until ")
    other_model = config.model_copy(update={"model_name": "another-model"})
    assert actions.in_cooldown(sqlite_store, other_model) is None
    backdate(sqlite_store, 73)
    assert actions.in_cooldown(sqlite_store, config) is None


def test_the_audit_row_carries_the_reasons_and_no_ticket_text(
    sqlite_store: sa.Engine, tmp_path: Path
) -> None:
    config = settings(tmp_path)
    alerts = actions.judge(
        report_of({"3": [window("2026-01-05", 0.5)]}), drift(), 0.9, MONITOR, champion="3"
    )
    actions.record_trigger(
        sqlite_store, config, actions.retrain_reasons(alerts), "3", {"trigger": "x"}
    )
    with sqlite_store.connect() as conn:
        [row] = store.recent_decisions(conn)
    assert row["action"] == "retrain-triggered" and row["champion_version"] == "3"
    assert "live macro-F1 0.500" in row["reason"] and "prediction (PSI 0.41)" in row["reason"]
    details = json.loads(row["details"])
    assert [alert["kind"] for alert in details["alerts"]] == ["live-quality", "drift"]
    assert TICKET_TEXT not in row["details"]


def test_trigger_refuses_without_a_reason_when_off_and_during_a_cooldown(
    sqlite_store: sa.Engine, tmp_path: Path
) -> None:
    drifted = actions.judge(None, drift(), 0.9, MONITOR)
    labels_only = actions.judge(None, drift(drifted=False, new_labels=("X",)), 0.9, MONITOR)
    config = settings(tmp_path, trigger="inline")
    none = actions.trigger_retrain(sqlite_store, config, labels_only)
    assert none == {"triggered": False, "mode": "inline", "why": "no live-quality or drift alert"}
    off = actions.trigger_retrain(sqlite_store, settings(tmp_path, trigger="off"), drifted)
    assert off["triggered"] is False and off["why"] == "monitor.trigger is off"
    actions.record_trigger(sqlite_store, config, drifted, "3", {"trigger": "test"})
    cooling = actions.trigger_retrain(sqlite_store, config, drifted)
    assert cooling["triggered"] is False and cooling["why"].startswith("cool-down until ")
    with sqlite_store.connect() as conn:
        assert store.count_rows(conn, store.decisions) == 1  # nothing more was recorded


def test_a_window_whose_upper_bound_reaches_the_margin_raises_no_alert() -> None:
    noisy = window("2026-01-12", 0.79)
    noisy.figures["category_macro_f1_high"] = 0.86
    assert actions.judge(report_of({"1": [noisy]}), None, 0.88, MONITOR, champion="1") == []
    clear = window("2026-01-12", 0.62)
    clear.figures["category_macro_f1_high"] = 0.70
    (alert,) = actions.judge(report_of({"1": [clear]}), None, 0.88, MONITOR, champion="1")
    assert alert.figures["live_macro_f1_high"] == 0.7 and "upper bound 0.700" in alert.message
