"""Acting on the monitor's figures: alerts, who hears of them, and an early retraining.

:func:`judge` turns the live quality and drift reports into alerts;
:func:`notify` posts them to the configured webhook and :func:`emit_events`
to Prefect's event feed (where a Prefect automation can pick them up);
:func:`trigger_retrain` starts the retraining early, at most once per
cool-down, and records why in the audit trail. Alerts carry figures, version
numbers and category names only: never ticket text or customer or agent ids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.engine import Engine

from triage_ml import store
from triage_ml.settings import MonitorSettings, Settings, mask_webhook
from triage_ml.store import monitor as monitor_queries

if TYPE_CHECKING:
    from triage_ml.monitoring.drift import DriftReport
    from triage_ml.monitoring.live import LiveReport, Window

LIVE_QUALITY, DRIFT, NEW_LABELS = "live-quality", "drift", "new-labels"
# Only these start a retraining: new labels need a human to decide what they mean first.
RETRAIN_KINDS: tuple[str, ...] = (LIVE_QUALITY, DRIFT)
RETRAIN_TRIGGERED, MONITOR_ALERT = "retrain-triggered", "monitor-alert"
RETRAIN_FLOW = "monthly-retrain"
EVENT = "triage-ml.monitor.alert"
TRIGGER_TAGS: tuple[str, ...] = ("triggered-by-monitor",)
EMPTY_STORE = "the store has no tickets yet: ingest some first (`triage-ml ingest tickets FILE`)"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """One reason to look at the model: its kind, one line saying why, and the figures behind it."""

    kind: str
    message: str
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The alert as JSON-able data (kind, message, figures)."""
        return asdict(self)


def judge(
    live_report: LiveReport | None,
    drift_report: DriftReport | None,
    champion_f1: float | None,
    monitor: MonitorSettings,
    champion: str | None = None,
) -> list[Alert]:
    """The alerts the reports call for.

    Args:
        live_report: ``monitoring.live.LiveReport`` (None when there was nothing to measure).
        drift_report: ``monitoring.drift.DriftReport`` (None when drift was not measured).
        champion_f1: the champion's held-out category macro-F1 (None: unknown, no live alert).
        monitor: the monitor settings (``f1_margin``).
        champion: the champion's version; None takes the version with the newest window.

    Returns:
        "live-quality" when the champion's latest window with enough labels has a macro-F1 more
        than ``f1_margin`` below ``champion_f1``; "drift" when the drift report says so;
        "new-labels" when feedback uses labels the champion never learned.
    """
    alerts = [live_quality_alert(live_report, champion_f1, monitor.f1_margin, champion)]
    alerts += [drift_alert(drift_report), new_labels_alert(drift_report)]
    return [alert for alert in alerts if alert is not None]


def latest_measured(
    live_report: LiveReport | None, champion: str | None
) -> tuple[str, Window] | None:
    """(version, window): the champion's newest window with enough labels for a macro-F1."""
    versions = live_report.versions if live_report is not None else {}
    served = {version: windows for version, windows in versions.items() if windows}
    if champion is None and served:
        champion = max(served, key=lambda version: max(w.start for w in served[version]))
    measured = [
        window
        for window in served.get(champion or "", [])
        if window.enough and window.figures.get("category_macro_f1") is not None
    ]
    if not measured:
        return None
    return str(champion), max(measured, key=lambda window: window.start)


def live_quality_alert(
    live_report: LiveReport | None, champion_f1: float | None, margin: float, champion: str | None
) -> Alert | None:
    """A "live-quality" alert when live macro-F1 fell more than ``margin`` below held-out.

    Judged on the window's 95% upper bound where it has one: a window of a few dozen labels
    can fall that far by chance.
    """
    found = latest_measured(live_report, champion)
    if found is None or champion_f1 is None:
        return None
    version, window = found
    live_f1 = float(window.figures["category_macro_f1"])
    high = float(window.figures.get("category_macro_f1_high", live_f1))
    if high >= champion_f1 - margin:
        return None
    start = window.start.strftime("%Y-%m-%d")
    return Alert(
        LIVE_QUALITY,
        f"live macro-F1 {live_f1:.3f} (95% upper bound {high:.3f}) of version {version} (window"
        f" from {start}, {window.labeled} labeled) is {champion_f1 - live_f1:.3f} below its"
        f" held-out {champion_f1:.3f} (margin {margin:.3f})",
        {
            "version": version,
            "window_start": start,
            "labeled": int(window.labeled),
            "live_macro_f1": round(live_f1, 4),
            "live_macro_f1_high": round(high, 4),
            "held_out_macro_f1": round(float(champion_f1), 4),
            "margin": margin,
        },
    )


