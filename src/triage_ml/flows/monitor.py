"""monitor: live quality, drift, live tier thresholds, the shadow challenger, and acting on them.

The flow at the bottom is the table of contents. Each stage above it is a
task around the store or MLflow that calls the plain functions of
``triage_ml.monitoring`` and logs one INFO line with its figures. Nothing the
flow publishes (artifacts, events, the webhook, MLflow, its return value)
carries ticket text or customer or agent ids: figures, versions, category
and segment names only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from triage_ml import registry, store
from triage_ml.errors import TrainingDataError
from triage_ml.flows._common import Stopwatch, open_store, ticket_text_withheld
from triage_ml.monitoring import actions, drift, live, shadow, tiers
from triage_ml.monitoring.actions import Alert
from triage_ml.registry import lineage
from triage_ml.settings import Settings
from triage_ml.store import thresholds as threshold_queries
from triage_ml.training.evaluation import known_categories

IO_RETRIES: dict[str, Any] = {"retries": 3, "retry_delay_seconds": [2, 5, 15]}
HELD_OUT_METRIC = "test_category_macro_f1"


@dataclass(frozen=True)
class Champion:
    """The model being judged: its version, the run that trained it, its held-out macro-F1."""

    version: str
    run_id: str
    held_out_f1: float | None


@task(task_run_name="open-mlflow", cache_policy=NO_CACHE, **IO_RETRIES)
def open_workspace(settings: Settings) -> MlflowClient:
    """Point MLflow at the workspace (tracking server I/O: retried)."""
    return registry.use_workspace(settings)


@task(task_run_name="find-champion", cache_policy=NO_CACHE)
def find_champion(engine: Engine, client: MlflowClient, settings: Settings) -> Champion:
    """The champion's version, run and held-out macro-F1.

    Raises:
        TrainingDataError: the store holds no ticket at all.
        RegistryError: no version carries the champion alias.
    """
    with engine.connect() as conn:
        if store.count_rows(conn, store.tickets) == 0:
            raise TrainingDataError(actions.EMPTY_STORE)
    version = registry.alias_version(client, settings.model_name, settings.champion_alias)
    if version is None:
        raise registry.no_champion_error(settings)
    run_id = client.get_model_version(settings.model_name, version).run_id
    held_out = client.get_run(run_id).data.metrics.get(HELD_OUT_METRIC)
    get_run_logger().info(
        "champion: %s version %s, held-out macro-F1 %s",
        settings.model_name,
        version,
        "unknown" if held_out is None else f"{held_out:.3f}",
    )
    return Champion(version, run_id, held_out)


@task(task_run_name="read-served", cache_policy=NO_CACHE, **IO_RETRIES)
def read_served(engine: Engine, settings: Settings, as_of: datetime) -> pd.DataFrame:
    """Predictions served in the lookback, with their tickets' final labels (database I/O)."""
    since = as_of - timedelta(days=settings.monitor.lookback_days)
    with ticket_text_withheld(settings, "read-served"):
        frame = live.joined(engine, since)
    when = pd.to_datetime(frame["created_at"], utc=True).fillna(
        pd.to_datetime(frame["scored_at"], utc=True)
    )
    frame = frame[~(when > pd.Timestamp(as_of, tz="UTC"))]
    get_run_logger().info(
        "served: %d predictions of %d version(s) in the last %d days, %d with a final category",
        len(frame),
        frame["model_version"].nunique() if len(frame) else 0,
        settings.monitor.lookback_days,
        int(frame["final_category"].notna().sum()) if len(frame) else 0,
    )
    return frame


@task(task_run_name="live-quality", cache_policy=NO_CACHE)
def measure_live_quality(served: pd.DataFrame, settings: Settings) -> live.LiveReport:
    """Live quality per version and window (see :func:`live.live_quality`)."""
    report = live.live_quality(served, settings.monitor.window, settings.monitor.min_labels)
    windows = [w for ws in report.versions.values() for w in ws]
    get_run_logger().info(
        "live quality: %d %s window(s) over %d version(s), %d with enough labels (>= %d)",
        len(windows),
        settings.monitor.window,
        len(report.versions),
        sum(w.enough for w in windows),
        settings.monitor.min_labels,
    )
    return report


