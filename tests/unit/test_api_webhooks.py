"""Helpdesk webhooks: every sample payload parses, every malformed one names its field,
the write-back has each helpdesk's shape, and the route drives a ticket's life on SQLite."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from triage_ml import store
from triage_ml.api import auth, webhooks
from triage_ml.api.app import create_app
from triage_ml.api.errors import InvalidError, NotFoundError
from triage_ml.api.schemas import Status, TicketClose, TicketIn, TicketOut, TicketUpdate
from triage_ml.api.triage import Answer
from triage_ml.settings import Settings
from triage_ml.store import tables

pytestmark = pytest.mark.unit

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "api" / "webhooks"
LEVELS = Settings.model_fields["priority_levels"].default


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def parse(provider: str, payload: dict[str, Any], levels: tuple[str, ...] = LEVELS):
    return webhooks.parse(provider, payload, levels)


def refusal(provider: str, payload: dict[str, Any], levels: tuple[str, ...] = LEVELS):
    with pytest.raises(InvalidError) as caught:
        parse(provider, payload, levels)
    assert caught.value.status == 422
    assert caught.value.message.startswith(f"{caught.value.field}: ")
    return caught.value


# --- every sample -----------------------------------------------------------------------------


def test_every_sample_file_is_parsed_by_a_test() -> None:
    assert {path.stem for path in SAMPLES.glob("*.json")} == set(EXPECTED)


EXPECTED: dict[str, tuple[str, str, str, type]] = {
    "zendesk-ticket-created": ("zendesk", "created", "zendesk-5158", TicketIn),
    "zendesk-status-changed": ("zendesk", "updated", "zendesk-5158", TicketUpdate),
    "zendesk-priority-changed": ("zendesk", "updated", "zendesk-5158", TicketUpdate),
    "zendesk-ticket-solved": ("zendesk", "updated", "zendesk-5158", TicketUpdate),
    "zendesk-ticket-closed": ("zendesk", "closed", "zendesk-5158", TicketClose),
    "zendesk-trigger": ("zendesk", "created", "zendesk-5159", TicketIn),
    "zendesk-trigger-updated": ("zendesk", "updated", "zendesk-5159", TicketUpdate),
    "freshdesk-ticket-created": ("freshdesk", "created", "freshdesk-11", TicketIn),
    "freshdesk-ticket-updated": ("freshdesk", "updated", "freshdesk-11", TicketUpdate),
    "freshdesk-status-changed": ("freshdesk", "updated", "freshdesk-11", TicketUpdate),
    "freshdesk-ticket-closed": ("freshdesk", "closed", "freshdesk-11", TicketClose),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_parses_to_its_event(name: str) -> None:
    provider, kind, ticket_id, body_type = EXPECTED[name]
    event = parse(provider, sample(name))
    assert (event.provider, event.kind, event.ticket_id) == (provider, kind, ticket_id)
    assert type(event.body) is body_type


def test_zendesk_created_event_carries_the_ticket() -> None:
    ticket = parse("zendesk", sample("zendesk-ticket-created")).body
    assert ticket.ticket_id == "zendesk-5158"
    assert ticket.subject == "Charged twice this month"
    assert ticket.body.startswith("I was charged twice")
    assert ticket.created_at == datetime(2025, 1, 8, 10, 12, 7, tzinfo=UTC)
    assert ticket.channel == "web_service"
    assert ticket.customer_id == "zendesk-8447388090495"


def test_zendesk_status_and_priority_events_map_onto_the_lifecycle_and_scale() -> None:
    pending = parse("zendesk", sample("zendesk-status-changed")).body
    solved = parse("zendesk", sample("zendesk-ticket-solved")).body
    urgent = parse("zendesk", sample("zendesk-priority-changed")).body
    assert pending.status is Status.WAITING_ON_CUSTOMER
    assert pending.agent_id == "zendesk-8447388090494"
    assert solved.status is Status.RESOLVED
    assert (urgent.priority, urgent.status, urgent.category) == ("urgent", None, None)


def test_zendesk_trigger_bodies() -> None:
    created = parse("zendesk", sample("zendesk-trigger")).body
    updated = parse("zendesk", sample("zendesk-trigger-updated")).body
    assert created.channel == "Web Form"
    # {{ticket.created_at_with_timestamp}} has no seconds.
    assert created.created_at == datetime(2025, 1, 8, 10, 20, tzinfo=UTC)
    assert (updated.status, updated.priority, updated.category) == (
        Status.OPEN,
        "urgent",
        "account",
    )
    closing = sample("zendesk-trigger-updated")
    closing["ticket"]["status"] = "Closed"
    close = parse("zendesk", closing)
    assert close.kind == "closed"
    assert (close.body.priority, close.body.category) == ("urgent", "account")


def test_freshdesk_events() -> None:
    created = parse("freshdesk", sample("freshdesk-ticket-created")).body
    assert created.body == "The parcel arrived with a broken screen.\nCan you send a replacement?"
    assert (created.subject, created.channel) == ("Order arrived damaged", "Portal")
    assert parse("freshdesk", sample("freshdesk-ticket-updated")).body.priority == "high"
    assert parse("freshdesk", sample("freshdesk-status-changed")).body.status is (
        Status.WAITING_ON_CUSTOMER
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("2", Status.OPEN),
        ("3", Status.WAITING_ON_CUSTOMER),
        ("4", Status.RESOLVED),
        ("6", Status.WAITING_ON_CUSTOMER),
        ("7", Status.WAITING_ON_THIRD_PARTY),
    ],
)
def test_freshdesk_status_codes(code: str, status: Status) -> None:
    payload = sample("freshdesk-status-changed")
    payload["freshdesk_webhook"]["triggered_event"] = f"{{status:{{from:2,to:{code}}}}}"
    assert parse("freshdesk", payload).body.status is status


# --- priorities onto the configured scale ----------------------------------------------------


@pytest.mark.parametrize(
    ("levels", "zendesk", "expected"),
    [
        (LEVELS, "NORMAL", "normal"),
        (("critical", "high", "medium", "low"), "URGENT", "critical"),
        (("critical", "high", "medium", "low"), "normal", "medium"),
    ],
)
def test_zendesk_priority_takes_the_first_level_that_exists(
    levels: tuple[str, ...], zendesk: str, expected: str
) -> None:
    payload = sample("zendesk-priority-changed")
    payload["event"]["current"] = zendesk
    assert parse("zendesk", payload, levels).body.priority == expected


def test_a_priority_with_no_level_on_the_scale_is_refused() -> None:
    error = refusal("zendesk", sample("zendesk-priority-changed"), ("p1", "p2", "p3"))
    assert error.field == "event.current"
    assert "levels: p1, p2, p3" in error.message
    payload = sample("freshdesk-ticket-updated")
    error = refusal("freshdesk", payload, ("p1", "p2"))
    assert error.field == "freshdesk_webhook.triggered_event"


# --- malformed payloads -----------------------------------------------------------------------


def edited(name: str, path: str, value: Any) -> dict[str, Any]:
    """``name``'s sample with ``path`` set to ``value`` (``...`` deletes it)."""
    payload = copy.deepcopy(sample(name))
    *parents, last = path.split(".")
    node = payload
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return payload


