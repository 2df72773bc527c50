"""Production-loop command ``monitor``: the champion's live quality, drift, alerts and trigger.

The logic is the ``monitor`` flow (``flows/monitor.py``); this module checks the workspace
first, runs the flow and renders its result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Group
from rich.text import Text

from triage_ml.cli import render
from triage_ml.cli.options import ConfigFile, JsonFlag
from triage_ml.cli.runner import invoke

if TYPE_CHECKING:
    from triage_ml.settings import Settings

PANEL = "Production loop"
LIVE_COLUMNS = (
    "version",
    "window",
    "predictions",
    "labeled",
    "accuracy",
    "macro_f1",
    "override",
    "review",
    "unlabeled",
    "note",
)
DRIFT_COLUMNS = (
    "figure",
    "psi",
    "p_value",
    "drifted",
    "basis",
    "reference_rows",
    "current_rows",
    "note",
)
SEGMENT_COLUMNS = ("segment", "value", "basis", "figure", "psi", "p_value", "drifted")
CAMPAIGN_COLUMNS = ("campaign_id", "tickets", "share", "top_categories", "mean_sentiment")


# ---- logic ----------------------------------------------------------------------


def run_monitor(settings: Settings) -> dict[str, Any]:
    """Run the monitor flow once; an empty store or no champion is refused before Prefect starts."""
    from triage_ml.cli import preflight

    preflight.require_tickets(settings)
    preflight.require_champion(settings, settings.champion_alias)
    from triage_ml.scoring.startup import import_skops_first

    import_skops_first()
    from triage_ml.flows.monitor import monitor

    return monitor(settings=settings)


# ---- rendering ------------------------------------------------------------------


def rows_table(title: str, columns: Sequence[str], rows: list[dict[str, Any]]) -> Any:
    """A rich table of ``rows`` (dicts) in ``columns``; a line saying so when there is none."""
    if not rows:
        return Text(f"{title}: none")
    return render.table(title, columns, ([row.get(c) for c in columns] for row in rows))


def automation_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The automation table's columns, as the flow named them (targets come from settings)."""
    return list(rows[0]) if rows else []


def render_monitor(result: dict[str, Any]) -> Group:
    """Live quality per version and window, drift and its segments, automation, alerts, trigger."""
    champion = result["champion"]
    held_out = render.figure(champion.get("held_out_f1"))
    drift = result["drift"]
    verdict = "DRIFTED" if drift["drifted"] else (drift["message"] or "no drift")
    parts: list[Any] = [
        Text(
            f"champion: {result['model']} version {champion['version']} (held-out macro-F1 "
            f"{held_out})"
        ),
        rows_table(f"Live quality per {result['window']}", LIVE_COLUMNS, result["live"]),
        rows_table(f"Drift: {verdict}", DRIFT_COLUMNS, drift["figures"]),
        rows_table("Drift by segment", SEGMENT_COLUMNS, drift["segments"]),
        rows_table("Recent tickets by campaign", CAMPAIGN_COLUMNS, drift["campaigns"]),
        rows_table(
            "Automation per class (live)",
            automation_columns(result["automation"]),
            result["automation"],
        ),
        alerts_text(result),
    ]
    return Group(*parts)


def alerts_text(result: dict[str, Any]) -> Text:
    """The alerts, the webhook's outcome, the shadow run and what the trigger did."""
    lines = [f"alert {alert['kind']}: {alert['message']}" for alert in result["alerts"]]
    lines = lines or ["alerts: none"]
    told = result["notify"]
    webhook = told.get("webhook") or "not configured"
    error = f" ({told['error']})" if told.get("error") else ""
    lines.append(f"webhook {webhook}: {told['status']}{error}")
    parallel = result.get("shadow") or {}
    if parallel.get("challenger"):
        outcome = "promoted" if parallel.get("promoted") else (parallel.get("message") or "judged")
        lines.append(f"shadow challenger version {parallel['challenger']}: {outcome}")
    started = result["retrain"]
    state = "TRIGGERED" if started["triggered"] else "not triggered"
    lines.append(f"retrain: {state} ({started['why']})")
    lines.append(f"in {result['seconds']:.1f} s")
    return Text("\n".join(lines))


# ---- commands ---------------------------------------------------------------------


def monitor_command(
    ctx: typer.Context, as_json: JsonFlag = False, config: ConfigFile = None
) -> None:
    """Judge the champion on live labels and drift; alert, and retrain early if it slipped."""
    invoke(ctx, run_monitor, render_monitor, as_json, config)


def register(app: typer.Typer) -> None:
    """Add the ``monitor`` command to the ``triage-ml`` app."""
    app.command(
        "monitor",
        rich_help_panel=PANEL,
        epilog="Example: triage-ml monitor --json",
    )(monitor_command)
