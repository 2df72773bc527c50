"""Data commands: ``generate``, ``ingest``, ``quarantine`` and ``batches``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from triage_ml.cli import render
from triage_ml.cli.options import (
    MAPPING_PANEL,
    CategoryColumn,
    ConfigFile,
    CreatedAtColumn,
    IdColumn,
    JsonFlag,
    PriorityColumn,
    TextColumns,
    column_mapping,
    counted,
)
from triage_ml.cli.runner import invoke
from triage_ml.errors import TriageError

if TYPE_CHECKING:
    from triage_ml.ingest.mapping import ColumnMapping
    from triage_ml.ingest.sources import SqlSource
    from triage_ml.settings import Settings

PANEL = "Data in"
SQL_PANEL = "Database source"

ingest_app = typer.Typer(help="Ingest tickets, feedback or surveys from a file or a database.")
quarantine_app = typer.Typer(help="Inspect, export, fix and release quarantined rows.")
batches_app = typer.Typer(help="List ingest batches, or accept a blocked one into training.")

SourcePath = Annotated[
    Path | None,
    typer.Argument(help="CSV or Parquet file (or use --sql-url).", show_default=False),
]


def _sql_option(help_text: str, *names: str) -> Any:
    """A database-source flag: optional, shown in the database panel of the help."""
    return typer.Option(*names, help=help_text, rich_help_panel=SQL_PANEL, show_default=False)


SqlUrl = Annotated[
    str | None,
    _sql_option("SQLAlchemy URL of a database to read from (credentials via the environment)."),
]
SqlQuery = Annotated[str | None, _sql_option("Read-only query giving the rows (with --sql-url).")]
SqlTable = Annotated[str | None, _sql_option("Table holding the rows (with --sql-url).", "--table")]


def _head_option(head: str) -> Any:
    """A head label's mapping flag, shown with the other column-mapping flags."""
    return typer.Option(
        help=f"Column holding the {head} label (default: '{head}' when the file has it).",
        rich_help_panel=MAPPING_PANEL,
        show_default=False,
    )


SubcategoryColumn = Annotated[str | None, _head_option("subcategory")]
TypeColumn = Annotated[str | None, _head_option("type")]
TeamColumn = Annotated[str | None, _head_option("team")]
RecordIds = Annotated[list[int] | None, typer.Argument(help="Record ids.", show_default=False)]
BatchOption = Annotated[
    str | None,
    typer.Option("--batch", help="All unreleased records of one batch.", show_default=False),
]


# ---- logic ----------------------------------------------------------------------


def generate_data(
    out: Path, tickets: int, months: int, seed: int, new_tickets: int
) -> dict[str, Any]:
    """Write a synthetic labeled history and ``new_tickets`` unlabeled tickets into ``out``.

    Returns:
        The files written and the number of rows of each kind.
    """
    from triage_ml import synth

    data = synth.generate(tickets, months, seed)
    paths = synth.write(data, out)
    written = 0
    if new_tickets:
        start = data.tickets["created_at"].max().to_pydatetime()
        new = synth.generate_unlabeled(new_tickets, seed, start=start)
        paths["new_tickets"] = out / "new_tickets.csv"
        new.to_csv(paths["new_tickets"], index=False)
        written = len(new)
    return {
        "files": {k: str(v) for k, v in paths.items()},
        "tickets": len(data.tickets),
        "feedback": len(data.feedback),
        "surveys": len(data.surveys),
        "new_tickets": written,
    }


def source(
    path: Path | None,
    sql_url: str | None = None,
    sql_query: str | None = None,
    table: str | None = None,
) -> tuple[SqlSource | None, Path | None]:
    """(the SQL source or None, the file or None) from a PATH argument and the database flags.

    Raises:
        TriageError: both or neither were given.
    """
    from triage_ml.ingest.sources import SqlSource

    if sql_url:
        if path is not None:
            raise TriageError("give either a PATH or --sql-url, not both")
        return SqlSource(sql_url, sql_query, table), None
    if path is None:
        raise TriageError(
            "give a PATH to a CSV or Parquet file, or --sql-url with --table or --sql-query"
        )
    return None, path


def with_head_columns(
    mapping: ColumnMapping,
    subcategory: str | None = None,
    ticket_type: str | None = None,
    team: str | None = None,
) -> ColumnMapping:
    """``mapping`` with the head label columns given by flags; a name given must exist in the file.

    Args:
        mapping: the mapping built from the other mapping flags.
        subcategory: the subcategory label's column, or None for the default.
        ticket_type: the ticket type label's column, or None for the default.
        team: the team label's column, or None for the default.

    Returns:
        The mapping with those columns named explicitly (checked against the header).
    """
    given = {"subcategory_column": subcategory, "type_column": ticket_type, "team_column": team}
    named = {key: value for key, value in given.items() if value}
    return replace(mapping, **named, explicit=mapping.explicit | frozenset(named))


