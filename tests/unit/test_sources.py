"""SQL sources: a table or a query in any SQLAlchemy database, and clear errors when unreachable."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from triage_ml import ingest, store
from triage_ml.errors import InputError
from triage_ml.ingest import ColumnMapping, IngestOptions, sources
from triage_ml.ingest.sources import SqlSource

pytestmark = pytest.mark.unit
LEVELS = ("critical", "high", "normal", "low")
OPTIONS = IngestOptions(LEVELS)


@pytest.fixture
def helpdesk(tmp_path: Path) -> str:
    """A helpdesk database with its own column names and native types."""
    url = f"sqlite:///{tmp_path / 'helpdesk.db'}"
    rows = pd.DataFrame(
        {
            "key": ["H1", "H2", "H3", "H4"],
            "title": ["Refund", "Login", "Parcel", ""],
            "description": ["charged twice", "cannot log in", "where is my parcel", ""],
            "team": ["Billing", "Account", "Shipping", "Billing"],
            "prio": ["high", "normal", "low", "low"],
            "opened": pd.to_datetime(["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]),
            "customer_ltv": [10.5, 20.0, 0.0, 1.0],
        }
    )
    engine = sa.create_engine(url)
    rows.to_sql("tickets_export", engine, index=False)
    engine.dispose()
    return url


MAPPING = ColumnMapping(
    text_columns=("title", "description"),
    category_column="team",
    priority_column="prio",
    id_column="key",
    created_at_column="opened",
    explicit=frozenset(
        {"text_columns", "category_column", "priority_column", "id_column", "created_at_column"}
    ),
)


def test_ingest_from_a_table(engine: sa.Engine, helpdesk: str) -> None:
    summary = ingest.ingest_tickets(
        engine, SqlSource(helpdesk, table="tickets_export"), MAPPING, OPTIONS
    )
    assert (summary.read, summary.stored, summary.quarantined, summary.skipped) == (4, 3, 1, 0)
    with engine.connect() as conn:
        stored = pd.read_sql(sa.select(store.tickets), conn).set_index("ticket_id")
    assert stored.loc["H1", "category"] == "Billing" and stored.loc["H1", "customer_ltv"] == 10.5
    assert str(stored.loc["H2", "created_at"]).startswith("2026-01-03")


def test_ingest_from_a_postgresql_table_by_plain_url(
    engine: sa.Engine, helpdesk: str, postgres_url: str
) -> None:
    source_db = sa.create_engine(postgres_url)
    pd.read_sql_table("tickets_export", helpdesk).to_sql("tickets_export", source_db, index=False)
    source_db.dispose()
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    summary = ingest.ingest_tickets(
        engine, SqlSource(plain, table="tickets_export"), MAPPING, OPTIONS
    )
    assert (summary.read, summary.stored, summary.quarantined) == (4, 3, 1)


def test_ingest_from_a_query_is_idempotent(engine: sa.Engine, helpdesk: str) -> None:
    source = SqlSource(helpdesk, query="SELECT * FROM tickets_export WHERE description <> ''")
    first = ingest.ingest_tickets(engine, source, MAPPING, OPTIONS)
    again = ingest.ingest_tickets(engine, source, MAPPING, OPTIONS)
    assert (first.stored, again.stored, again.skipped) == (3, 0, 3)


def test_unreachable_database_is_one_clear_line(engine: sa.Engine) -> None:
    source = SqlSource("postgresql://triage:secret@127.0.0.1:1/nowhere", table="tickets")
    with pytest.raises(InputError) as error:
        ingest.ingest_tickets(engine, source, MAPPING, OPTIONS)
    message = str(error.value)
    assert "cannot read SQL source" in message and "\n" not in message
    assert "secret" not in message and "triage:***@" in message
    with engine.connect() as conn:
        assert store.count_rows(conn, store.batches) == 0


def test_missing_table_and_bad_query(engine: sa.Engine, helpdesk: str) -> None:
    with pytest.raises(InputError, match="table 'nope' not found"):
        ingest.preflight_tickets(SqlSource(helpdesk, table="nope"), MAPPING)
    with pytest.raises(InputError, match="cannot read SQL source"):
        ingest.preflight_tickets(SqlSource(helpdesk, query="SELECT * FROM missing_table"), MAPPING)


def test_source_needs_exactly_one_of_table_or_query() -> None:
    with pytest.raises(InputError, match="exactly one"):
        SqlSource("sqlite://")
    with pytest.raises(InputError, match="exactly one"):
        SqlSource("sqlite://", query="select 1", table="t")


def test_describe_masks_passwords() -> None:
    assert (
        sources.describe(SqlSource("postgresql://u:pw@h/db", table="t"))
        == "postgresql://u:***@h/db [table t]"
    )
