"""Ingestion flows: labeled tickets, agent feedback, customer surveys, and the scheduled inbox."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from triage_ml import ingest, progress
from triage_ml.flows import reports
from triage_ml.flows._common import Stopwatch, open_store, progress_artifact, ticket_text_withheld
from triage_ml.ingest import expectations, inbox
from triage_ml.ingest.sources import Source, SqlSource, file_source
from triage_ml.settings import Settings


@flow(name="ingest-tickets")
def ingest_tickets(
    path: str | None = None,
    mapping: ingest.ColumnMapping | None = None,
    sql: SqlSource | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Validate and upsert a file or SQL source of tickets; quarantine what fails.

    Args:
        path: a CSV or Parquet file (when ``sql`` is None).
        mapping: how the source's columns map onto tickets; the default names otherwise.
        sql: a table or query to read instead of a file.
        settings: the workspace; None builds them from this machine's environment.
    """
    settings = settings or Settings()
    with progress_artifact("ingest-progress"):
        engine = open_store(settings)
        summary = ingest_source(engine, settings, "tickets", as_source(path, sql), mapping)
        return publish_summary(summary, settings)


@flow(name="ingest-feedback")
def ingest_feedback(
    path: str | None = None,
    sql: SqlSource | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Validate and store agent corrections of stored tickets' labels.

    Args:
        path: a CSV or Parquet file (when ``sql`` is None).
        sql: a table or query to read instead of a file.
        settings: the workspace; None builds them from this machine's environment.
    """
    return ingest_linked("feedback", as_source(path, sql), settings or Settings())


@flow(name="ingest-surveys")
def ingest_surveys(
    path: str | None = None,
    sql: SqlSource | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Validate and store customers' CSAT surveys of stored tickets.

    Args:
        path: a CSV or Parquet file (when ``sql`` is None).
        sql: a table or query to read instead of a file.
        settings: the workspace; None builds them from this machine's environment.
    """
    return ingest_linked("surveys", as_source(path, sql), settings or Settings())


def ingest_linked(kind: str, source: Source, settings: Settings) -> dict[str, Any]:
    """The ingestion of rows that refer to stored tickets: ``feedback`` or ``surveys``."""
    with progress_artifact("ingest-progress"):
        engine = open_store(settings)
        summary = ingest_source(engine, settings, kind, source)
        return publish_summary(summary, settings)


@flow(name="ingest-inbox")
def ingest_inbox(settings: Settings | None = None) -> dict[str, Any]:
    """Ingest every file dropped into the inbox; move each to processed/ or failed/ (with why).

    Args:
        settings: the workspace; None builds them from this machine's environment.
    """
    settings = settings or Settings()
    with progress_artifact("ingest-progress"):
        root = open_inbox(settings)
        engine = open_store(settings)
        report = drain_inbox(root, engine, settings)
        publish_inbox_report(root, report, settings)
        return report


def as_source(path: str | None, sql: SqlSource | None) -> Source:
    """The flow's source: a SQL table/query, or else the file at ``path``."""
    return sql if sql is not None else file_source(Path(str(path)))


@task(task_run_name="ingest-{kind}", cache_policy=NO_CACHE)
def ingest_source(
    engine: Engine,
    settings: Settings,
    kind: str,
    source: Source,
    mapping: ingest.ColumnMapping | None = None,
) -> ingest.IngestSummary:
    """Read, check and store one source as a batch of ``kind``, in one transaction.

    Not retried: a bad source fails the same way again, and a failed batch
    leaves nothing behind to resume from. An unexpected error reaches Prefect
    without its message, which may quote a row (:func:`ticket_text_withheld`).
    """
    progress.report(f"ingest {kind}: reading {source.describe()}", 0, 1)
    watch = Stopwatch()
    with ticket_text_withheld(settings, f"ingest-{kind}"):
        summary = ingest.ingest_configured(engine, settings, kind, source, mapping)
    get_run_logger().info("ingested %s in %.1f s", summary.headline(), watch.seconds())
    progress.report(f"ingest {kind}: {summary.read} rows read, {summary.stored} stored", 1, 1)
    return summary


@task(task_run_name="report-{summary.kind}-batch", cache_policy=NO_CACHE)
def publish_summary(summary: ingest.IngestSummary, settings: Settings) -> dict[str, Any]:
    """Publish the batch's counts and verdict (markdown) and its Data Docs (a link); returns them.

    The returned counts are JSON-ready.
    """
    create_markdown_artifact(
        key=f"ingest-{summary.kind}",
        markdown=reports.ingest_markdown(summary.as_dict()),
        description=f"ingest summary of batch {summary.batch_id}",
    )
    if summary.data_docs:
        link_data_docs(settings, f"this batch's page: {summary.data_docs}")
    return summary.as_dict()


def link_data_docs(settings: Settings, description: str) -> None:
    """The ``data-docs`` link artifact: the index of the workspace's Great Expectations Data Docs.

    A ``file://`` link: the Data Docs are files in the workspace, readable
    where the workspace is (they load their styles from CDNs, so offline
    they render unstyled).
    """
    index = expectations.docs_index(settings.gx_root)
    create_link_artifact(
        key="data-docs",
        link=index.as_uri(),
        link_text="Great Expectations Data Docs",
        description=description,
    )


@task(task_run_name="open-inbox", cache_policy=NO_CACHE)
def open_inbox(settings: Settings) -> Path:
    """The workspace's inbox, with its drop folders created so users see where files go."""
    root = inbox.inbox_root(settings)
    inbox.ensure_layout(root)
    return root


@task(task_run_name="drain-inbox", cache_policy=NO_CACHE)
def drain_inbox(root: Path, engine: Engine, settings: Settings) -> dict[str, Any]:
    """Ingest every waiting file as ``triage-ml ingest`` would; returns the inbox report."""
    ingest_one = counted(
        partial(inbox.ingest_file, engine, settings), len(list(inbox.pending(root)))
    )
    with ticket_text_withheld(settings, "drain-inbox"):
        report = inbox.drain(root, ingest_one).as_dict()
    progress.report(f"inbox: {report['files']} file(s) done", 1, 1)
    get_run_logger().info(
        "inbox %s: %d file(s), %d processed, %d failed, %d row(s) stored",
        root,
        report["files"],
        len(report["processed"]),
        len(report["failed"]),
        report["stored"],
    )
    return report


def counted(
    ingest_one: Callable[[inbox.InboxFile], ingest.IngestSummary], files: int
) -> Callable[[inbox.InboxFile], ingest.IngestSummary]:
    """``ingest_one`` that reports each file it begins as progress through ``files`` files."""
    begun: list[inbox.InboxFile] = []

    def ingest_and_report(item: inbox.InboxFile) -> ingest.IngestSummary:
        progress.report(f"inbox: {item.kind} {item.path.name}", len(begun), max(files, 1))
        begun.append(item)
        return ingest_one(item)

    return ingest_and_report


@task(task_run_name="report-inbox", cache_policy=NO_CACHE)
def publish_inbox_report(root: Path, report: dict[str, Any], settings: Settings) -> None:
    """Publish what the drain did with each file: a table, or a line when there was none."""
    description = f"inbox {root}: {report['files']} file(s)"
    if not report["files"]:
        create_markdown_artifact(
            key="ingest-inbox", markdown=reports.inbox_markdown(report), description=description
        )
        return
    create_table_artifact(
        key="ingest-inbox", table=reports.inbox_table(report), description=description
    )
    if report["processed"]:
        link_data_docs(settings, f"the batches of {len(report['processed'])} file(s) ingested")
