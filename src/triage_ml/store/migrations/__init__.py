"""Alembic migrations of the ticket store (``env.py``, ``versions/``); driven from
:mod:`triage_ml.schema`."""
