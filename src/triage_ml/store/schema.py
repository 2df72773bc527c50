"""Schema versions of the ticket store, migrated with Alembic.

The revisions live in ``triage_ml/migrations/versions``. ``store.connect``
calls :func:`ensure_current`, which costs one version query when the store is
at :data:`HEAD` and loads Alembic's scripts only when there is work to do.
Upgrades run under a lock (PostgreSQL: a transaction-level advisory lock;
SQLite: ``BEGIN IMMEDIATE``, the database write lock), so two processes that
open a new store at once migrate it once.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection, Engine

from triage_ml.errors import StoreError

# Our own version table: MLflow keeps its schema version in "alembic_version",
# and an operator may well give both the same PostgreSQL database.
VERSION_TABLE = "triage_alembic_version"
# Every revision this release knows, oldest first; a test checks them against
# the scripts, so connect() never has to load the scripts to compare.
REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008")
HEAD = REVISIONS[-1]
# pg_advisory_xact_lock key of schema upgrades ("triage" + 1, fits a bigint).
ADVISORY_LOCK_KEY = 0x7472696167650001
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configuration built in code (no alembic.ini, whatever the current directory)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def current_revision(conn: Connection) -> str | None:
    """The store's schema revision, or None when it has no version table."""
    return MigrationContext.configure(
        conn, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()


def legacy_revision(conn: Connection) -> str | None:
    """Revision of a store made by ``metadata.create_all`` before migrations existed; None for an
    empty store.

    Releases before Alembic created the tables directly, so the schema itself
    tells which revision it matches.
    """
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    if "tickets" not in tables:
        return None
    if "alias_locks" in tables:
        return "0003"
    quarantine_columns = {c["name"] for c in inspector.get_columns("quarantine")}
    return "0002" if "released_batch" in quarantine_columns else "0001"


def _refuse_unknown(revision: str | None, url: str) -> None:
    if revision is not None and revision not in REVISIONS:
        raise StoreError(
            f"the store at {url} is at schema revision {revision}, newer than this release knows "
            f"(head {HEAD}); upgrade triage-ml instead of opening it with this version"
        )


def _lock(conn: Connection) -> None:
    """Hold the upgrade lock until ``conn``'s transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the store to ``target`` under the upgrade lock, stamping a pre-Alembic store first.

    Returns:
        (revision before, revision after).

    Raises:
        StoreError: the store is at a revision newer than this release knows.
    """
    safe_url = engine.url.render_as_string(hide_password=True)
    with engine.connect() as conn:
        _lock(conn)
        before = current_revision(
            conn
        )  # read again under the lock: another process may have upgraded
        _refuse_unknown(before, safe_url)
        config = alembic_config(conn)
        if before is None and (legacy := legacy_revision(conn)) is not None:
            command.stamp(config, legacy)
        command.upgrade(config, target)
        after = current_revision(conn)
        conn.commit()
    return before, after


def ensure_current(engine: Engine) -> None:
    """Bring the store to :data:`HEAD`: one version query when it is there already."""
    with engine.connect() as conn:
        revision = current_revision(conn)
    if revision == HEAD:
        return
    _refuse_unknown(revision, engine.url.render_as_string(hide_password=True))
    upgrade(engine)


def script_revisions() -> tuple[str, ...]:
    """Every revision in the migration scripts, oldest first (loads the scripts)."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    return tuple(reversed([s.revision for s in scripts.walk_revisions()]))


def schema_diffs(engine: Engine, metadata: sa.MetaData) -> list[object]:
    """Differences between ``metadata`` and the store's actual schema (Alembic autogenerate)."""
    from alembic.autogenerate import compare_metadata

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        return list(compare_metadata(context, metadata))
