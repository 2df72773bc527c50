"""The ``demo`` command: generate, ingest, retrain, score, summarise, in one workspace."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from triage_ml.cli import render
from triage_ml.cli.data import generate_data, ingest_source
from triage_ml.cli.models import retrain
from triage_ml.cli.options import ConfigFile, JsonFlag, column_mapping, counted
from triage_ml.cli.runner import invoke

if TYPE_CHECKING:
    from pathlib import Path

    from triage_ml.settings import Settings

PANEL = "Start here"

# (ingest kind, file written by generate, labeled) in the order the demo ingests them.
DEMO_FILES: tuple[tuple[str, str, bool], ...] = (
    ("tickets", "tickets", True),
    ("feedback", "feedback", True),
    ("surveys", "surveys", True),
    ("tickets", "new_tickets", False),
)
INGEST_COUNTS = ("read", "stored", "quarantined", "skipped")


def ingest_demo_files(settings: Settings, files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Ingest every file ``generate`` wrote, each with the default mapping."""
    from pathlib import Path

    ingested = {}
    for kind, key, labeled in DEMO_FILES:
        mapping = column_mapping(labeled=labeled) if kind == "tickets" else None
        ingested[key] = ingest_source(settings, kind, Path(files[key]), mapping=mapping)
    return ingested


def run_demo(
    settings: Settings, tickets: int, months: int, new_tickets: int, seed: int
) -> dict[str, Any]:
    """Generate data into the workspace, ingest it, retrain, score the new tickets, and summarise.

    Returns:
        The ingest counts per file, the retraining decision, the scoring summary,
        the wall time and the workspace.
    """
    started = time.perf_counter()
    data_dir: Path = settings.home / "demo-data"
    files = generate_data(data_dir, tickets, months, seed, new_tickets)["files"]
    ingested = ingest_demo_files(settings, files)
    retrained = retrain(settings)
    from triage_ml.flows.score import score

    scored = score(settings)
    return {
        "ingest": {k: {c: v[c] for c in INGEST_COUNTS} for k, v in ingested.items()},
        "retrain": retrained,
        "score": scored,
        "seconds": round(time.perf_counter() - started, 1),
        "workspace": str(settings.home.resolve()),
    }


def demo_command(
    ctx: typer.Context,
    tickets: Annotated[int, counted(100, "Labeled tickets in the history.")] = 6000,
    months: Annotated[int, counted(2, "Months the history spans.")] = 6,
    new_tickets: Annotated[int, counted(1, "Unlabeled tickets to score.")] = 1000,
    seed: Annotated[int, counted(0, "Random seed.")] = 7,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Generate data, ingest it, retrain, score the new tickets, and summarise."""
    invoke(
        ctx,
        lambda settings: run_demo(settings, tickets, months, new_tickets, seed),
        render.demo,
        as_json,
        config,
    )


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``triage-ml`` app."""
    app.command(
        "demo", rich_help_panel=PANEL, epilog="Example: triage-ml demo --tickets 1500 --months 3"
    )(demo_command)
