"""The inbox: a directory that fills up with files over time, drained by scheduled ingestion.

Layout under the inbox root (``<TRIAGE_HOME>/inbox`` unless
``TRIAGE_SCHEDULES__INBOX_DIR`` says otherwise)::

    tickets/       labeled tickets (history with category, optionally priority)
    new-tickets/   unlabeled tickets, scored by the scoring deployment
    feedback/      agent corrections
    surveys/       CSAT surveys
    processed/<kind>/   files ingested (renamed with the time they were taken)
    failed/<kind>/      files that could not be ingested, each with ``<name>.reason.txt``

Every file dropped in ends up in ``processed/`` or ``failed/``, so nothing is
lost and nothing is taken twice. A file is moved only after its batch is
committed; if the process dies in between, the next run ingests it again and
the store skips its rows as duplicates (ingestion is idempotent by content hash).
Writers should drop files atomically: write ``.name.csv`` or ``name.csv.part``
and rename; hidden and partial files are ignored. A symbolic link is taken
only when it points at a file inside the inbox; any other link is moved (the
link itself, never what it points at) to ``failed/`` unread, so a link cannot
make the inbox read a file from elsewhere on the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from triage_ml import ingest
from triage_ml.errors import TriageError
from triage_ml.settings import Settings

# Labeled history first: feedback and surveys refer to tickets that must exist.
KINDS: tuple[str, ...] = ("tickets", "new-tickets", "feedback", "surveys")
SUFFIXES: frozenset[str] = frozenset({".csv", ".parquet", ".pq"})


@dataclass(frozen=True)
class InboxFile:
    """One file waiting in the inbox."""

    kind: str
    path: Path


@dataclass
class InboxReport:
    """What one drain of the inbox did with each file."""

    processed: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready report with counts."""
        return {
            "files": len(self.processed) + len(self.failed),
            "processed": self.processed,
            "failed": self.failed,
            "stored": sum(item["stored"] for item in self.processed),
        }


def inbox_root(settings: Settings) -> Path:
    """The inbox directory of a workspace."""
    return (settings.schedules.inbox_dir or settings.home / "inbox").resolve()


def ensure_layout(root: Path) -> None:
    """Create the drop directories, so users see where files go."""
    for kind in KINDS:
        (root / kind).mkdir(parents=True, exist_ok=True)


def pending(root: Path) -> Iterator[InboxFile]:
    """Files waiting in the inbox, kind by kind, oldest first within a kind."""
    for kind in KINDS:
        folder = root / kind
        if not folder.is_dir():
            continue
        files = [
            p
            for p in folder.iterdir()
            if (p.is_file() or p.is_symlink())
            and not p.name.startswith(".")
            and p.suffix.lower() in SUFFIXES
        ]
        # lstat: the link's own time, and no error for a link that points nowhere.
        for path in sorted(files, key=lambda p: (p.lstat().st_mtime, p.name)):
            yield InboxFile(kind, path)


def link_problem(item: InboxFile, root: Path) -> str | None:
    """Why a symbolic link in the inbox is refused, or None for a plain file or a link kept inside.

    The link is resolved without being read: its target must be a regular
    file under ``root``.
    """
    if not item.path.is_symlink():
        return None
    target = item.path.resolve()
    if not target.is_relative_to(root.resolve()):
        return f"{item.path.name} is a symbolic link out of the inbox (to {target}); not read"
    if not target.is_file():
        return f"{item.path.name} is a symbolic link to no regular file ({target}); not read"
    return None


def move_out(item: InboxFile, root: Path, outcome: str) -> Path:
    """Move a file to ``<root>/<outcome>/<kind>/``, prefixed with the time, never overwriting."""
    folder = root / outcome / item.kind
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"{stamp}-{item.path.name}"
    counter = 1
    while target.exists():
        target = folder / f"{stamp}-{counter}-{item.path.name}"
        counter += 1
    return item.path.rename(target)


def fail(item: InboxFile, root: Path, reason: str) -> dict[str, Any]:
    """Move a file that cannot be ingested to ``failed/`` and write why next to it."""
    target = move_out(item, root, "failed")
    reason_file = target.with_name(target.name + ".reason.txt")
    reason_file.write_text(f"{reason}\n", encoding="utf-8")
    return {
        "kind": item.kind,
        "file": str(target),
        "reason": reason,
        "reason_file": str(reason_file),
    }


def ingest_file(engine: Engine, settings: Settings, item: InboxFile) -> ingest.IngestSummary:
    """Ingest one inbox file as ``triage-ml ingest <kind>`` would, with default column names."""
    if item.kind in ("tickets", "new-tickets"):
        mapping = ingest.ColumnMapping(labeled=item.kind == "tickets")
        return ingest.ingest_configured(engine, settings, "tickets", item.path, mapping)
    return ingest.ingest_configured(engine, settings, item.kind, item.path)


def drain(root: Path, ingest_one: Callable[[InboxFile], ingest.IngestSummary]) -> InboxReport:
    """Ingest every waiting file, then move it to ``processed/`` or (with why) to ``failed/``.

    Only a problem with the file itself (a :class:`TriageError`: unreadable,
    empty, missing columns...) sends it to ``failed/``. Anything else (the
    database is down) propagates and leaves the file in place for the next run.
    """
    report = InboxReport()
    for item in pending(root):
        if (problem := link_problem(item, root)) is not None:
            report.failed.append(fail(item, root, problem))
            continue
        try:
            summary = ingest_one(item)
        except TriageError as exc:
            report.failed.append(fail(item, root, str(exc)))
            continue
        target = move_out(item, root, "processed")
        counts = {
            k: v
            for k, v in summary.as_dict().items()
            if k in ("batch_id", "status", "read", "stored", "quarantined", "skipped")
        }
        report.processed.append({"kind": item.kind, "file": str(target), **counts})
    return report