def ingest_source(
    settings: Settings,
    kind: str,
    path: Path | None,
    sql: SqlSource | None = None,
    mapping: ColumnMapping | None = None,
) -> dict[str, Any]:
    """Check one source of tickets, feedback or surveys up front, then run its ingest flow.

    Returns:
        The flow's summary: counts, batch verdict, Data Docs location.
    """
    from triage_ml import ingest

    where = None if sql else str(path)
    if kind == "tickets":
        mapping = mapping or column_mapping()
        ingest.preflight_tickets(sql or path, mapping, settings.ingest_chunk_rows)
        from triage_ml.flows.ingest import ingest_tickets

        return ingest_tickets(where, mapping, sql=sql, settings=settings)
    ingest.preflight_linked(sql or path, kind, settings.ingest_chunk_rows)
    from triage_ml.flows.ingest import ingest_feedback, ingest_surveys

    linked_flow = ingest_surveys if kind == "surveys" else ingest_feedback
    return linked_flow(where, sql=sql, settings=settings)


def accept_batch(settings: Settings, batch_id: str | None, reason: str | None) -> dict[str, Any]:
    """Let a blocked batch into training, with the reason kept in its report."""
    from triage_ml import store

    if not batch_id or not reason:
        raise TriageError("batches accept needs a BATCH_ID and --reason TEXT")
    with store.opened(settings.store_url) as engine, engine.begin() as conn:
        if not store.set_batch_status(conn, batch_id, store.ACCEPTED, reason):
            raise TriageError(f"no batch {batch_id}")
    return {"batch_id": batch_id, "status": store.ACCEPTED, "reason": reason}


def list_batches(settings: Settings, limit: int) -> dict[str, Any]:
    """The newest ingest batches."""
    from triage_ml import store

    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        return {"batches": store.list_batches(conn, limit)}


def list_quarantined(
    settings: Settings, batch: str | None, include_released: bool, limit: int
) -> dict[str, Any]:
    """Quarantined rows, newest first."""
    from triage_ml import store
    from triage_ml.ingest import quarantine

    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        return {"records": quarantine.list_records(conn, batch, include_released, limit)}


def show_quarantined(settings: Settings, record_id: int) -> dict[str, Any]:
    """One quarantined row with its raw values and reasons."""
    from triage_ml import store
    from triage_ml.ingest import quarantine

    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        return quarantine.show_record(conn, record_id)


def export_quarantined(
    settings: Settings, out: Path, ids: list[int], batch: str | None
) -> dict[str, Any]:
    """Write quarantined rows to a CSV for fixing by hand."""
    from triage_ml import store
    from triage_ml.ingest import quarantine

    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        return {"exported": quarantine.export_records(conn, out, ids, batch), "file": str(out)}


def release_quarantined(
    settings: Settings, ids: list[int], batch: str | None, fixed: Path | None
) -> dict[str, Any]:
    """Re-ingest quarantined rows (as fixed in ``fixed``) through the same contracts and
    batch expectations as any batch."""
    from triage_ml import store
    from triage_ml.ingest import IngestOptions, quarantine

    options = IngestOptions.from_settings(settings)
    with store.opened(settings.store_url) as engine:
        return quarantine.release(engine, settings.priority_levels, ids, batch, fixed, options)


# ---- commands ---------------------------------------------------------------------