@pytest.mark.parametrize(
    ("name", "path", "value", "field"),
    [
        ("zendesk-ticket-created", "detail.id", ..., "detail.id"),
        ("zendesk-ticket-created", "detail.id", ["5158"], "detail.id"),
        ("zendesk-ticket-created", "detail.id", "{{ticket.id}}", "detail.id"),
        ("zendesk-ticket-created", "detail.description", "   ", "detail.description"),
        ("zendesk-ticket-created", "detail.description", ..., "detail.description"),
        ("zendesk-ticket-created", "detail.subject", 42, "detail.subject"),
        ("zendesk-ticket-created", "detail.created_at", "yesterday", "detail.created_at"),
        ("zendesk-ticket-created", "detail", "5158", "detail"),
        ("zendesk-ticket-created", "type", "zen:event-type:ticket.comment_added", "type"),
        ("zendesk-status-changed", "event.current", "ARCHIVED", "event.current"),
        ("zendesk-status-changed", "event.current", True, "event.current"),
        ("zendesk-status-changed", "event", [], "event"),
        ("zendesk-priority-changed", "event.current", "SEVERE", "event.current"),
        ("zendesk-priority-changed", "event.current", None, "event.current"),
        ("zendesk-trigger", "action", "deleted", "action"),
        ("zendesk-trigger", "ticket.description", "", "ticket.description"),
        ("zendesk-trigger-updated", "ticket.status", "Snoozed", "ticket.status"),
        (
            "freshdesk-ticket-created",
            "freshdesk_webhook.ticket_id",
            ...,
            "freshdesk_webhook.ticket_id",
        ),
        (
            "freshdesk-ticket-created",
            "freshdesk_webhook.ticket_description",
            "<div> </div>",
            "freshdesk_webhook.ticket_description",
        ),
        (
            "freshdesk-ticket-created",
            "freshdesk_webhook.triggered_event",
            "{note_type:private}",
            "freshdesk_webhook.triggered_event",
        ),
        (
            "freshdesk-ticket-closed",
            "freshdesk_webhook.triggered_event",
            "{status:{from:4,to:9}}",
            "freshdesk_webhook.triggered_event",
        ),
        ("freshdesk-ticket-closed", "freshdesk_webhook", "closed", "freshdesk_webhook"),
    ],
)
def test_malformed_payload_names_its_field(name: str, path: str, value: Any, field: str) -> None:
    provider = name.split("-")[0]
    assert refusal(provider, edited(name, path, value)).field == field


