"""The CLI's rich progress bar: one bar per stage that reports through :mod:`triage_ml.progress`.

It draws on stderr, and only for a person at a terminal: ``--json`` output
and piped or captured stderr stay free of it. ``TRIAGE_PROGRESS=1`` forces it
on (tests, or a terminal rich does not recognise); ``TRIAGE_PROGRESS=0`` off.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from triage_ml import progress

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

PROGRESS_ENV = "TRIAGE_PROGRESS"


def wanted(as_json: bool) -> bool:
    """Whether to draw the bar: ``TRIAGE_PROGRESS`` if set, else at a terminal without --json."""
    forced = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    return not as_json and sys.stderr.isatty()


class BarListener:
    """A :data:`triage_ml.progress.Listener` that keeps one rich bar per piece of work.

    The work is what a description says before its first colon (``retrain`` in
    ``retrain: fit``): the stages of one retraining move one bar, whose text
    shows the stage. Stages report from Prefect's worker threads, hence the lock.
    """

    def __init__(self, bars: Progress) -> None:
        """Draw on ``bars``, a started (or recording) rich ``Progress``."""
        self.bars = bars
        self.tasks: dict[str, TaskID] = {}
        self.lock = threading.Lock()

    def __call__(self, description: str, completed: float, total: float) -> None:
        """Move the bar of ``description``'s work to ``completed`` of ``total`` (spin when 0)."""
        size = total if total > 0 else None
        work = description.partition(":")[0].strip()
        with self.lock:
            task = self.tasks.get(work)
            if task is None:
                task = self.bars.add_task(description, total=size)
                self.tasks[work] = task
        self.bars.update(task, description=description, completed=completed, total=size)


def bars(console: Console | None = None) -> Progress:
    """A rich ``Progress`` on ``console`` (stderr by default) that leaves stdout alone."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        # A description may quote a path: never read it as rich markup.
        TextColumn("{task.description}", style="progress.description", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        redirect_stdout=False,
    )


@contextlib.contextmanager
def showing(enabled: bool, console: Console | None = None) -> Iterator[None]:
    """Draw the stages' progress on ``console`` (stderr) while the block runs, if ``enabled``."""
    if not enabled:
        yield
        return
    with bars(console) as drawn, progress.listening(BarListener(drawn)):
        yield
