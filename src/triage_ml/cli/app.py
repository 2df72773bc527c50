"""The ``triage-ml`` command line: a Typer app, one module per command group.

Every command accepts ``--json`` and then prints exactly one JSON object on
stdout; without it, readable text. Everything else (Prefect and MLflow logs)
goes to stderr. A problem the user can fix, or a bad flag, ends the command
with one ``error:`` line and exit code 2.
"""

from __future__ import annotations

from typing import Annotated

import typer

from triage_ml import __version__
from triage_ml.cli import api, data, demo, models, monitoring, ops, review, scoring, shadow
from triage_ml.cli.options import ConfigFile, JsonFlag
from triage_ml.cli.runner import RootOptions

PROG = "triage-ml"

app = typer.Typer(
    name=PROG,
    help="Workflow-orchestrated retraining of a support-ticket triage model.",
    epilog="Example: triage-ml demo, then triage-ml status",
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    invoke_without_command=True,
)


def show_version(value: bool) -> None:
    """Print the version and stop, before any command runs."""
    if value:
        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Print the traceback of an unexpected error, and Prefect's, on stderr "
            "(they always go to $TRIAGE_HOME/logs/triage-ml.log).",
        ),
    ] = False,
) -> None:
    """Workflow-orchestrated retraining of a support-ticket triage model."""
    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        ctx.fail("missing command (see `triage-ml --help`)")
    ctx.obj = RootOptions(json=as_json, config=config, debug=debug)


# One help panel per group, in the order a newcomer meets them.
demo.register(app)
data.register(app)
scoring.register(app)
models.register(app)
monitoring.register(app)
shadow.register(app)
review.register(app)
api.register(app)
ops.register(app)


def usage_error_line(exc: typer.TyperException) -> str:
    """A usage error on one line, naming the command it concerns."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    where = f"{ctx.command_path}: " if ctx is not None and ctx.command_path != PROG else ""
    return f"error: {where}{message}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``triage-ml``; returns the process exit code.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        0 on success, 2 after a one-line error, 1 after an unexpected one, 130 when
        interrupted, 128 + its number when stopped by SIGTERM or SIGHUP.

    Raises:
        SystemExit: with code 2 after one ``error:`` line for a bad flag or argument.
    """
    command = typer.main.get_command(app)
    try:
        outcome = command.main(args=argv, prog_name=PROG, standalone_mode=False)
    except typer.TyperException as exc:
        typer.echo(usage_error_line(exc), err=True)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        return 130
    return outcome if isinstance(outcome, int) else 0