def generate(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Directory to write the CSV files to.")],
    tickets: Annotated[int, counted(1, "Labeled tickets in the history.")] = 6000,
    months: Annotated[int, counted(1, "Months the history spans.")] = 6,
    new_tickets: Annotated[int, counted(0, "Unlabeled tickets to score (0: none).")] = 1000,
    seed: Annotated[int, counted(0, "Random seed.")] = 0,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Write synthetic tickets, feedback and surveys (and new tickets to score)."""
    invoke(
        ctx,
        lambda settings: generate_data(out, tickets, months, seed, new_tickets),
        render.generate,
        as_json,
        config,
    )


@ingest_app.command(epilog="Example: triage-ml ingest tickets data/tickets.csv --unlabeled")
def tickets(
    ctx: typer.Context,
    path: SourcePath = None,
    unlabeled: Annotated[
        bool, typer.Option("--unlabeled", help="Tickets without labels, to be scored.")
    ] = False,
    sql_url: SqlUrl = None,
    sql_query: SqlQuery = None,
    table: SqlTable = None,
    text_columns: TextColumns = None,
    category_column: CategoryColumn = None,
    priority_column: PriorityColumn = None,
    id_column: IdColumn = None,
    created_at_column: CreatedAtColumn = None,
    subcategory_column: SubcategoryColumn = None,
    type_column: TypeColumn = None,
    team_column: TeamColumn = None,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Validate and store tickets; rows that break the contract are quarantined."""

    def action(settings: Settings) -> dict[str, Any]:
        sql, file = source(path, sql_url, sql_query, table)
        mapping = column_mapping(
            text_columns,
            category_column,
            priority_column,
            id_column,
            created_at_column,
            labeled=not unlabeled,
        )
        mapping = with_head_columns(mapping, subcategory_column, type_column, team_column)
        return ingest_source(settings, "tickets", file, sql, mapping)

    invoke(ctx, action, render.ingest, as_json, config)


def linked_command(kind: str, columns: str) -> None:
    """Register ``ingest feedback`` or ``ingest surveys``: rows that refer to stored tickets."""

    def command(
        ctx: typer.Context,
        path: SourcePath = None,
        sql_url: SqlUrl = None,
        sql_query: SqlQuery = None,
        table: SqlTable = None,
        as_json: JsonFlag = False,
        config: ConfigFile = None,
    ) -> None:
        def action(settings: Settings) -> dict[str, Any]:
            sql, file = source(path, sql_url, sql_query, table)
            return ingest_source(settings, kind, file, sql)

        invoke(ctx, action, render.ingest, as_json, config)

    ingest_app.command(
        kind,
        help=f"Validate and store {kind}: {columns}.",
        epilog=f"Example: triage-ml ingest {kind} data/{kind}.csv",
    )(command)


linked_command(
    "feedback",
    "ticket_id, corrected_category, corrected_priority, agent_id, corrected_at, reason"
    " (optional: label_source, model_version)",
)
linked_command("surveys", "ticket_id, csat, comment, answered_at")


@quarantine_app.command("list", epilog="Example: triage-ml quarantine list --batch BATCH_ID")
def quarantine_list(
    ctx: typer.Context,
    batch: BatchOption = None,
    include_released: Annotated[
        bool, typer.Option("--all", help="List released records too.")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many records.")] = 100,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Quarantined rows with their reasons, newest first."""
    invoke(
        ctx,
        lambda settings: list_quarantined(settings, batch, include_released, limit),
        render.quarantine_list,
        as_json,
        config,
    )


@quarantine_app.command("show", epilog="Example: triage-ml quarantine show 42")
def quarantine_show(
    ctx: typer.Context,
    record_id: Annotated[int, typer.Argument(help="Record id.", show_default=False)],
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """One quarantined row: its raw values and why it was rejected."""
    invoke(
        ctx,
        lambda settings: show_quarantined(settings, record_id),
        render.quarantine_record,
        as_json,
        config,
    )


@quarantine_app.command("export", epilog="Example: triage-ml quarantine export --out fix.csv")
def quarantine_export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="CSV file to write (in an existing folder).")],
    ids: RecordIds = None,
    batch: BatchOption = None,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Write quarantined rows to a CSV (first column _quarantine_id) for fixing.

    Safe to open in a spreadsheet: a cell that starts with =, +, -, @, a tab, a
    carriage return or ' is written with a ' in front, so it is never run as a
    formula; `quarantine release --file` removes that one ' again.
    """
    invoke(
        ctx,
        lambda settings: export_quarantined(settings, out, ids or [], batch),
        render.quarantine_export,
        as_json,
        config,
    )


@quarantine_app.command("release", epilog="Example: triage-ml quarantine release --file fix.csv")
def quarantine_release(
    ctx: typer.Context,
    ids: RecordIds = None,
    batch: BatchOption = None,
    fixed: Annotated[
        Path | None,
        typer.Option(
            "--file", help="Fixed CSV from `triage-ml quarantine export`.", show_default=False
        ),
    ] = None,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Re-ingest quarantined rows (as fixed in --file) in one transaction.

    Released tickets go through the row contracts and the batch expectations
    like any batch; a release that fails the latter is stored blocked.
    """
    invoke(
        ctx,
        lambda settings: release_quarantined(settings, ids or [], batch, fixed),
        render.quarantine_release,
        as_json,
        config,
    )


@batches_app.command("list", epilog="Example: triage-ml batches list --limit 5")
def batches_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="At most this many batches.")] = 20,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Ingest batches, newest first, with their counts and validation verdict."""
    invoke(ctx, lambda settings: list_batches(settings, limit), render.batches, as_json, config)


@batches_app.command(
    "accept", epilog="Example: triage-ml batches accept BATCH_ID --reason 'new category'"
)
def batches_accept(
    ctx: typer.Context,
    batch_id: Annotated[str | None, typer.Argument(help="The blocked batch.")] = None,
    reason: Annotated[
        str | None,
        typer.Option(help="Why it is accepted (kept in its report).", show_default=False),
    ] = None,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Let a batch that failed batch validation into training."""
    invoke(
        ctx,
        lambda settings: accept_batch(settings, batch_id, reason),
        render.batch_accepted,
        as_json,
        config,
    )


def register(app: typer.Typer) -> None:
    """Add the data commands to the ``triage-ml`` app."""
    app.command(
        rich_help_panel=PANEL,
        epilog="Example: triage-ml generate --tickets 600 --months 3 --out data --new-tickets 100",
    )(generate)
    app.add_typer(ingest_app, name="ingest", rich_help_panel=PANEL)
    app.add_typer(quarantine_app, name="quarantine", rich_help_panel=PANEL)
    app.add_typer(batches_app, name="batches", rich_help_panel=PANEL)