def drift_alert(drift_report: DriftReport | None) -> Alert | None:
    """A "drift" alert naming each drifted figure and its PSI."""
    if drift_report is None or not drift_report.drifted:
        return None
    drifted = {
        item["name"]: round(float(item["psi"]), 4)
        for item in drift_report.figures
        if item.get("drifted")
    }
    named = ", ".join(f"{name} (PSI {psi:.2f})" for name, psi in drifted.items())
    return Alert(DRIFT, f"recent tickets drifted from the training data: {named}", drifted)


def new_labels_alert(drift_report: DriftReport | None) -> Alert | None:
    """A "new-labels" alert listing the labels in feedback that the champion does not predict."""
    labels = sorted(drift_report.new_labels) if drift_report is not None else []
    if not labels:
        return None
    return Alert(
        NEW_LABELS,
        f"feedback uses {len(labels)} label(s) the champion does not know: {', '.join(labels)}",
        {"labels": labels},
    )


def payload(alerts: Sequence[Alert], model: str, version: str | None) -> dict[str, Any]:
    """The webhook's JSON body: the model, its champion version and the alerts."""
    return {"model": model, "version": version, "alerts": [alert.as_dict() for alert in alerts]}


def notify(
    alerts: Sequence[Alert],
    monitor: MonitorSettings,
    model: str = "",
    version: str | None = None,
) -> dict[str, Any]:
    """POST the alerts to ``monitor.webhook_url``; a failure is returned, never raised.

    Args:
        alerts: what to tell; nothing is sent without alerts.
        monitor: the monitor settings (webhook URL and timeout).
        model: the registered model's name, for the body.
        version: the champion's version, for the body.

    Returns:
        ``webhook`` (the masked URL or None), ``status`` ("not configured", "nothing to send",
        "sent" or "failed") and, when it failed, ``error`` (one line).
    """
    url = monitor.webhook_url
    if not url:
        return {"webhook": None, "status": "not configured"}
    masked = mask_webhook(url)
    if not alerts:
        return {"webhook": masked, "status": "nothing to send"}
    try:
        response = httpx.post(
            url, json=payload(alerts, model, version), timeout=monitor.webhook_timeout_seconds
        )
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        return _failed(masked, f"HTTP {exc.response.status_code}")
    except httpx.HTTPError as exc:
        # The exception's text can quote the URL, whose path is often the webhook's secret.
        return _failed(masked, type(exc).__name__)
    return {"webhook": masked, "status": "sent", "http_status": response.status_code}


def _failed(masked: str, error: str) -> dict[str, Any]:
    logger.warning("the alert webhook %s failed: %s", masked, error)
    return {"webhook": masked, "status": "failed", "error": error}


def emit_events(alerts: Sequence[Alert], model: str, version: str | None) -> int:
    """One Prefect event ``triage-ml.monitor.alert`` per alert, about the model version.

    A Prefect automation can match them (to notify, or to run a deployment); the
    Prefect UI lists them in its event feed. Returns how many were emitted.
    """
    from prefect.events import emit_event

    resource = {
        "prefect.resource.id": f"triage-ml.model.{model}.{version}",
        "prefect.resource.name": f"{model} version {version}",
    }
    emitted = 0
    for alert in alerts:
        event = emit_event(
            EVENT, resource=resource, payload={"kind": alert.kind, **alert.as_dict()}
        )
        emitted += event is not None
    return emitted


def in_cooldown(engine: Engine, settings: Settings) -> str | None:
    """ "cool-down until <UTC time>" while a retraining started by the monitor is recent, else None.

    Recent means within ``monitor.cooldown_hours`` of the newest "retrain-triggered" audit row
    of the model.
    """
    with engine.connect() as conn:
        last = monitor_queries.last_decision(conn, settings.model_name, RETRAIN_TRIGGERED)
    if last is None:
        return None
    until = last["decided_at"] + timedelta(hours=settings.monitor.cooldown_hours)
    if store.utcnow() >= until:
        return None
    started = f"{last['decided_at']:%Y-%m-%d %H:%M}"
    return f"cool-down until {until:%Y-%m-%d %H:%M} UTC (retraining triggered {started} UTC)"


def retrain_reasons(alerts: Sequence[Alert]) -> list[Alert]:
    """The alerts that call for a retraining (live quality and drift)."""
    return [alert for alert in alerts if alert.kind in RETRAIN_KINDS]


