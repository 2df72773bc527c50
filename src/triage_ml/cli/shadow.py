"""Production-loop commands: ``shadow start VERSION``, ``shadow status``, ``shadow stop``.

A shadow challenger scores every new ticket beside the champion; its answers
are stored apart and never returned. The logic is in ``monitoring.shadow``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.text import Text

from triage_ml.cli import render
from triage_ml.cli.options import ConfigFile, JsonFlag, VersionArgument
from triage_ml.cli.runner import invoke

if TYPE_CHECKING:
    from triage_ml.settings import Settings

PANEL = "Production loop"
shadow_app = typer.Typer(
    help="A parallel run: a challenger version scores beside the champion, its answers kept apart."
)
STARTED, STOPPED = (
    "shadow run started from the command line",
    "shadow run stopped from the command line",
)
Reason = Annotated[str, typer.Option(help="Why; kept in the audit trail.")]


# ---- logic ----------------------------------------------------------------------


def start(settings: Settings, version: str, reason: str) -> dict[str, Any]:
    """Give ``version`` the challenger alias (audited)."""
    from triage_ml import registry, store
    from triage_ml.monitoring import shadow

    client = registry.use_workspace(settings)
    with store.opened(settings.store_url) as engine:
        return shadow.start(client, engine, settings, version, reason)


def stop(settings: Settings, reason: str) -> dict[str, Any]:
    """Remove the challenger alias (audited); its shadow answers stay stored."""
    from triage_ml import registry, store
    from triage_ml.monitoring import shadow

    client = registry.use_workspace(settings)
    with store.opened(settings.store_url) as engine:
        return shadow.stop(client, engine, settings, reason)


def status(settings: Settings) -> dict[str, Any]:
    """The shadow challenger, its answers, and the live comparison with the champion."""
    from triage_ml import registry, store
    from triage_ml.monitoring import shadow

    client = registry.use_workspace(settings)
    with store.opened(settings.store_url) as engine:
        return shadow.status(client, engine, settings)


# ---- rendering ------------------------------------------------------------------


def render_move(result: dict[str, Any]) -> Text:
    """A started or stopped shadow run."""
    if result["action"] == "shadow-stop":
        return Text(
            f"shadow run of version {result['challenger']} stopped "
            f"({result['shadow_predictions']} shadow predictions kept); reason: {result['reason']}"
        )
    replaced = f", replacing version {result['replaced']}" if result["replaced"] else ""
    return Text(
        f"version {result['challenger']} now scores beside champion version "
        f"{render.figure(result['champion'])}{replaced}; reason: {result['reason']}"
    )


def render_status(result: dict[str, Any]) -> Group:
    """The challenger line, its counts, and the comparison's verdict and figures."""
    if result["challenger"] is None:
        return Group(
            Text(
                f"{result['model_name']}: no shadow challenger "
                "(start one with `triage-ml shadow start VERSION`)"
            )
        )
    head = Text(
        f"{result['model_name']}: version {result['challenger']} shadows champion version "
        f"{render.figure(result['champion'])} since {render.local_time(result['since'])}; "
        f"{result['shadow_predictions']} shadow predictions, {render.figure(result['paired'])} "
        f"answered by both, {render.figure(result['labeled_rows'])} of them labeled "
        f"(the comparison needs {result['min_labels']})"
    )
    comparison = result["comparison"]
    if comparison is None or comparison["decision"] is None:
        why = "no champion to compare with" if comparison is None else comparison["message"]
        return Group(head, Text(f"live comparison: {why}"))
    decision = comparison["decision"]
    figures = render.metrics_table(
        "live figures (same rows)",
        {"challenger": decision["challenger"], "champion": decision["champion"]},
    )
    return Group(head, Text(f"live comparison: {decision['reason']}"), figures)


# ---- commands ---------------------------------------------------------------------


@shadow_app.command("start", epilog="Example: triage-ml shadow start 7")
def start_command(
    ctx: typer.Context,
    version: VersionArgument,
    reason: Reason = STARTED,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Make a registered version the shadow challenger: it scores beside the champion."""
    invoke(
        ctx, lambda settings: start(settings, str(version), reason), render_move, as_json, config
    )


@shadow_app.command("status", epilog="Example: triage-ml shadow status --json")
def status_command(
    ctx: typer.Context, as_json: JsonFlag = False, config: ConfigFile = None
) -> None:
    """The shadow challenger, its answers, and how it compares with the champion on live labels."""
    invoke(ctx, status, render_status, as_json, config)


@shadow_app.command("stop", epilog="Example: triage-ml shadow stop --reason 'worse on refunds'")
def stop_command(
    ctx: typer.Context,
    reason: Reason = STOPPED,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """End the parallel run: the challenger alias is removed, its answers stay stored."""
    invoke(ctx, lambda settings: stop(settings, reason), render_move, as_json, config)


def register(app: typer.Typer) -> None:
    """Add the ``shadow`` command group to the ``triage-ml`` app."""
    app.add_typer(shadow_app, name="shadow", rich_help_panel=PANEL)
