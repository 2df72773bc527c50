"""score_new_tickets: load the champion and score what it has not scored yet."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows._common import open_store
from triage_ml import registry, scoring
from triage_ml.errors import RegistryError
from triage_ml.settings import Settings


@flow(name="score-new-tickets")
def score_new_tickets() -> dict[str, Any]:
    """Predict every ticket the champion has not scored and store the results."""
    settings = Settings()
    engine, client = open_store(settings), registry.use_workspace(settings)
    loaded = registry.load_champion(client, settings)
    if loaded is None:
        raise RegistryError(f"no '{settings.champion_alias}' model yet for '{settings.model_name}'; run `triage-ml retrain` first")
    model, version = loaded
    summary = scoring.score_store(engine, model, version, settings.score_chunk_rows)
    create_markdown_artifact(key="scoring-summary", markdown=f"Scored **{summary.scored}** tickets with version {version}; "
                                                             f"{summary.needs_review} need review.")
    return {"model_version": version, "scored": summary.scored, "needs_review": summary.needs_review, "chunks": summary.chunks}