def test_a_payload_of_neither_zendesk_shape_is_refused() -> None:
    assert refusal("zendesk", {"hello": "world"}).field == "type"
    assert refusal("freshdesk", sample("zendesk-ticket-created")).field == "freshdesk_webhook"


def test_unknown_provider_is_404() -> None:
    with pytest.raises(NotFoundError) as caught:
        parse("intercom", sample("zendesk-ticket-created"))
    assert caught.value.status == 404
    assert caught.value.message == (
        "unknown webhook provider 'intercom' (known: freshdesk, zendesk)"
    )


# --- write-back -------------------------------------------------------------------------------


def ticket_out(**values: Any) -> TicketOut:
    base = {
        "ticket_id": "zendesk-5158",
        "status": Status.NEW,
        "category": "Billing & Payments",
        "priority": "urgent",
        "tier": "suggest",
        "needs_review": True,
        "sla_due_at": datetime(2025, 1, 8, 18, 12, 7, tzinfo=UTC),
        "created_at": datetime(2025, 1, 8, 10, 12, 7, tzinfo=UTC),
    }
    return TicketOut(**{**base, **values})


def test_zendesk_write_back_is_an_update_ticket_body() -> None:
    assert webhooks.write_back("zendesk", ticket_out()) == {
        "ticket": {
            "priority": "urgent",
            "additional_tags": ["triage_billing_payments", "tier_suggest", "triage_needs_review"],
        }
    }
    quiet = ticket_out(priority="medium", needs_review=False, tier="auto")
    assert webhooks.write_back("zendesk", quiet)["ticket"] == {
        "priority": "normal",
        "additional_tags": ["triage_billing_payments", "tier_auto"],
    }


def test_freshdesk_write_back_is_an_update_ticket_body() -> None:
    assert webhooks.write_back("freshdesk", ticket_out(priority="low")) == {
        "priority": 1,
        "tags": ["triage_billing_payments", "tier_suggest", "triage_needs_review"],
        "custom_fields": {
            "cf_triage_category": "Billing & Payments",
            "cf_triage_tier": "suggest",
            "cf_triage_sla_due_at": "2025-01-08T18:12:07Z",
        },
    }


def test_write_back_leaves_out_what_the_ticket_lacks() -> None:
    bare = ticket_out(priority="p9", category=None, tier=None, needs_review=None, sla_due_at=None)
    assert webhooks.write_back("zendesk", bare) == {"ticket": {"additional_tags": []}}
    assert "priority" not in webhooks.write_back("freshdesk", bare)
    with pytest.raises(NotFoundError):
        webhooks.write_back("intercom", bare)


