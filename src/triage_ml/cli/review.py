"""Production-loop commands: `review-queue` (being built; see issue 25)."""

from __future__ import annotations

import typer

PANEL = "Production loop"


def register(app: typer.Typer) -> None:
    """Add the `review-queue` command(s) to the ``triage-ml`` app."""
