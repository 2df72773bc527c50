"""Model commands: ``retrain``, ``evaluate``, ``status``, ``audit``, ``promote``, ``rollback``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from triage_ml.cli import render
from triage_ml.cli.options import (
    CategoryColumn,
    ConfigFile,
    CreatedAtColumn,
    IdColumn,
    JsonFlag,
    ModelChoice,
    PriorityColumn,
    TextColumns,
    VersionArgument,
    column_mapping,
    counted,
)
from triage_ml.cli.runner import invoke
from triage_ml.errors import TriageError

if TYPE_CHECKING:
    from triage_ml.ingest.mapping import ColumnMapping
    from triage_ml.settings import Settings

PANEL = "Models and the champion"
Reason = Annotated[str, typer.Option(help="Why; kept in the audit trail.", show_default=False)]


# ---- logic ----------------------------------------------------------------------


def retrain(settings: Settings) -> dict[str, Any]:
    """Run the retraining flow and report its promotion decision.

    The store is checked before the flow module (and with it Prefect, MLflow and
    scikit-learn) is imported, so an empty store is refused in about a second.
    """
    from triage_ml import routing
    from triage_ml.cli import preflight

    shares = preflight.require_training_data(settings)
    warnings = routing.route_warnings(shares, settings.routes, settings.default_route)
    from triage_ml.flows.retrain import monthly_retrain

    record = monthly_retrain(settings=settings)
    return {
        "promoted": record["promote"],
        "reason": record["reason"],
        "candidate": record["candidate"],
        "challenger_version": record["challenger_version"],
        "champion_version_before": record["champion_version"],
        "champion_version": record["champion_after"],
        "challenger_metrics": record["challenger"],
        "champion_metrics": record["champion"],
        "interval": record["interval"],
        "run_id": record["run_id"],
        "warnings": warnings,
    }


def evaluate_file(
    settings: Settings, path: Path, model: str, mapping: ColumnMapping
) -> dict[str, Any]:
    """Metrics of a registered model (``champion`` or a version) on a labeled file."""
    from triage_ml import registry
    from triage_ml.registry import lineage
    from triage_ml.training import evaluation

    client = registry.use_workspace(settings)
    loaded, version = registry.load_version(settings, model)
    trained = lineage.trained_on(client, settings.model_name, version)
    return {
        "model_version": version,
        **evaluation.evaluate_file(loaded, path, mapping, settings, trained.ticket_ids),
    }


def workspace_status(settings: Settings) -> dict[str, Any]:
    """The champion, its metrics, the last runs and decisions, the store's counts, and warnings."""
    from triage_ml import registry
    from triage_ml.registry import status

    summary = status.workspace_status(settings)
    challenger = registry.alias_version(
        registry.client(settings), settings.model_name, settings.challenger_alias
    )
    return {**summary, "challenger": challenger, "warnings": status_warnings(settings)}


def render_status(result: dict[str, Any]) -> Any:
    """``render.status``, and the shadow challenger's line when there is one."""
    shown = render.status(result)
    if result.get("challenger") is None:
        return shown
    from rich.console import Group
    from rich.text import Text

    line = f"shadow challenger: version {result['challenger']} (see `triage-ml shadow status`)"
    return Group(shown, Text(line))


def status_warnings(settings: Settings) -> list[str]:
    """What ``status`` warns about: categories of the labeled tickets that no route names."""
    from triage_ml import routing, store

    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        shares = store.category_shares(conn)
    return routing.route_warnings(shares, settings.routes, settings.default_route)


def audit_trail(settings: Settings, limit: int) -> dict[str, Any]:
    """The newest champion decisions, without their bulky details."""
    from triage_ml import store

    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        rows = store.recent_decisions(conn, limit)
    return {"decisions": [{k: v for k, v in row.items() if k != "details"} for row in rows]}


