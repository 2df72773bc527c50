"""Where a command's logs and tracebacks go: the console gets lines, the workspace gets the rest.

A command promises one ``error:`` line when it fails. Prefect logs a failing
run with its traceback; on the console that traceback would come before the
error line, so the console drops it and the workspace's log file keeps it
(``prefect_logging.yml`` beside this module wires both).
"""

from __future__ import annotations

import logging
import traceback
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

LOG_FILE = Path("logs") / "triage-ml.log"


def prefect_logging_config() -> Path:
    """The logging config that Prefect reads in a ``triage-ml`` command."""
    return Path(str(resources.files("triage_ml.cli") / "prefect_logging.yml"))


def log_file(home: Path) -> Path:
    """The workspace's log file, its folder created."""
    path = home.resolve() / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def workspace_file_handler(prefect_home: str) -> logging.Handler:
    """The log file of the workspace whose PREFECT_HOME is ``prefect_home`` (see runner)."""
    return logging.FileHandler(log_file(Path(prefect_home).parent), encoding="utf-8", delay=True)


def record_traceback(home: Path, exc: BaseException, command: str) -> Path:
    """Append ``exc``'s traceback to the workspace's log file and return the file."""
    path = log_file(home)
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    text = "".join(traceback.format_exception(exc))
    with path.open("a", encoding="utf-8") as out:
        out.write(f"{stamp} | ERROR   | triage-ml {command} failed\n{text}\n")
    return path


class WithoutTraceback(logging.Formatter):
    """Prefect's console format, minus the traceback of a record that carries one.

    Prefect's formatter is used whole (by composition) for the text; only the
    exception and stack parts are left out, and the record itself is not
    changed, so the file handler still writes them.
    """

    def __init__(self, **prefect_format: Any) -> None:
        """Build Prefect's own formatter with the same arguments as ``logging.yml`` gives it."""
        from prefect.logging.formatters import PrefectFormatter

        super().__init__()
        self.inner = PrefectFormatter(**prefect_format)

    def format(self, record: logging.LogRecord) -> str:
        """The record's line, without its traceback."""
        if record.exc_info is None and record.exc_text is None and record.stack_info is None:
            return self.inner.format(record)
        bare = logging.makeLogRecord(record.__dict__)
        bare.exc_info, bare.exc_text, bare.stack_info = None, None, None
        return self.inner.format(bare)
