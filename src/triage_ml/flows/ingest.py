"""Ingestion flows: labeled tickets, agent feedback, customer surveys, and the scheduled inbox."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from triage_ml import ingest
from triage_ml.flows import reports
from triage_ml.flows._common import open_store, ticket_text_withheld
from triage_ml.ingest import inbox
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
    engine = open_store(settings)
    summary = ingest_source(engine, settings, "tickets", as_source(path, sql), mapping)
    return publish_summary(summary)


@flow(name="ingest-feedback")
def ingest_feedback(
    path: str | None = None,
    kind: str = "feedback",
    sql: SqlSource | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Validate and store agent corrections (``feedback``) or CSAT ``surveys``.

    Args:
        path: a CSV or Parquet file (when ``sql`` is None).
        kind: ``feedback`` or ``surveys``.
        sql: a table or query to read instead of a file.
        settings: the workspace; None builds them from this machine's environment.
    """
    settings = settings or Settings()
    engine = open_store(settings)
    summary = ingest_source(engine, settings, kind, as_source(path, sql))
    return publish_summary(summary)


@flow(name="ingest-inbox")
def ingest_inbox(settings: Settings | None = None) -> dict[str, Any]:
    """Ingest every file dropped into the inbox; move each to processed/ or failed/ (with why).

    Args:
        settings: the workspace; None builds them from this machine's environment.
    """
    settings = settings or Settings()
    root = open_inbox(settings)
    engine = open_store(settings)
    report = drain_inbox(root, engine, settings)
    publish_inbox_report(root, report)
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
    with ticket_text_withheld(settings, f"ingest-{kind}"):
        summary = ingest.ingest_configured(engine, settings, kind, source, mapping)
    get_run_logger().info("ingested %s", summary.headline())
    return summary


@task(task_run_name="report-{summary.kind}-batch", cache_policy=NO_CACHE)
def publish_summary(summary: ingest.IngestSummary) -> dict[str, Any]:
    """Publish the batch's counts and verdict as a markdown artifact; returns them JSON-ready."""
    create_markdown_artifact(
        key=f"ingest-{summary.kind}",
        markdown=reports.ingest_markdown(summary.as_dict()),
        description=f"ingest summary of batch {summary.batch_id}",
    )
    return summary.as_dict()


@task(task_run_name="open-inbox", cache_policy=NO_CACHE)
def open_inbox(settings: Settings) -> Path:
    """The workspace's inbox, with its drop folders created so users see where files go."""
    root = inbox.inbox_root(settings)
    inbox.ensure_layout(root)
    return root


@task(task_run_name="drain-inbox", cache_policy=NO_CACHE)
def drain_inbox(root: Path, engine: Engine, settings: Settings) -> dict[str, Any]:
    """Ingest every waiting file as ``triage-ml ingest`` would; returns the inbox report."""
    with ticket_text_withheld(settings, "drain-inbox"):
        report = inbox.drain(root, partial(inbox.ingest_file, engine, settings)).as_dict()
    get_run_logger().info(
        "inbox %s: %d file(s), %d processed, %d failed, %d row(s) stored",
        root,
        report["files"],
        len(report["processed"]),
        len(report["failed"]),
        report["stored"],
    )
    return report


@task(task_run_name="report-inbox", cache_policy=NO_CACHE)
def publish_inbox_report(root: Path, report: dict[str, Any]) -> None:
    """Publish what the drain did with each file as a markdown artifact."""
    create_markdown_artifact(
        key="ingest-inbox",
        markdown=reports.inbox_markdown(report),
        description=f"inbox {root}: {report['files']} file(s)",
    )
