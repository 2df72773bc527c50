"""Scoring commands: ``score`` (the store or a file) and ``serve`` (HTTP)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    column_mapping,
    counted,
)
from triage_ml.cli.runner import invoke
from triage_ml.errors import TriageError
from triage_ml.scoring.answers import ANSWER_FIELDS, JSON_ANSWERS
from triage_ml.scoring.serving import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_ROWS,
    DEFAULT_REQUEST_TIMEOUT,
    TOKEN_ENV,
    ServeLimits,
)

if TYPE_CHECKING:
    from triage_ml.ingest.mapping import ColumnMapping
    from triage_ml.settings import Settings

PANEL = "Scoring"
FILE_PANEL = "Scoring a file"
ACCESS_PANEL = "Who may call the server"


@dataclass(frozen=True)
class ServeAccess:
    """Who may reach ``serve``: other machines too (``allow_remote``), with which token file."""

    allow_remote: bool = False
    token_file: Path | None = None


# How many scored tickets ``score`` shows with their answers.
SHOWN_ANSWERS = 3


# ---- logic ----------------------------------------------------------------------


def answer_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """One scored ticket's answers, JSON-ready: the fields it has, NaN as None, JSON parsed.

    A row from a model older than a field simply lacks it.
    """
    out: dict[str, Any] = {}
    for name in ANSWER_FIELDS:
        if name not in row:
            continue
        value = render.parsed(row[name]) if name in JSON_ANSWERS else row[name]
        if isinstance(value, list | dict):
            out[name] = value
        elif render.missing(value):
            out[name] = None
        else:
            out[name] = value.item() if hasattr(value, "item") else value
    return out


def stored_answers(settings: Settings, ticket_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The newest stored answers to these tickets (those that have one), in their order."""
    from triage_ml import store
    from triage_ml.store import events

    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        found = events.latest_predictions(conn, ticket_ids)
    return [answer_record(found[ticket]) for ticket in ticket_ids if ticket in found]


def next_unscored(settings: Settings, limit: int) -> list[str]:
    """The ids of the first ``limit`` tickets no model has scored yet."""
    from triage_ml import store

    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        return store.unscored_ids_at(conn, None, list(range(limit)))


