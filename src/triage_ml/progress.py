"""Progress of long work, told to whoever listens: the CLI's rich bar, a flow's progress artifact.

Stages report with :func:`report`; nothing listens unless a caller installs a
listener with :func:`listening` around the work. The listeners live in this
module rather than in a context variable because Prefect runs tasks in worker
threads, which a context variable set by the CLI would not reach.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# (what is being done, how much of it is done, how much there is in all)
Listener = Callable[[str, float, float], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call ``listener`` with every report made until the block ends."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


def report(description: str, completed: float, total: float) -> None:
    """Tell every listener that ``completed`` of ``total`` units of ``description`` are done.

    A listener that fails must not fail the work it watches, so its error is dropped.
    """
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(description, completed, total)
        except Exception:  # a progress display never stops the work
            continue
