"""Alembic environment of the ticket store.

:mod:`triage_ml.schema` runs Alembic's commands on a connection it has
already locked (``config.attributes["connection"]``). The plain ``alembic``
command line (developers writing a revision, see ``alembic.ini``) gets a
connection to the configured store instead, without the automatic upgrade.
"""

from __future__ import annotations

from alembic import context

from triage_ml import store
from triage_ml.store import schema


def run_on(connection: object) -> None:
    """Run the requested migrations on ``connection`` (inside the caller's transaction if it has
    one)."""
    context.configure(
        connection=connection, target_metadata=store.metadata, version_table=schema.VERSION_TABLE
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Entry point: the caller's connection, or one to the configured store."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    from triage_ml.settings import Settings

    engine = store.create_engine(
        context.config.get_main_option("sqlalchemy.url") or Settings().store_url
    )
    try:
        with engine.begin() as conn:
            run_on(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: connect to the store")
run_online()