# --- helpdesk statuses on our lifecycle --------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "current", "target"),
    [
        (None, Status.OPEN, None),
        (Status.NEW, None, None),
        (Status.NEW, Status.OPEN, None),
        (Status.OPEN, Status.OPEN, None),
        (Status.OPEN, None, Status.OPEN),
        (Status.WAITING_ON_CUSTOMER, Status.NEW, Status.WAITING_ON_CUSTOMER),
        (Status.OPEN, Status.RESOLVED, Status.REOPENED),
        (Status.WAITING_ON_CUSTOMER, Status.CLOSED, Status.REOPENED),
        (Status.RESOLVED, Status.IN_PROGRESS, Status.RESOLVED),
    ],
)
def test_target_status(
    wanted: Status | None, current: Status | None, target: Status | None
) -> None:
    assert webhooks.target_status(wanted, current) is target


def test_html_text_keeps_words_and_line_breaks() -> None:
    html = "<div>Hello&nbsp;there,</div><p>the <b>app</b>  crashes &amp; burns<br>again</p>"
    assert webhooks.html_text(html) == "Hello there,\nthe app crashes & burns\nagain"


# --- the route, on a SQLite store with a stand-in triager -------------------------------------


class StandInTriager:
    """Answers every ticket "billing", priority high, tier auto: the route is under test."""

    champion_version = "7"

    def categories(self) -> frozenset[str]:
        return frozenset({"billing", "account", "shipping"})

    def refresh_if_due(self) -> None:
        return None

    def answer(self, conn: Any, ticket: pd.DataFrame) -> Answer:
        row = {
            "ticket_id": ticket["ticket_id"].iloc[0],
            "model_version": "7",
            "category": "billing",
            "category_proba": 0.93,
            "top3": json.dumps([{"category": "billing", "proba": 0.93}]),
            "priority": "high",
            "priority_proba": 0.71,
            "sentiment": -0.4,
            "route": "billing-queue",
            "needs_review": False,
            "tier": "auto",
            "scored_at": pd.Timestamp.now(tz="UTC"),
        }
        return Answer(pd.DataFrame([row]), None)


@dataclass
class Api:
    client: TestClient
    engine: sa.Engine
    write: dict[str, str]
    read: dict[str, str]

    def post(self, provider: str, payload: Any, headers: dict[str, str] | None = None):
        return self.client.post(
            f"/v1/webhooks/{provider}",
            json=payload,
            headers=self.write if headers is None else headers,
        )

    def hook(self, provider: str, payload: Any) -> dict[str, Any]:
        response = self.post(provider, payload)
        assert response.status_code == 200, response.text
        return response.json()

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/tickets/{ticket_id}", headers=self.read)
        assert response.status_code == 200, response.text
        return response.json()

    def rows(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for table in WRITTEN
            }


WRITTEN = (
    tables.tickets,
    tables.feedback,
    tables.predictions,
    tables.ticket_state,
    tables.ticket_events,
    tables.batches,
)


@pytest.fixture
def api(workspace: Settings, tmp_path: Path) -> Iterator[Api]:
    engine = store.connect(f"sqlite:///{tmp_path / 'store.db'}")
    now = store.utcnow()
    write = auth.create_token(engine, "helpdesk", "write", now).token
    read = auth.create_token(engine, "viewer", "read", now).token
    app = create_app(workspace, engine, StandInTriager())
    with TestClient(app) as client:
        yield Api(
            client,
            engine,
            {"Authorization": f"Bearer {write}"},
            {"Authorization": f"Bearer {read}"},
        )
    engine.dispose()


def zendesk_status(status: str) -> dict[str, Any]:
    return edited("zendesk-status-changed", "event.current", status)