def first_rows(path: Path, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows of a scoring output file (.csv, .parquet, .json, .jsonl)."""
    if path.suffix == ".csv":
        import pandas as pd

        return pd.read_csv(path, nrows=limit).to_dict("records")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(path).iter_batches(batch_size=limit), None)
        return [] if batch is None else batch.to_pylist()[:limit]
    records: list[dict[str, Any]] = []
    # Both JSON formats hold one object a line (scoring.files.ScoredWriter): no need to
    # parse a whole, possibly large, array to show its first rows.
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            text = line.strip().rstrip(",")
            if text.startswith("{"):
                records.append(json.loads(text))
            if len(records) >= limit:
                break
    return records


def score_store(settings: Settings, rescore: bool = False) -> dict[str, Any]:
    """Score the stored tickets the champion has not scored yet (all of them with ``rescore``)."""
    from triage_ml.scoring.startup import import_skops_first

    import_skops_first()
    from triage_ml.flows.score import score

    shown = [] if rescore else next_unscored(settings, SHOWN_ANSWERS)
    result = score(settings, rescore=rescore)
    return result | {"answers": stored_answers(settings, shown)}


def score_file(
    settings: Settings,
    source: Path,
    output: Path,
    model: str,
    mapping: ColumnMapping,
    keep: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Score a CSV or Parquet file of tickets into a .csv, .parquet, .json or .jsonl file.

    The output and the kept columns are checked before the model is loaded,
    which takes seconds.
    """
    from triage_ml.scoring.startup import import_skops_first

    import_skops_first()
    from triage_ml import registry
    from triage_ml.scoring import files

    files.check_output(output, keep)
    files.check_keep_columns(keep, files.source_columns(source), str(source))
    from triage_ml import store

    registry.use_workspace(settings)
    loaded, version = registry.load_version(settings, model)
    # The file's tickets are compared with the workspace's recent open ones for duplicates.
    with store.opened(settings.store_url) as engine:
        result = files.score_file(
            loaded,
            version,
            source,
            output,
            mapping,
            settings.priority_levels,
            settings.score_chunk_rows,
            keep,
            files.DuplicateSource(engine, settings.duplicates),
        )
    shown = first_rows(output, SHOWN_ANSWERS) if result.get("scored") else []
    return result | {"answers": [answer_record(row) for row in shown]}


def serve_model(
    settings: Settings,
    model: str,
    host: str,
    port: int,
    workers: int,
    access: ServeAccess | None = None,
    limits: ServeLimits | None = None,
) -> dict[str, Any]:
    """Run the guarded scoring server on a registered model until it is interrupted.

    Raises:
        TriageError: a non-loopback ``host`` without ``--allow-remote`` and a token, an unreadable
            or weak token, or no such model (all before the server starts).
    """
    import subprocess

    from triage_ml.scoring import serving

    access = access or ServeAccess()
    token = serving.read_token(access.token_file)
    warning = serving.check_bind(host, access.allow_remote, token is not None)
    uri = serving.model_uri(settings, model)
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(
        f"serving {uri} on http://{host}:{port}/invocations "
        f"(token {'required' if token else 'not required'}; Ctrl-C stops)",
        err=True,
    )
    command = serving.serve_command(
        uri, host, port, workers, limits, access.token_file, access.allow_remote
    )
    completed = subprocess.run(command, env=serving.serve_environment(settings), check=False)
    return {"model_uri": uri, "exit_code": completed.returncode}


def parse_keep_columns(text: str | None) -> tuple[str, ...]:
    """The names of ``--keep-columns a,b``, in order, each once."""
    names = [name.strip() for name in (text or "").split(",")]
    return tuple(dict.fromkeys(name for name in names if name))


# ---- commands ---------------------------------------------------------------------


def score_command(
    ctx: typer.Context,
    rescore: Annotated[
        bool, typer.Option("--rescore", help="Also score tickets an earlier champion scored.")
    ] = False,
    source: Annotated[
        Path | None,
        typer.Option(
            "--input",
            help="CSV or Parquet file of tickets to score instead of the store.",
            rich_help_panel=FILE_PANEL,
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Where the predictions go (.csv, .parquet, .json or .jsonl), with --input."
            " Each row carries source_row (its row number in the input), source_id (the"
            " input's id column, when it has one) and the --keep-columns. top3 is a list of"
            " {category, proba} in Parquet and JSON, a JSON string in CSV.",
            rich_help_panel=FILE_PANEL,
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            help="'champion' or a version number, with --input.", rich_help_panel=FILE_PANEL
        ),
    ] = "champion",
    keep_columns: Annotated[
        str | None,
        typer.Option(
            help="Input columns to copy onto each scored row, comma-separated (e.g. "
            "'account,region'), with --input.",
            rich_help_panel=FILE_PANEL,
            show_default=False,
        ),
    ] = None,
    text_columns: TextColumns = None,
    category_column: CategoryColumn = None,
    priority_column: PriorityColumn = None,
    id_column: IdColumn = None,
    created_at_column: CreatedAtColumn = None,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Score the stored tickets the champion has not scored yet, or a file with --input/--output."""

    def action(settings: Settings) -> dict[str, Any]:
        if (source is None) != (output is None):
            raise TriageError(
                "--input and --output go together "
                "(a CSV or Parquet file in, a .csv, .parquet, .json or .jsonl file out)"
            )
        if keep_columns and source is None:
            raise TriageError("--keep-columns goes with --input and --output")
        from triage_ml.cli import preflight

        # No champion is refused here, in a second, before Prefect and scikit-learn load.
        preflight.require_champion(settings, settings.champion_alias if source is None else model)
        if source is None or output is None:
            return score_store(settings, rescore)
        mapping = column_mapping(
            text_columns,
            category_column,
            priority_column,
            id_column,
            created_at_column,
            labeled=False,
        )
        keep = parse_keep_columns(keep_columns)
        return score_file(settings, source, output, model, mapping, keep)

    invoke(ctx, action, render.score, as_json, config)


def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, counted(1, "Port to listen on.")] = 5001,
    workers: Annotated[int, counted(1, "Server worker processes.")] = 1,
    model: ModelChoice = "champion",
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a --host other machines can reach (needs a token; prints a warning).",
            rich_help_panel=ACCESS_PANEL,
        ),
    ] = False,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the bearer token requests must carry "
            f"(default: ${TOKEN_ENV}; none: no token on loopback).",
            rich_help_panel=ACCESS_PANEL,
            show_default=False,
        ),
    ] = None,
    max_request_bytes: Annotated[
        int, counted(1, "Largest request body accepted (413 past it).")
    ] = DEFAULT_MAX_REQUEST_BYTES,
    max_rows: Annotated[int, counted(1, "Most tickets in one request (413 past it).")] = (
        DEFAULT_MAX_ROWS
    ),
    request_timeout: Annotated[
        int, counted(1, "Seconds a request may take (408 or 504 past it).")
    ] = DEFAULT_REQUEST_TIMEOUT,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Serve a registered model over HTTP (MLflow's scoring app, with limits) until Ctrl-C."""
    access = ServeAccess(allow_remote, token_file)
    limits = ServeLimits(max_request_bytes, max_rows, request_timeout)
    invoke(
        ctx,
        lambda settings: serve_model(settings, model, host, port, workers, access, limits),
        render.served,
        as_json,
        config,
    )


def register(app: typer.Typer) -> None:
    """Add the scoring commands to the ``triage-ml`` app."""
    app.command(
        "score",
        rich_help_panel=PANEL,
        epilog="Example: triage-ml score --input tickets.csv --output predictions.parquet",
    )(score_command)
    app.command(
        "serve",
        rich_help_panel=PANEL,
        epilog="Example: triage-ml serve --port 5001 --model champion --token-file token.txt",
    )(serve_command)
