"""The ticket lifecycle: which status may follow which, and when a ticket's SLA falls due."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from triage_ml.api import lifecycle
from triage_ml.api.errors import ConflictError, InvalidError
from triage_ml.api.schemas import Status
from triage_ml.settings import ApiSettings, Settings

S = Status  # short, so the table below reads as one

pytestmark = pytest.mark.unit

WORK = {S.OPEN, S.IN_PROGRESS, S.WAITING_ON_CUSTOMER, S.WAITING_ON_THIRD_PARTY}
# The contract's table, written out by hand rather than derived like the module's.
EXPECTED = {
    S.NEW: WORK | {S.RESOLVED},
    S.OPEN: {S.IN_PROGRESS, S.WAITING_ON_CUSTOMER, S.WAITING_ON_THIRD_PARTY, S.RESOLVED},
    S.IN_PROGRESS: {S.OPEN, S.WAITING_ON_CUSTOMER, S.WAITING_ON_THIRD_PARTY, S.RESOLVED},
    S.REOPENED: WORK | {S.RESOLVED},
    S.WAITING_ON_CUSTOMER: {S.OPEN, S.IN_PROGRESS, S.WAITING_ON_THIRD_PARTY, S.RESOLVED},
    S.WAITING_ON_THIRD_PARTY: {S.OPEN, S.IN_PROGRESS, S.WAITING_ON_CUSTOMER, S.RESOLVED},
    S.RESOLVED: {S.REOPENED},
    S.CLOSED: {S.REOPENED},
}


def test_the_transition_table_is_the_contracts() -> None:
    assert {k: set(v) for k, v in lifecycle.TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("wanted", [s for s in S if s != S.CLOSED])
def test_every_pair_is_allowed_exactly_when_the_table_says(current: S, wanted: S) -> None:
    if wanted == current or wanted in EXPECTED[current]:
        lifecycle.check_transition(current, wanted)  # a no-op or a legal step
        return
    with pytest.raises(ConflictError) as refused:
        lifecycle.check_transition(current, wanted)
    assert refused.value.status == 409 and refused.value.field == "status"
    assert refused.value.message.startswith(f"illegal transition: {current} -> {wanted} (allowed: ")


def test_an_illegal_step_lists_the_allowed_ones_in_lifecycle_order() -> None:
    with pytest.raises(
        ConflictError, match=r"^illegal transition: resolved -> open \(allowed: reopened\)$"
    ):
        lifecycle.check_transition(S.RESOLVED, S.OPEN)
    with pytest.raises(ConflictError) as refused:
        lifecycle.check_transition(S.NEW, S.REOPENED)
    assert refused.value.message == (
        "illegal transition: new -> reopened (allowed: open, in_progress, "
        "waiting_on_customer, waiting_on_third_party, resolved)"
    )


@pytest.mark.parametrize("current", list(S))
def test_closing_through_an_update_is_refused_with_the_way_to_do_it(current: S) -> None:
    with pytest.raises(InvalidError) as refused:
        lifecycle.check_transition(current, S.CLOSED)
    assert refused.value.status == 422 and refused.value.field == "status"
    assert refused.value.message == "use PUT /v1/tickets/{id}/close to close a ticket"


def test_any_state_but_closed_may_be_closed() -> None:
    for current in S:
        if current != S.CLOSED:
            lifecycle.check_close(current)
    with pytest.raises(ConflictError):
        lifecycle.check_close(S.CLOSED)


def test_sla_due_follows_the_configured_hours(tmp_path) -> None:
    opened = datetime(2026, 11, 2, 9, 30)
    settings = Settings(home=tmp_path, api=ApiSettings(sla_hours={"critical": 2, "low": 336}))
    assert lifecycle.sla_due(opened, "critical", settings) == opened + timedelta(hours=2)
    assert lifecycle.sla_due(opened, "low", settings) == opened + timedelta(weeks=2)
    assert lifecycle.sla_due(opened, "high", settings) is None  # no target for it
    assert lifecycle.sla_due(opened, None, settings) is None
    defaults = Settings(home=tmp_path)
    assert lifecycle.sla_due(opened, "high", defaults) == opened + timedelta(hours=24)
