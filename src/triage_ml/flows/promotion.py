"""rollback_champion and force_promote: the human side of the registry, audited."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from triage_ml import registry
from triage_ml.flows import reports
from triage_ml.flows._common import open_store
from triage_ml.registry import promotion
from triage_ml.settings import Settings


@flow(name="rollback-champion")
def rollback_champion(reason: str) -> dict[str, Any]:
    """Point champion back at the previous champion, in one guarded and audited step."""
    settings = Settings()
    engine, client = open_store(settings), registry.use_workspace(settings)
    result = promotion.roll_back(client, engine, settings, reason)
    create_markdown_artifact(key="champion-rollback", markdown=reports.alias_move_markdown(result))
    return result


@flow(name="force-promote")
def force_promote(version: str, reason: str) -> dict[str, Any]:
    """Make a registered version champion without the gate (a human override, audited)."""
    settings = Settings()
    engine, client = open_store(settings), registry.use_workspace(settings)
    result = promotion.force_promote(client, engine, settings, version, reason)
    create_markdown_artifact(
        key="champion-force-promote", markdown=reports.alias_move_markdown(result)
    )
    return result
