"""How every command runs: settings in, one result out, as JSON or as text.

A command's logic is a plain function of the settings that returns a dict;
this module builds the settings, prepares the environment, turns a problem
the user can fix into one ``error:`` line with exit code 2, and prints the
result: exactly one JSON object with ``--json``, readable text otherwise.

Whatever else goes wrong still ends in one ``error:`` line: an unexpected
exception leaves its traceback in the workspace's log file (``--debug`` prints
it too), and SIGTERM or SIGHUP end the command the way Ctrl-C does, so that
Prefect's temporary server is stopped with it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import typer
from pydantic import ValidationError

from triage_ml.cli import logs, prefect_server, progress_bar
from triage_ml.errors import TriageError, first_invalid
from triage_ml.redact import mask_personal_data, mask_url
from triage_ml.settings import Settings

Result = dict[str, Any]
Action = Callable[[Settings], Result]
Renderer = Callable[[Result], Any]


@dataclass(frozen=True)
class RootOptions:
    """The options given before the command name (``triage-ml --config FILE status``)."""

    json: bool = False
    config: Path | None = None
    debug: bool = False


# What a closed terminal, a service manager or `kill PID` sends (SIGINT raises KeyboardInterrupt).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"]+")
MESSAGE_CHARS = 300


class Terminated(BaseException):
    """A stop signal arrived; a BaseException so that no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def prepare_environment(settings: Settings, debug: bool = False) -> None:
    """Point Prefect and matplotlib at the workspace before they are imported.

    Prefect reads its settings from the environment when first imported, so
    this runs at command start, not at import of this module. A temporary
    Prefect server that a killed command left running in this workspace is
    stopped here.

    Args:
        settings: the command's settings.
        debug: leave Prefect's console logging as it is, tracebacks included.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(settings.prefect_home)
    logs.log_file(settings.home)
    if not debug:
        os.environ.setdefault("PREFECT_LOGGING_SETTINGS_PATH", str(logs.prefect_logging_config()))
    prefect_server.mark_owner()
    prefect_server.reap_orphans(settings.prefect_home)
    prefect_server.stop_own_servers_at_exit()
    os.environ.setdefault("MPLCONFIGDIR", str(settings.home.resolve() / "cache" / "matplotlib"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # MLflow 3.17 honours DO_NOT_TRACK only when it is "true"; its own switch always works.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
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


def debugging(ctx: typer.Context) -> bool:
    """Whether ``--debug`` was given before the command."""
    return isinstance(ctx.obj, RootOptions) and ctx.obj.debug


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
        typer.Exit: code 2 after one ``error:`` line, 1 after an unexpected error,
            130 when interrupted, 128 + the signal's number when stopped by a signal.
    """
    as_json, config = options(ctx, as_json, config)
    debug = debugging(ctx)
    settings: Settings | None = None
    try:
        with stop_signals_raise():
            settings = load_settings(config)
            prepare_environment(settings, debug)
            with stdout_to_stderr(as_json), progress_bar.showing(progress_bar.wanted(as_json)):
                result = action(settings)
    except TriageError as exc:
        raise fail(str(exc)) from None
    except ValidationError as exc:
        where, why = first_invalid(exc)
        raise fail(f"invalid configuration: {where}: {why}") from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    except Terminated as stopped:
        raise fail(f"stopped by {stopped}", 128 + stopped.signum) from None
    except (click.exceptions.Exit, click.Abort, click.ClickException):
        raise  # a command's own exit or usage error: Typer prints it
    except Exception as exc:
        raise unexpected(exc, ctx, settings, debug) from None
    emit(result, renderer, as_json)


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into :class:`Terminated` while a command runs.

    Their default action ends the process at once: no ``finally``, no exit
    hooks, and Prefect's temporary server outlives its command. Raised instead,
    the command unwinds like it does on Ctrl-C. Signals can be handled only in
    the main thread; elsewhere (a command called from a worker thread) this
    does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise_terminated) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _raise_terminated(signum: int, _frame: object) -> None:
    # A second signal while the first one's cleanup runs must not cut it short.
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise Terminated(signum)


def unexpected(
    exc: Exception, ctx: typer.Context, settings: Settings | None, debug: bool
) -> typer.Exit:
    """One ``error:`` line for an exception no stage turned into a TriageError (a bug, exit 1).

    The traceback goes to the workspace's log file, and to stderr too with ``--debug``.
    """
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    where = "run with --debug to print the traceback"
    if settings is not None:
        with contextlib.suppress(OSError):
            path = logs.record_traceback(settings.home, exc, ctx.command_path)
            where = f"traceback in {path}"
    return fail(f"unexpected {type(exc).__name__}: {safe_message(exc)} ({where})", 1)


def safe_message(exc: BaseException) -> str:
    """The first line of ``exc``'s message, fit to print: no credentials, no personal data."""
    lines = str(exc).strip().splitlines()
    text = mask_personal_data(lines[0] if lines else "")
    text = URL_IN_TEXT.sub(lambda found: mask_url(found.group(0)), text)
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def emit(result: Result, renderer: Renderer, as_json: bool) -> None:
    """Print ``result``: one JSON object, or the renderer's text through rich.

    A result's ``warnings`` stay in the JSON object; in text they follow as
    ``warning: ...`` lines on stderr.
    """
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped or captured output has no width to fit: do not fold tables to 80 columns.
        console = Console(highlight=False, width=200)
    console.print(renderer(result), soft_wrap=True)
    for line in warning_lines(result):
        typer.echo(line, err=True)


def warning_lines(result: Result) -> list[str]:
    """The result's ``warnings`` as ``warning: ...`` lines, each once (text mode prints them)."""
    return [f"warning: {text}" for text in dict.fromkeys(result.get("warnings") or [])]
