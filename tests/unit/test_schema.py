"""Schema migrations of the ticket store, on SQLite and PostgreSQL: upgrade in place, no drift, bad
URLs."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from triage_ml import cli, store
from triage_ml.errors import StoreError
from triage_ml.store import schema

pytestmark = pytest.mark.unit


# The ticket events API's tables (0007).
ADDED_IN_0007 = ("ticket_state", "ticket_events", "idempotency_keys", "api_tokens")

# More heads' labels and issue 27's answers (0008).
ADDED_IN_0008 = {
    *((table, name) for table in ("predictions",) for name in (
        "subcategory", "subcategory_proba", "type", "type_proba", "team", "team_proba",
        "language", "sentiment_reason", "escalation", "priority_score", "priority_parts",
        "priority_review", "possible_duplicates",
    )),
    ("tickets", "subcategory"),
    ("tickets", "type"),
    ("tickets", "team"),
}  # fmt: skip

ADDED_IN_0006 = {
    ("tickets", "campaign_id"),
    ("feedback", "label_source"),
    ("feedback", "model_version"),
    ("predictions", "tier"),
}


def metadata_at(revision: str) -> sa.MetaData:
    """The tables as revision 0001 (the first release, commit 0e3d6dc) or 0003 left them.

    0001 is today's tables minus alias_locks and quarantine.released_batch;
    both have an index on customer_id alone instead of 0004's customer-history index,
    and neither has 0005's alias_intents, 0006's production-loop tables and columns nor
    0007's events API tables, nor 0008's label and answer columns.
    """
    first = revision == "0001"
    old = sa.MetaData()
    for table in store.metadata.sorted_tables:
        if table.name in (
            "alias_intents",
            "shadow_predictions",
            "tier_thresholds",
            *ADDED_IN_0007,
        ) or (first and table.name == "alias_locks"):
            continue
        columns = [
            sa.Column(
                c.name,
                c.type,
                primary_key=c.primary_key,
                autoincrement=c.autoincrement,
                nullable=c.nullable,
                index=c.index or (table.name, c.name) == ("tickets", "customer_id"),
            )
            for c in table.columns
            if not (first and c.name == "released_batch")
            and (table.name, c.name) not in ADDED_IN_0006
            and (table.name, c.name) not in ADDED_IN_0008
        ]
        sa.Table(table.name, old, *columns)
    return old


def first_release_metadata() -> sa.MetaData:
    return metadata_at("0001")


def revision_of(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return schema.current_revision(conn)


def build_old_store(url: str, how: str) -> None:
    """A store as the first release left it, with one ticket and one quarantined row."""
    engine = store.create_engine(url)
    if how == "create_all":
        first_release_metadata().create_all(engine)  # what the first release's connect() did
    else:
        schema.upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            store.tickets.insert().values(
                ticket_id="T-1",
                body="printer on fire",
                content_hash="h",
                batch_id="b1",
                ingested_at=store.utcnow(),
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO quarantine (batch_id, kind, raw, reasons, created_at) "
                "VALUES ('b1', 'tickets', '{}', '[]', :now)"
            ),
            {"now": store.utcnow()},
        )
    engine.dispose()


def test_the_known_revisions_are_the_scripts() -> None:
    assert schema.script_revisions() == schema.REVISIONS


def test_the_migrated_schema_matches_the_tables_in_code(engine: sa.Engine) -> None:
    assert schema.schema_diffs(engine, store.metadata) == []
    assert revision_of(engine) == schema.HEAD


def test_revision_0001_is_the_first_release_schema(store_url: str) -> None:
    engine = store.create_engine(store_url)
    assert schema.upgrade(engine, "0001") == (None, "0001")
    assert schema.schema_diffs(engine, first_release_metadata()) == []
    engine.dispose()


@pytest.mark.parametrize("how", ["create_all", "alembic"])
def test_a_first_release_store_upgrades_in_place(store_url: str, how: str) -> None:
    build_old_store(store_url, how)
    engine = store.connect(store_url)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("quarantine")}
    with engine.begin() as conn:
        conn.execute(store.quarantine.update().values(released_batch="b2"))
        tickets = conn.execute(sa.select(store.tickets.c.ticket_id, store.tickets.c.body)).all()
        released = conn.execute(sa.select(store.quarantine.c.released_batch)).scalars().all()
    assert "released_batch" in columns
    assert tickets == [("T-1", "printer on fire")] and released == ["b2"]
    assert revision_of(engine) == schema.HEAD
    assert schema.schema_diffs(engine, store.metadata) == []
    engine.dispose()


def test_a_store_made_by_a_later_pre_alembic_release_is_stamped_not_recreated(
    store_url: str,
) -> None:
    engine = store.create_engine(store_url)
    metadata_at("0003").create_all(engine)  # every table already there, no version table
    store.connect(store_url).dispose()
    assert revision_of(engine) == schema.HEAD
    assert schema.schema_diffs(engine, store.metadata) == []
    engine.dispose()


def test_connect_at_head_costs_a_version_query_and_no_script_loading(
    engine: sa.Engine, monkeypatch
) -> None:
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    monkeypatch.setattr(
        "alembic.script.ScriptDirectory.from_config", lambda *a, **k: pytest.fail("scripts loaded")
    )
    schema.ensure_current(engine)
    assert 1 <= len(statements) <= 2, statements


def test_a_newer_revision_is_refused_not_downgraded(store_url: str) -> None:
    store.connect(store_url).dispose()
    engine = store.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(StoreError, match="revision 9999, newer than this release knows"):
        store.connect(store_url)
    with pytest.raises(StoreError, match="newer than this release"):
        schema.upgrade(engine)
    assert revision_of(engine) == "9999"
    engine.dispose()


def test_concurrent_first_connects_migrate_once(store_url: str) -> None:
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            store.connect(store_url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    engine = store.create_engine(store_url)
    assert not any(thread.is_alive() for thread in threads) and errors == []
    assert revision_of(engine) == schema.HEAD and schema.schema_diffs(engine, store.metadata) == []
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {schema.VERSION_TABLE}")).scalar() == 1
    engine.dispose()


def test_a_plain_postgresql_url_uses_psycopg_3() -> None:
    engine = store.create_engine("postgresql://triage:s3cret@db.example:5432/tickets")
    assert engine.dialect.driver == "psycopg" and engine.url.drivername == "postgresql+psycopg"
    assert (
        store.safe_url("postgresql://triage:s3cret@db.example/tickets")
        == "postgresql+psycopg://triage:***@db.example/tickets"
    )
    engine.dispose()


def test_the_plain_url_reaches_the_test_server(postgres_url: str) -> None:
    engine = store.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    assert engine.dialect.driver == "psycopg" and revision_of(engine) == schema.HEAD
    engine.dispose()


def one_error_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert (
        code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    ), err
    return lines[0]


@pytest.mark.parametrize("command", [["db", "current"], ["db", "upgrade"], ["status"]])
def test_an_unreachable_postgresql_store_is_one_line_without_the_password(
    workspace, capsys, monkeypatch, command
) -> None:
    from servers import free_port

    monkeypatch.setenv(
        "TRIAGE_DATABASE_URL", f"postgresql://triage:s3cret@127.0.0.1:{free_port()}/tickets"
    )
    line = one_error_line(capsys, *command)
    assert (
        "cannot open the store at postgresql+psycopg://triage:***@127.0.0.1" in line
        and "s3cret" not in line
    )


def test_an_unknown_driver_is_one_line_without_the_password(workspace, capsys, monkeypatch) -> None:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", "oracle+nosuchdriver://triage:s3cret@db/tickets")
    line = one_error_line(capsys, "db", "current")
    assert "unknown or uninstalled driver 'oracle+nosuchdriver'" in line and "s3cret" not in line


def test_a_newer_store_is_refused_by_the_cli(
    workspace, capsys, monkeypatch, store_url: str
) -> None:
    store.connect(store_url).dispose()
    engine = store.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    monkeypatch.setenv("TRIAGE_DATABASE_URL", store_url)
    assert "newer than this release knows" in one_error_line(capsys, "db", "upgrade")


def test_db_upgrade_and_current_report_the_revision(
    workspace, capsys, monkeypatch, store_url: str
) -> None:
    import json

    monkeypatch.setenv("TRIAGE_DATABASE_URL", store_url)
    assert cli.main(["db", "current", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert cli.main(["db", "upgrade", "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert before["revision"] is None and not before["up_to_date"]
    assert after == {**after, "revision_before": None, "revision": schema.HEAD, "up_to_date": True}


def test_the_store_shares_a_database_with_mlflow_s_alembic_version(store_url: str) -> None:
    engine = store.create_engine(store_url)
    with engine.begin() as conn:  # what MLflow's own migrations leave in its backend database
        conn.execute(
            sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        )
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('1b5f0d9ad7c1')"))
    store.connect(store_url).dispose()
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            == "1b5f0d9ad7c1"
        )
    assert revision_of(engine) == schema.HEAD
    engine.dispose()
