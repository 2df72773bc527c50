"""How every command runs: settings in, one result out, as JSON or as text.

A command's logic is a plain function of the settings that returns a dict;
this module builds the settings, prepares the environment, turns a problem
the user can fix into one ``error:`` line with exit code 2, and prints the
result: exactly one JSON object with ``--json``, readable text otherwise.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from triage_ml.errors import TriageError
from triage_ml.settings import Settings

Result = dict[str, Any]
Action = Callable[[Settings], Result]
Renderer = Callable[[Result], Any]


@dataclass(frozen=True)
class RootOptions:
    """The options given before the command name (``triage-ml --config FILE status``)."""

    json: bool = False
    config: Path | None = None


def prepare_environment(settings: Settings) -> None:
    """Point Prefect and matplotlib at the workspace before they are imported.

    Prefect reads its settings from the environment when first imported, so
    this runs at command start, not at import of this module.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(settings.prefect_home)
    os.environ.setdefault("MPLCONFIGDIR", str(settings.home.resolve() / "cache" / "matplotlib"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # The first start of the embedded server runs its migrations; on a busy
    # 2-core machine that exceeds Prefect's 20 s default.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    if settings.prefect_api_url:
        os.environ["PREFECT_API_URL"] = settings.prefect_api_url
    # MLflow's INFO lines (table creation, validation) drown the CLI's own
    # output; MLFLOW_LOGGING_LEVEL=INFO brings them back.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(os.environ["MLFLOW_LOGGING_LEVEL"].upper())


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool) -> Iterator[None]:
    """Keep stdout clean for the JSON object while libraries print."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def options(ctx: typer.Context, as_json: bool, config: Path | None) -> tuple[bool, Path | None]:
    """The command's ``--json`` and ``--config``, falling back on those given before the command."""
    root = ctx.obj if isinstance(ctx.obj, RootOptions) else RootOptions()
    return as_json or root.json, config if config is not None else root.config


def load_settings(config: Path | None) -> Settings:
    """Settings read with ``config`` as the config file ($TRIAGE_CONFIG when None)."""
    return Settings.load(config.resolve() if config is not None else None)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Write the one ``error:`` line on stderr; the caller raises the returned exit."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def invoke(
    ctx: typer.Context,
    action: Action,
    renderer: Renderer,
    as_json: bool = False,
    config: Path | None = None,
) -> None:
    """Run one command's ``action`` with the settings and print its result.

    Args:
        ctx: the command's Typer context (it carries the options given before the command).
        action: the command's logic, a plain function of the settings.
        renderer: turns the result into what rich prints without ``--json``.
        as_json: the command's ``--json``.
        config: the command's ``--config``.

    Raises:
        typer.Exit: code 2 after one ``error:`` line, or 130 when interrupted.
    """
    as_json, config = options(ctx, as_json, config)
    try:
        settings = load_settings(config)
        prepare_environment(settings)
        with stdout_to_stderr(as_json):
            result = action(settings)
    except TriageError as exc:
        raise fail(str(exc)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise fail(f"invalid configuration: {where}: {first['msg']}") from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    emit(result, renderer, as_json)


def emit(result: Result, renderer: Renderer, as_json: bool) -> None:
    """Print ``result``: one JSON object, or the renderer's text through rich."""
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped or captured output has no width to fit: do not fold tables to 80 columns.
        console = Console(highlight=False, width=200)
    console.print(renderer(result), soft_wrap=True)
