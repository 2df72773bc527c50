"""Ingestion flows: labeled tickets, agent feedback, customer surveys, and the inbox drained on a schedule."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from triage_ml import ingest
from triage_ml.flows import reports
from triage_ml.flows._common import open_store
from triage_ml.ingest import inbox
from triage_ml.ingest.sources import Source, SqlSource
from triage_ml.settings import Settings


def _publish(summary: ingest.IngestSummary) -> dict[str, Any]:
    create_markdown_artifact(
        key=f"ingest-{summary.kind}",
        markdown=reports.ingest_markdown(summary.as_dict()),
        description=f"ingest summary of batch {summary.batch_id}",
    )
    return summary.as_dict()


def as_source(path: str | None, sql: SqlSource | None) -> Source:
    """The flow's source: a file path or a SQL table/query."""
    return sql if sql is not None else Path(str(path))


@flow(name="ingest-tickets")
def ingest_tickets(
    path: str | None = None,
    mapping: ingest.ColumnMapping | None = None,
    sql: SqlSource | None = None,
) -> dict[str, Any]:
    """Validate and upsert a file or SQL source of tickets; quarantine what fails."""
    settings = Settings()
    engine = open_store(settings)
    return _publish(
        ingest.ingest_configured(engine, settings, "tickets", as_source(path, sql), mapping)
    )


@flow(name="ingest-feedback")
def ingest_feedback(
    path: str | None = None, kind: str = "feedback", sql: SqlSource | None = None
) -> dict[str, Any]:
    """Validate and store agent corrections (``feedback``) or CSAT ``surveys``."""
    settings = Settings()
    engine = open_store(settings)
    return _publish(ingest.ingest_configured(engine, settings, kind, as_source(path, sql)))


@flow(name="ingest-inbox")
def ingest_inbox() -> dict[str, Any]:
    """Ingest every file dropped into the inbox; move each to processed/ or failed/ (with its reason)."""
    settings = Settings()
    root = inbox.inbox_root(settings)
    inbox.ensure_layout(root)
    engine = open_store(settings)
    report = inbox.drain(root, partial(inbox.ingest_file, engine, settings)).as_dict()
    create_markdown_artifact(
        key="ingest-inbox",
        markdown=reports.inbox_markdown(report),
        description=f"inbox {root}: {report['files']} file(s)",
    )
    return report