@task(task_run_name="log-live-quality", cache_policy=NO_CACHE, **IO_RETRIES)
def log_live_quality(
    client: MlflowClient, settings: Settings, report: live.LiveReport, as_of: datetime
) -> int:
    """Log each version's ended windows on the run that trained it (MLflow I/O; idempotent)."""
    logged = 0
    for version, windows in report.versions.items():
        try:
            run_id = client.get_model_version(settings.model_name, version).run_id
        except MlflowException:
            get_run_logger().warning("version %s is not in the registry: not logged", version)
            continue
        ended = live.closed(windows, report.window, pd.Timestamp(as_of, tz="UTC"))
        logged += live.log_to_mlflow(client, run_id, ended)
    get_run_logger().info(
        "MLflow: %d live metric values logged on %d run(s)", logged, len(report.versions)
    )
    return logged


@task(task_run_name="drift", cache_policy=NO_CACHE)
def measure_drift(
    engine: Engine, client: MlflowClient, settings: Settings, champion: Champion, as_of: datetime
) -> drift.DriftReport:
    """Recent tickets against the champion's training tickets (see :func:`drift.measure`)."""
    with ticket_text_withheld(settings, "drift"):
        reference = drift.reference(engine, client, settings, champion.version)
        current, labels = drift.recent(engine, champion.version, settings.monitor, as_of)
        model = registry.load_verified(
            client, settings.model_name, champion.version, settings.tracking_uri
        )
        classes = sorted(known_categories(model) or [])
        held_out = lineage.held_out_answers(client, settings.model_name, champion.version)
        production = drift.production_reference(
            engine, champion.version, settings.monitor, reference, as_of
        )
        report = drift.measure(
            reference, current, model, classes, labels, settings.monitor, held_out, production
        )
    named = [f"{f['name']} {f['psi']:.2f}" for f in report.figures]
    get_run_logger().info(
        "drift: %s; PSI %s; new labels: %s",
        "DRIFTED" if report.drifted else (report.message or "no drift"),
        ", ".join(named) or "-",
        ", ".join(report.new_labels) or "none",
    )
    return report


@task(task_run_name="live-tier-thresholds", cache_policy=NO_CACHE, **IO_RETRIES)
def reestimate_tiers(
    engine: Engine, settings: Settings, champion: Champion, served: pd.DataFrame
) -> tiers.Estimate:
    """Re-estimate the champion's tier thresholds on its live labeled rows, and store them.

    Only classes with ``automation.min_live_rows`` labeled predictions are re-estimated
    (:func:`tiers.live_estimate`); the others keep the thresholds they had.
    """
    rows = champion_rows(served, champion.version)
    estimate = tiers.live_estimate(rows, settings.automation)
    with engine.begin() as conn:
        written = threshold_queries.write_thresholds(
            conn,
            champion.version,
            estimate.thresholds,
            threshold_queries.LIVE,
            estimate.rows,
            estimate.precision_low,
        )
    auto = estimate.thresholds.get("auto", {})
    get_run_logger().info(
        "tiers: live thresholds of %d class(es) stored (%d rows); auto reachable for %d",
        len(estimate.rows),
        written,
        sum(value is not None for value in auto.values()),
    )
    return estimate


def champion_rows(served: pd.DataFrame, version: str) -> pd.DataFrame:
    """The rows of ``served`` that ``version`` answered."""
    if served.empty:
        return served
    return served[served["model_version"].astype(str) == str(version)]


@task(task_run_name="shadow", cache_policy=NO_CACHE)
def compare_shadow(
    client: MlflowClient, engine: Engine, settings: Settings, champion: Champion
) -> dict[str, Any]:
    """The shadow challenger against the champion on live rows; promoted on a win when
    ``monitor.promote_on_live`` (see :mod:`triage_ml.monitoring.shadow`)."""
    challenger = shadow.challenger_version(client, settings)
    if challenger is None:
        get_run_logger().info("shadow: no challenger")
        return {"challenger": None, "promoted": None}
    comparison = shadow.compare(engine, settings, champion.version, challenger)
    decision = comparison.decision
    promoted = None
    if settings.monitor.promote_on_live and decision is not None and decision.promote:
        promoted = shadow.promote(client, engine, settings, comparison)
    get_run_logger().info(
        "shadow: version %s on %d labeled live rows: %s%s",
        challenger,
        comparison.rows,
        comparison.message or decision.reason,
        "; PROMOTED to champion" if promoted else "",
    )
    return {**comparison.as_dict(), "promoted": promoted}


