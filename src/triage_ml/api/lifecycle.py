"""A ticket's lifecycle: which status may follow which, and when its SLA falls due.

Pure rules, no store. The transitions are the ones a helpdesk's states imply:
work moves freely between the working and waiting states, any of them may be
resolved, a resolved or closed ticket may only be reopened, and ``closed`` is
reached through the close endpoint alone (which records the final labels).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from triage_ml.api.errors import ConflictError, InvalidError
from triage_ml.api.schemas import Status
from triage_ml.settings import Settings

_WORKING: tuple[Status, ...] = (
    Status.OPEN,
    Status.IN_PROGRESS,
    Status.WAITING_ON_CUSTOMER,
    Status.WAITING_ON_THIRD_PARTY,
)


def _working_from(current: Status) -> frozenset[Status]:
    return frozenset(s for s in _WORKING if s != current) | {Status.RESOLVED}


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.NEW: _working_from(Status.NEW),
    Status.OPEN: _working_from(Status.OPEN),
    Status.IN_PROGRESS: _working_from(Status.IN_PROGRESS),
    Status.REOPENED: _working_from(Status.REOPENED),
    Status.WAITING_ON_CUSTOMER: _working_from(Status.WAITING_ON_CUSTOMER),
    Status.WAITING_ON_THIRD_PARTY: _working_from(Status.WAITING_ON_THIRD_PARTY),
    Status.RESOLVED: frozenset({Status.REOPENED}),
    Status.CLOSED: frozenset({Status.REOPENED}),
}


def allowed(current: Status) -> list[Status]:
    """The statuses an update may move ``current`` to, in the lifecycle's order."""
    return [s for s in Status if s in TRANSITIONS[current]]


def check_transition(current: Status, wanted: Status) -> None:
    """Refuse a status change the lifecycle does not allow; the same status passes (a no-op).

    Raises:
        InvalidError: ``wanted`` is ``closed`` (only the close endpoint closes a ticket).
        ConflictError: the lifecycle has no step from ``current`` to ``wanted``.
    """
    if wanted == Status.CLOSED:
        raise InvalidError("use PUT /v1/tickets/{id}/close to close a ticket", field="status")
    if wanted == current or wanted in TRANSITIONS[current]:
        return
    names = ", ".join(s.value for s in allowed(current))
    raise ConflictError(
        f"illegal transition: {current.value} -> {wanted.value} (allowed: {names})",
        field="status",
    )


def check_close(current: Status) -> None:
    """Refuse to close a ticket that is already closed.

    Raises:
        ConflictError: ``current`` is ``closed``.
    """
    if current == Status.CLOSED:
        raise ConflictError(
            "illegal transition: closed -> closed (allowed: reopened)", field="status"
        )


def sla_due(opened_at: datetime, priority: str | None, settings: Settings) -> datetime | None:
    """When a ticket opened at ``opened_at`` with ``priority`` is due; None without a target.

    Args:
        opened_at: when the ticket was opened (the store's naive UTC).
        priority: the priority in effect (the model's answer, or the agent's).
        settings: where the SLA hours per priority come from (``api.sla_hours``).
    """
    hours = settings.sla_hours_for(priority)
    return None if hours is None else opened_at + timedelta(hours=hours)
