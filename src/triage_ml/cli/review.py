"""Production-loop commands: `review-queue`, the tickets agents should label first."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group

from triage_ml.cli import render
from triage_ml.cli.options import ConfigFile, JsonFlag, counted
from triage_ml.cli.runner import invoke

if TYPE_CHECKING:
    from triage_ml.settings import Settings

PANEL = "Production loop"
DEFAULT_FILE = "review-queue.csv"
SHOWN = 10
COLUMNS = ("ticket_id", "model_version", "predicted_category", "challenger_category", "why")


def review_queue(settings: Settings, budget: int, out: Path | None) -> dict[str, Any]:
    """Choose the ``budget`` waiting tickets that teach the most and write them as a feedback file.

    Returns:
        The file, how many tickets were written and how many waited, and the first
        rows (ids, answers and reasons, no ticket text).
    """
    from triage_ml import store
    from triage_ml.monitoring import review

    if out is None:
        settings.reports_dir.mkdir(parents=True, exist_ok=True)
        out = settings.reports_dir / DEFAULT_FILE
    with store.opened(settings.store_url) as engine:
        queue = review.build_queue(engine, budget)
    written = review.export(queue.rows, out)
    shown = queue.rows.head(SHOWN)
    return {
        "file": str(out),
        "exported": written,
        "waiting": queue.waiting,
        "with_challenger": queue.with_challenger,
        "top": [
            {
                "ticket_id": row["ticket_id"],
                "model_version": str(row["model_version"]),
                "predicted_category": row["category"],
                "confidence": round(1 - float(row["uncertainty"]), 4),
                "challenger_category": row["challenger_category"],
                "why": row["why"],
            }
            for _, row in shown.iterrows()
        ],
    }


def render_queue(result: dict[str, Any]) -> Group:
    """The file written, and the first tickets of the queue with the reasons they are there."""
    table = render.table(
        f"first {len(result['top'])} of the queue",
        ["ticket", "version", "predicted", "challenger", "why"],
        ([r[k] for k in COLUMNS] for r in result["top"]),
    )
    head = render.lines(
        f"review queue: {result['exported']} of {result['waiting']} waiting tickets "
        f"written to {result['file']}",
        "fill in corrected_category / corrected_priority, agent_id and corrected_at, delete the "
        "rows left unanswered, then `triage-ml ingest feedback FILE`",
    )
    return Group(head, table)


def command(
    ctx: typer.Context,
    budget: Annotated[int, counted(1, "How many tickets to pick.")],
    out: Annotated[
        Path | None,
        typer.Option(
            help=f"CSV file to write (default: {DEFAULT_FILE} in the workspace's reports folder).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Pick the scored tickets whose labels would teach the model most, for agents to label.

    Uncertain answers, answers the shadow challenger disagrees with, and tickets
    unlike the labeled ones come first. The CSV is a feedback file (with the
    ticket's text and the model's answer beside it): filled in, it goes back
    through `triage-ml ingest feedback`.
    """
    invoke(ctx, lambda settings: review_queue(settings, budget, out), render_queue, as_json, config)


def register(app: typer.Typer) -> None:
    """Add the `review-queue` command to the ``triage-ml`` app."""
    app.command(
        "review-queue",
        rich_help_panel=PANEL,
        epilog="Example: triage-ml review-queue --budget 50 --out queue.csv",
    )(command)