def retrain_held(parallel: dict[str, Any]) -> str | None:
    """Why no retraining should start now because of the parallel run, or None.

    A challenger just promoted replaces the champion that slipped; one still collecting
    live evidence would be replaced by the retraining before it is judged.
    """
    challenger = parallel.get("challenger")
    if parallel.get("promoted"):
        return f"version {challenger} was just promoted on live evidence"
    if challenger is not None and parallel.get("decision") is None:
        return f"shadow challenger version {challenger} is still collecting live evidence"
    return None


@task(task_run_name="judge", cache_policy=NO_CACHE)
def judge_alerts(
    report: live.LiveReport,
    drifted: drift.DriftReport,
    champion: Champion,
    settings: Settings,
) -> list[Alert]:
    """The alerts the figures call for (see :func:`actions.judge`)."""
    alerts = actions.judge(
        report, drifted, champion.held_out_f1, settings.monitor, champion.version
    )
    get_run_logger().info(
        "alerts: %s", "; ".join(alert.message for alert in alerts) if alerts else "none"
    )
    return alerts


@task(task_run_name="notify", cache_policy=NO_CACHE)
def notify_alerts(
    engine: Engine, settings: Settings, alerts: list[Alert], champion: Champion
) -> dict[str, Any]:
    """Tell the webhook and Prefect's event feed, and audit the alerts ("monitor-alert")."""
    told = actions.notify(alerts, settings.monitor, settings.model_name, champion.version)
    events = actions.emit_events(alerts, settings.model_name, champion.version)
    actions.record_alerts(engine, settings, alerts, champion.version)
    get_run_logger().info(
        "notify: %d alert(s); webhook %s; %d Prefect event(s)", len(alerts), told["status"], events
    )
    if told["status"] == "failed":
        get_run_logger().warning("the alert webhook %s failed: %s", told["webhook"], told["error"])
    return {**told, "events": events}


def start_retrain(
    engine: Engine,
    settings: Settings,
    alerts: list[Alert],
    champion: Champion,
    parallel: dict[str, Any],
) -> dict[str, Any]:
    """Start the retraining early when the alerts call for it (:func:`actions.trigger_retrain`).

    Not a task: an inline retraining runs its own tasks, in the monitor's flow run.
    """
    held = retrain_held(parallel)
    started = actions.trigger_retrain(engine, settings, alerts, champion.version, held)
    get_run_logger().info(
        "retrain: %s (%s, trigger %s)",
        "TRIGGERED" if started["triggered"] else "not triggered",
        started["why"],
        started["mode"],
    )
    return started


def automation_rows(
    rows: pd.DataFrame, estimate: tiers.Estimate, settings: Settings
) -> list[dict[str, Any]]:
    """Per class: live thresholds, automation coverage at each tier's precision, measured precision.

    Coverage is the share of a class's labeled tickets that reach a tier whose
    threshold is set on these rows for that tier's target precision; measured
    precision is that of the tiers the class's predictions were served with.
    """
    automation = settings.automation
    truth, predicted, confidence = tiers.live_rows(rows)
    classes = sorted(set(truth.tolist()) | set(predicted.tolist()))
    at = {
        tier: tiers.coverage_at(classes, truth, predicted, confidence, target, automation)
        for tier, target in tiers.targets(automation).items()
    }
    measured = tiers.measured_precision(rows).set_index(["category", "tier"])["precision"]
    out = []
    for name in classes:
        out.append(
            {
                "category": name,
                "labeled": int((truth == name).sum()),
                **{
                    f"{tier}_threshold": _rounded(estimate.thresholds.get(tier, {}).get(name))
                    for tier in tiers.TARGET_TIERS
                },
                **{
                    f"coverage_at_{target:g}": _rounded(at[tier][name])
                    for tier, target in tiers.targets(automation).items()
                },
                **{
                    f"{tier}_precision": _rounded(measured.get((name, tier)))
                    for tier in tiers.TARGET_TIERS
                },
            }
        )
    return out