def rollback(settings: Settings, reason: str) -> dict[str, Any]:
    """Point champion back at the previous champion (audited)."""
    from triage_ml.flows.promotion import rollback_champion

    return rollback_champion(reason, settings=settings)


def promote(settings: Settings, version: int, reason: str, force: bool) -> dict[str, Any]:
    """Make a registered version champion without the gate (audited); refused without ``force``."""
    if not force:
        raise TriageError(
            "promote bypasses the gate and needs --force; "
            "to promote through the gate, run `triage-ml retrain`"
        )
    from triage_ml.flows.promotion import force_promote

    return force_promote(str(version), reason, settings=settings)


# ---- commands ---------------------------------------------------------------------


def retrain_command(
    ctx: typer.Context, as_json: JsonFlag = False, config: ConfigFile = None
) -> None:
    """Run the retraining flow: fit the candidates, gate the best, promote it if it wins."""
    invoke(ctx, retrain, render.retrain, as_json, config)


def evaluate_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Labeled CSV or Parquet file.", show_default=False)],
    model: ModelChoice = "champion",
    text_columns: TextColumns = None,
    category_column: CategoryColumn = None,
    priority_column: PriorityColumn = None,
    id_column: IdColumn = None,
    created_at_column: CreatedAtColumn = None,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Metrics of a registered model on a labeled file."""

    def action(settings: Settings) -> dict[str, Any]:
        from triage_ml.cli import preflight

        # Before the mapping, whose module loads pandera: no champion is refused in a second.
        preflight.require_champion(settings, model)
        mapping = column_mapping(
            text_columns, category_column, priority_column, id_column, created_at_column
        )
        return evaluate_file(settings, path, model, mapping)

    invoke(ctx, action, render.evaluate, as_json, config)


def status_command(
    ctx: typer.Context, as_json: JsonFlag = False, config: ConfigFile = None
) -> None:
    """The champion, its metrics, recent runs and decisions, and the store's counts."""
    invoke(ctx, workspace_status, render_status, as_json, config)


def audit_command(
    ctx: typer.Context,
    limit: Annotated[int, counted(1, "At most this many decisions.")] = 20,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Champion decisions, newest first: gate, rollback, forced promotion, revert, aborted run."""
    invoke(ctx, lambda settings: audit_trail(settings, limit), render.audit, as_json, config)


def rollback_command(
    ctx: typer.Context, reason: Reason, as_json: JsonFlag = False, config: ConfigFile = None
) -> None:
    """Point champion back at the previous champion, in one guarded and audited step."""
    invoke(ctx, lambda settings: rollback(settings, reason), render.alias_move, as_json, config)


def promote_command(
    ctx: typer.Context,
    version: VersionArgument,
    reason: Reason,
    force: Annotated[
        bool, typer.Option("--force", help="Required: this bypasses the gate.")
    ] = False,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Make a registered version champion without the gate (a human override, audited)."""
    invoke(
        ctx,
        lambda settings: promote(settings, version, reason, force),
        render.alias_move,
        as_json,
        config,
    )


def register(app: typer.Typer) -> None:
    """Add the model commands to the ``triage-ml`` app."""
    app.command("retrain", rich_help_panel=PANEL, epilog="Example: triage-ml retrain --json")(
        retrain_command
    )
    app.command(
        "evaluate",
        rich_help_panel=PANEL,
        epilog="Example: triage-ml evaluate data/tickets.csv --model 3",
    )(evaluate_command)
    app.command("status", rich_help_panel=PANEL, epilog="Example: triage-ml status")(status_command)
    app.command("audit", rich_help_panel=PANEL, epilog="Example: triage-ml audit --limit 5")(
        audit_command
    )
    app.command(
        "rollback",
        rich_help_panel=PANEL,
        epilog="Example: triage-ml rollback --reason 'misroutes billing'",
    )(rollback_command)
    app.command(
        "promote",
        rich_help_panel=PANEL,
        epilog="Example: triage-ml promote 7 --force --reason 'hotfix'",
    )(promote_command)
