"""The ``demo`` command: generate, ingest, retrain, score, summarise, in one workspace."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from triage_ml import progress
from triage_ml.cli import render
from triage_ml.cli.data import generate_data, ingest_source
from triage_ml.cli.models import retrain
from triage_ml.cli.options import ConfigFile, JsonFlag, column_mapping, counted
from triage_ml.cli.runner import invoke
from triage_ml.cli.scoring import stored_answers

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
DEMO_STEPS = ("generate", "ingest", "retrain", "score")
# How many new tickets the demo shows with every answer; 3 fit in 100 columns.
SHOWN_EXAMPLES = 3
# A German ticket at or below this sentiment shows the German analyzer at work.
NEGATIVE = -0.3


def _german_and_negative(answer: Mapping[str, Any]) -> bool:
    return answer.get("language") == "de" and (answer.get("sentiment") or 0) <= NEGATIVE


def _escalated_by_text(answer: Mapping[str, Any]) -> bool:
    """A signal found in the words (legal, social, ...), not only in the contact history."""
    return bool(set(answer.get("escalation") or []) - {"repeat_contact"})


# What makes a new ticket worth showing, most telling first: one ticket per reason.
EXAMPLE_REASONS: tuple[tuple[str, Callable[[Mapping[str, Any]], bool]], ...] = (
    ("a possible duplicate", lambda r: bool(r.get("possible_duplicates"))),
    ("German, negative", _german_and_negative),
    ("an escalation in its text", _escalated_by_text),
    ("written in German", lambda r: r.get("language") == "de"),
    ("an escalation signal", lambda r: bool(r.get("escalation"))),
    ("priority review", lambda r: bool(r.get("priority_review"))),
    ("a subcategory", lambda r: r.get("subcategory") is not None),
)


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
        The ingest counts per file, the retraining decision, the scoring summary, a few
        new tickets with every answer (``examples``), the wall time and the workspace.
    """
    from pathlib import Path

    started = time.perf_counter()
    data_dir: Path = settings.home / "demo-data"
    progress.report("demo: generate", 0, len(DEMO_STEPS))
    files = generate_data(data_dir, tickets, months, seed, new_tickets)["files"]
    progress.report("demo: ingest", 1, len(DEMO_STEPS))
    ingested = ingest_demo_files(settings, files)
    progress.report("demo: retrain", 2, len(DEMO_STEPS))
    retrained = retrain(settings)
    progress.report("demo: score", 3, len(DEMO_STEPS))
    from triage_ml.flows.score import score

    scored = score(settings)
    examples = demo_examples(settings, Path(files["new_tickets"]))
    progress.report("demo: done", len(DEMO_STEPS), len(DEMO_STEPS))
    return {
        "ingest": {k: {c: v[c] for c in INGEST_COUNTS} for k, v in ingested.items()},
        "retrain": retrained,
        "score": scored,
        "examples": examples,
        "seconds": round(time.perf_counter() - started, 1),
        "workspace": str(settings.home.resolve()),
        "mlflow_runs": runs_table_url(settings, experiment_id(settings)),
        "warnings": retrained.get("warnings", []) + scored.get("warnings", []),
    }


def pick_examples(
    records: Sequence[Mapping[str, Any]], limit: int = SHOWN_EXAMPLES
) -> list[dict[str, Any]]:
    """Up to ``limit`` answered tickets, one per :data:`EXAMPLE_REASONS` first, then any.

    Each comes back with ``shown_for``: the reason it was picked.
    """
    picked: dict[str, dict[str, Any]] = {}
    for reason, wanted in EXAMPLE_REASONS:
        found = next((r for r in records if r["ticket_id"] not in picked and wanted(r)), None)
        if found is not None and len(picked) < limit:
            picked[found["ticket_id"]] = {**found, "shown_for": reason}
    for record in records:
        if len(picked) >= limit:
            break
        picked.setdefault(record["ticket_id"], {**record, "shown_for": "scored"})
    return list(picked.values())


def demo_examples(settings: Settings, new_tickets: Path) -> list[dict[str, Any]]:
    """A few of the new tickets (ids from the file the demo generated) with every answer."""
    import pandas as pd

    ids = pd.read_csv(new_tickets, usecols=["ticket_id"], dtype=str)["ticket_id"].tolist()
    return pick_examples(stored_answers(settings, ids))


def runs_table_url(settings: Settings, experiment: str | None) -> str:
    """Where the experiment's runs table is (the UI's address alone before any experiment)."""
    from triage_ml.registry import runs

    url, _ = runs.ui_url(settings.tracking_uri, experiment or "")
    return url if experiment else url.split("/#/")[0]


def experiment_id(settings: Settings) -> str | None:
    """The id of the workspace's MLflow experiment, for a link to its runs table."""
    from triage_ml import registry

    found = registry.client(settings).get_experiment_by_name(settings.experiment_name)
    return None if found is None else found.experiment_id


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