def trigger_retrain(
    engine: Engine,
    settings: Settings,
    alerts: Sequence[Alert],
    champion: str | None = None,
    held: str | None = None,
) -> dict[str, Any]:
    """Start the retraining early when a live-quality or drift alert calls for it.

    ``monitor.trigger`` says how: "deployment" creates a run of the retraining deployment and
    returns at once (a worker runs it), "inline" retrains in this process, "off" never. Nothing
    starts during a cool-down (:func:`in_cooldown`), nor while ``held`` says why not (a shadow
    challenger still collecting live evidence, or one just promoted). Each start is an audit
    row "retrain-triggered" whose reason is the alerts' messages.

    Returns:
        ``triggered`` (bool) and ``why`` (one line); with a deployment run its ``flow_run_id``,
        inline the retraining's ``result``; ``error`` when the deployment could not be run.
    """
    reasons = retrain_reasons(alerts)
    mode = settings.monitor.trigger
    if not reasons:
        return {"triggered": False, "mode": mode, "why": "no live-quality or drift alert"}
    if mode == "off":
        return {"triggered": False, "mode": mode, "why": "monitor.trigger is off"}
    if held is not None:
        return {"triggered": False, "mode": mode, "why": held}
    if (cooling := in_cooldown(engine, settings)) is not None:
        return {"triggered": False, "mode": mode, "why": cooling}
    if mode == "inline":
        return _retrain_inline(engine, settings, reasons, champion)
    return _run_deployment(engine, settings, reasons, champion)


def record_trigger(
    engine: Engine,
    settings: Settings,
    reasons: Sequence[Alert],
    champion: str | None,
    details: dict[str, Any],
) -> None:
    """The audit row "retrain-triggered": the alerts' messages as its reason, their figures in
    its details (no personal data: see the module docstring)."""
    from triage_ml.registry.promotion import audit_row

    row = audit_row(
        settings,
        RETRAIN_TRIGGERED,
        None,
        False,
        "; ".join(alert.message for alert in reasons),
        champion=champion,
        details={"alerts": [alert.as_dict() for alert in reasons], **details},
    )
    with engine.begin() as conn:
        store.record_decision(conn, row)


def deployment_name() -> str:
    """``monthly-retrain/<deployment>``: the retraining that ``triage-ml deploy`` registers."""
    from triage_ml.flows.deployments import DEPLOYMENT_NAME

    return f"{RETRAIN_FLOW}/{DEPLOYMENT_NAME}"


def _run_deployment(
    engine: Engine, settings: Settings, reasons: Sequence[Alert], champion: str | None
) -> dict[str, Any]:
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    name = deployment_name()
    try:
        # timeout=0: create the run and return; a worker of the pool runs it.
        run = run_deployment(name=name, timeout=0, tags=list(TRIGGER_TAGS))
    except ObjectNotFound:
        why = f"the deployment {name} is not registered (run `triage-ml deploy`)"
        logger.warning("retraining not triggered: %s", why)
        return {"triggered": False, "mode": "deployment", "why": why, "error": why}
    details = {"trigger": "deployment", "deployment": name, "flow_run_id": str(run.id)}
    record_trigger(engine, settings, reasons, champion, details)
    return {
        "triggered": True,
        "mode": "deployment",
        "why": f"run {run.name} of {name} created",
        "flow_run_id": str(run.id),
    }


def _retrain_inline(
    engine: Engine, settings: Settings, reasons: Sequence[Alert], champion: str | None
) -> dict[str, Any]:
    from triage_ml.flows.retrain import retrain_and_promote

    # Recorded first: a retraining that fails still counts, so the next monitor run waits.
    record_trigger(engine, settings, reasons, champion, {"trigger": "inline"})
    record = retrain_and_promote(settings)
    return {
        "triggered": True,
        "mode": "inline",
        "why": "retrained in the monitor's run",
        "result": {
            key: record.get(key) for key in ("challenger_version", "champion_after", "promote")
        },
    }


def record_alerts(
    engine: Engine, settings: Settings, alerts: Sequence[Alert], champion: str | None
) -> int | None:
    """One "monitor-alert" audit row listing this run's alerts (None when there are none)."""
    if not alerts:
        return None
    from triage_ml.registry.promotion import audit_row

    row = audit_row(
        settings,
        MONITOR_ALERT,
        None,
        False,
        "; ".join(alert.message for alert in alerts),
        champion=champion,
        details={"alerts": [alert.as_dict() for alert in alerts]},
    )
    with engine.begin() as conn:
        return store.record_decision(conn, row)


def alerts_markdown(result: dict[str, Any]) -> str:
    """The ``monitor-alerts`` artifact: each alert, who was told, and what the trigger did."""
    alerts, told, started = result["alerts"], result["notify"], result["retrain"]
    champion = result["champion"]["version"]
    lines = [f"### Monitor: {len(alerts)} alert(s) about version {champion}", ""]
    lines += [f"- **{alert['kind']}**: {alert['message']}" for alert in alerts] or ["No alert."]
    webhook = told.get("webhook") or "none configured"
    lines += [
        "",
        f"Webhook ({webhook}): {told['status']}"
        + (f" ({told['error']})" if told.get("error") else ""),
        f"Prefect events `{EVENT}`: {told.get('events', 0)}",
        "",
        f"Retraining: {'**triggered**' if started['triggered'] else 'not triggered'}"
        f" ({started['why']}; trigger {started['mode']})",
    ]
    return "\n".join(lines)