def _rounded(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return round(float(value), 3)


def summary(
    settings: Settings,
    champion: Champion,
    report: live.LiveReport,
    drifted: drift.DriftReport,
    coverage: list[dict[str, Any]],
    acted: dict[str, Any],
) -> dict[str, Any]:
    """The run's JSON-able result: what the CLI prints and the artifacts show.

    ``acted``: the live metric values logged to MLflow, the shadow comparison, the alerts
    (:class:`Alert`), whom they were told to, and what the retraining trigger did.
    """
    return {
        "model": settings.model_name,
        "champion": asdict(champion),
        "window": settings.monitor.window,
        "live": live.table(report),
        "drift": {
            "drifted": drifted.drifted,
            "message": drifted.message,
            "figures": drift.table(drifted),
            "segments": drift.segment_table(drifted),
            "campaigns": drift.campaign_table(drifted),
            "new_labels": list(drifted.new_labels),
        },
        "automation": coverage,
        **acted,
        "alerts": [alert.as_dict() for alert in acted["alerts"]],
    }


@task(task_run_name="publish", cache_policy=NO_CACHE)
def publish(result: dict[str, Any]) -> None:
    """The run's Prefect artifacts: live quality, drift, campaigns, automation and the alerts."""
    create_table_artifact(
        key="live-quality",
        table=result["live"] or [{"note": "no served predictions in the lookback"}],
        description=f"Live quality per model version and {result['window']}",
    )
    create_table_artifact(
        key="drift",
        table=result["drift"]["figures"] + result["drift"]["segments"] or [{"note": "-"}],
        description="Recent tickets against the champion's training tickets (PSI, p-value)",
    )
    create_table_artifact(
        key="campaigns",
        table=result["drift"]["campaigns"] or [{"note": "no recent ticket carries a campaign"}],
        description="Recent tickets per campaign: volume, share, top categories, mean sentiment",
    )
    create_table_artifact(
        key="automation-coverage",
        table=result["automation"] or [{"note": "no labeled live rows of the champion yet"}],
        description="Per class: live tier thresholds, coverage at each target, measured precision",
    )
    create_markdown_artifact(key="monitor-alerts", markdown=actions.alerts_markdown(result))
    get_run_logger().info(
        "published: %d live row(s), %d drift row(s), %d class(es), %d alert(s)",
        len(result["live"]),
        len(result["drift"]["figures"]),
        len(result["automation"]),
        len(result["alerts"]),
    )


def as_of_or_now(as_of: datetime | None) -> datetime:
    """``as_of`` as naive UTC (the store's convention); the current time when None."""
    if as_of is None:
        return store.utcnow()
    return store.naive_utc(as_of)


@flow(name="monitor")
def monitor(settings: Settings | None = None, as_of: datetime | None = None) -> dict[str, Any]:
    """Judge the champion in production, and act: alert, and retrain early when it slipped.

    Args:
        settings: the workspace; None builds them from this machine's environment.
        as_of: the moment the lookback, the recent tickets and the ended windows count back
            from (naive means UTC): a run for a past day, or a replay; the current time when
            None. The cool-down always reads the clock.

    Returns:
        The champion, live figures per version and window, drift figures and segments,
        automation coverage per class, alerts, who was told, and whether a retraining started.
    """
    watch, settings = Stopwatch(), settings or Settings()
    engine, client = open_store(settings), open_workspace(settings)
    champion = find_champion(engine, client, settings)
    as_of = as_of_or_now(as_of)
    served = read_served(engine, settings, as_of)
    report = measure_live_quality(served, settings)
    logged = log_live_quality(client, settings, report, as_of)
    drifted = measure_drift(engine, client, settings, champion, as_of)
    estimate = reestimate_tiers(engine, settings, champion, served)
    coverage = automation_rows(
        tiers.labeled(champion_rows(served, champion.version)), estimate, settings
    )
    parallel = compare_shadow(client, engine, settings, champion)
    alerts = judge_alerts(report, drifted, champion, settings)
    told = notify_alerts(engine, settings, alerts, champion)
    started = start_retrain(engine, settings, alerts, champion, parallel)
    acted = {"live_metrics_logged": logged, "shadow": parallel, "alerts": alerts, "notify": told}
    result = summary(settings, champion, report, drifted, coverage, {**acted, "retrain": started})
    publish(result)
    return {**result, "seconds": watch.seconds()}
