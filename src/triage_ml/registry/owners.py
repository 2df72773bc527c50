"""Which process owns a run or an alias move, and whether that process is still alive.

A retraining run and a pending alias move carry their owner as ``host:pid``.
On the same host a dead pid is proof that the work will never finish. For an
owner on another host (or a run from before owners were recorded) nothing can
be checked, so the work counts as abandoned only once it is older than a lease.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

# Tag of a retraining run: the process that runs it.
OWNER_TAG = "triage.owner"
# An alias move takes seconds; a retraining of a large store takes hours.
MOVE_LEASE = timedelta(minutes=10)
RUN_LEASE = timedelta(hours=24)


def current_owner() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def owner_alive(owner: str | None, started_at: datetime, lease: timedelta) -> bool:
    """Whether the work ``owner`` started at ``started_at`` may still be going on.

    Args:
        owner: ``host:pid``, or None when the work did not record one.
        started_at: when the work started (naive values are UTC).
        lease: how long work whose owner cannot be checked counts as alive.
    """
    host, _, pid = (owner or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return pid_alive(int(pid))
    started = started_at if started_at.tzinfo else started_at.replace(tzinfo=UTC)
    return datetime.now(UTC) - started < lease
