"""Operations commands: ``config``, ``db``, ``deploy`` and ``serve-flows``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from triage_ml.cli import render
from triage_ml.cli.options import ConfigFile, JsonFlag
from triage_ml.cli.runner import invoke, options

if TYPE_CHECKING:
    from triage_ml.settings import Settings

PANEL = "Operations"
config_app = typer.Typer(help="The effective configuration.")
db_app = typer.Typer(help="The ticket store's schema revision; upgrade it explicitly.")


# ---- logic ----------------------------------------------------------------------


def show_config(settings: Settings, config_file: Path | None) -> dict[str, Any]:
    """Every setting's effective value, credentials masked, and the files it was read from."""
    from triage_ml.settings import effective_config

    return effective_config(settings, config_file=config_file)


def store_revision(settings: Settings, upgrade: bool) -> dict[str, Any]:
    """The store's schema revision, after migrating it to the head when ``upgrade``."""
    from triage_ml import store
    from triage_ml.store import schema

    engine = store.create_engine(settings.store_url)
    try:
        with store.reachable(engine):
            if upgrade:
                before, revision = schema.upgrade(engine)
            else:
                with engine.connect() as conn:
                    before = revision = schema.current_revision(conn)
    finally:
        engine.dispose()
    return {
        "store": store.safe_url(engine.url),
        "revision_before": before,
        "revision": revision,
        "head": schema.HEAD,
        "up_to_date": revision == schema.HEAD,
    }


def deploy(settings: Settings) -> dict[str, Any]:
    """Register the work pool, concurrency limits and scheduled deployments on the Prefect API."""
    from triage_ml.flows import deployments

    return deployments.register(settings)


def serve_flows(settings: Settings) -> dict[str, Any]:
    """Run the scheduled deployments in this process with ``prefect.serve`` until interrupted."""
    from triage_ml.flows import deployments

    names = [spec.full_name for spec in deployments.deployment_specs(settings)]
    deployments.serve(
        settings,
        announce=lambda: typer.echo(f"serving {', '.join(names)} (Ctrl-C stops)", err=True),
    )
    return {"served": names, "stopped": True}


# ---- commands ---------------------------------------------------------------------


@config_app.command("show", epilog="Example: triage-ml --config triage.toml config show")
def config_show(ctx: typer.Context, as_json: JsonFlag = False, config: ConfigFile = None) -> None:
    """Every setting's effective value and where it came from (credentials masked)."""
    given = options(ctx, as_json, config)[1]
    file = given.resolve() if given is not None else None
    invoke(ctx, lambda settings: show_config(settings, file), render.config, as_json, config)


@db_app.command("current", epilog="Example: triage-ml db current")
def db_current(ctx: typer.Context, as_json: JsonFlag = False, config: ConfigFile = None) -> None:
    """The store's schema revision and whether it is the newest."""
    invoke(ctx, lambda settings: store_revision(settings, False), render.db, as_json, config)


@db_app.command("upgrade", epilog="Example: triage-ml db upgrade")
def db_upgrade(ctx: typer.Context, as_json: JsonFlag = False, config: ConfigFile = None) -> None:
    """Migrate the store to the newest schema (every command also does on connect)."""
    invoke(ctx, lambda settings: store_revision(settings, True), render.db, as_json, config)


def deploy_command(
    ctx: typer.Context, as_json: JsonFlag = False, config: ConfigFile = None
) -> None:
    """Register the work pool and the scheduled deployments on TRIAGE_PREFECT_API_URL."""
    invoke(ctx, deploy, render.deploy, as_json, config)


def serve_flows_command(
    ctx: typer.Context, as_json: JsonFlag = False, config: ConfigFile = None
) -> None:
    """Run the scheduled deployments in this process until Ctrl-C (needs TRIAGE_PREFECT_API_URL)."""
    invoke(ctx, serve_flows, render.served_flows, as_json, config)


def register(app: typer.Typer) -> None:
    """Add the operations commands to the ``triage-ml`` app."""
    app.add_typer(config_app, name="config", rich_help_panel=PANEL)
    app.add_typer(db_app, name="db", rich_help_panel=PANEL)
    app.command(
        "deploy",
        rich_help_panel=PANEL,
        epilog="Example: TRIAGE_PREFECT_API_URL=http://prefect:4200/api triage-ml deploy",
    )(deploy_command)
    app.command("serve-flows", rich_help_panel=PANEL, epilog="Example: triage-ml serve-flows")(
        serve_flows_command
    )