def test_a_zendesk_ticket_lives_its_whole_life_through_webhooks(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = api.hook("zendesk", sample("zendesk-ticket-created"))
    assert created == {
        "ticket_id": "zendesk-5158",
        "event": "created",
        "applied": True,
        "write_back": {
            "ticket": {"priority": "high", "additional_tags": ["triage_billing", "tier_auto"]}
        },
    }
    # Zendesk retries: the same ticket again answers its write-back and stores nothing.
    before = api.rows()
    assert api.hook("zendesk", sample("zendesk-ticket-created")) == {**created, "applied": False}
    assert api.rows() == before

    corrected = api.hook("zendesk", sample("zendesk-priority-changed"))
    assert (corrected["applied"], corrected["write_back"]["ticket"]["priority"]) == (True, "urgent")
    # Our write-back comes back as a priority_changed event: it is not a second correction.
    assert not api.hook("zendesk", sample("zendesk-priority-changed"))["applied"]

    for status, expected in [
        ("PENDING", "waiting_on_customer"),
        ("SOLVED", "resolved"),
        ("OPEN", "reopened"),
        ("SOLVED", "resolved"),
    ]:
        assert api.hook("zendesk", zendesk_status(status))["applied"]
        assert api.ticket("zendesk-5158")["status"] == expected
    closed = api.hook("zendesk", sample("zendesk-ticket-closed"))
    assert (closed["event"], closed["applied"]) == ("closed", True)
    assert not api.hook("zendesk", sample("zendesk-ticket-closed"))["applied"]

    ticket = api.ticket("zendesk-5158")
    assert (ticket["status"], ticket["category"], ticket["priority"]) == (
        "closed",
        "billing",
        "urgent",
    )
    assert ticket["customer_id"] == "zendesk-8447388090495"
    sources = [
        (label["priority"], label["label_source"], label["agent_id"]) for label in ticket["labels"]
    ]
    assert sources[0] == ("urgent", "agent-corrected", None)
    assert [event["kind"] for event in ticket["events"]].count("corrected") == 1
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "zendesk-5158" in logged
    assert "charged twice" not in logged.lower()
    assert "8447388090495" not in logged


def test_a_freshdesk_ticket_through_webhooks(api: Api) -> None:
    created = api.hook("freshdesk", sample("freshdesk-ticket-created"))
    due = datetime.fromisoformat(api.ticket("freshdesk-11")["sla_due_at"])
    assert created["write_back"] == {
        "priority": 3,
        "tags": ["triage_billing", "tier_auto"],
        "custom_fields": {
            "cf_triage_category": "billing",
            "cf_triage_tier": "auto",
            "cf_triage_sla_due_at": f"{due:%Y-%m-%dT%H:%M:%SZ}",
        },
    }
    stored = api.ticket("freshdesk-11")
    assert stored["body"] == "The parcel arrived with a broken screen.\nCan you send a replacement?"
    # The sample moves the priority to High, which is what the model answered: nothing to record.
    assert not api.hook("freshdesk", sample("freshdesk-ticket-updated"))["applied"]
    assert api.hook("freshdesk", sample("freshdesk-status-changed"))["applied"]
    assert api.ticket("freshdesk-11")["status"] == "waiting_on_customer"
    assert api.hook("freshdesk", sample("freshdesk-ticket-closed"))["event"] == "closed"
    final = api.ticket("freshdesk-11")
    assert final["status"] == "closed"
    assert [label["label_source"] for label in final["labels"]] == ["auto-applied"]


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


def test_refusals_leave_the_store_as_it_was(api: Api) -> None:
    api.hook("zendesk", sample("zendesk-ticket-created"))
    api.hook("zendesk", sample("zendesk-ticket-closed"))
    before = api.rows()
    unknown = error_of(api.post("intercom", sample("zendesk-ticket-created")), 404)
    assert unknown["message"] == "unknown webhook provider 'intercom' (known: freshdesk, zendesk)"
    malformed = edited("zendesk-ticket-created", "detail.id", ...)
    assert error_of(api.post("zendesk", malformed), 422)["field"] == "detail.id"
    empty = edited("freshdesk-ticket-created", "freshdesk_webhook.ticket_description", "")
    assert error_of(api.post("freshdesk", empty), 422)["field"] == (
        "freshdesk_webhook.ticket_description"
    )
    assert error_of(api.post("zendesk", ["not", "an", "object"]), 422)["code"] == "invalid"
    never_created = edited("zendesk-priority-changed", "detail.id", "999")
    assert error_of(api.post("zendesk", never_created), 404)["field"] == "ticket_id"
    # A closed ticket is only reopened, never solved again.
    illegal = error_of(api.post("zendesk", zendesk_status("SOLVED")), 409)
    assert illegal["message"].startswith("illegal transition: closed -> resolved")
    assert error_of(api.post("zendesk", sample("zendesk-ticket-created"), headers={}), 401)
    assert error_of(api.post("zendesk", sample("zendesk-ticket-created"), headers=api.read), 403)
    assert api.rows() == before
