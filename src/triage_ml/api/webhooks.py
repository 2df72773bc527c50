"""Helpdesk webhooks: Zendesk and Freshdesk ticket events in, the fields to write back out.

``POST /v1/webhooks/{provider}`` takes a helpdesk's own payload, turns it into
the same create / update / close the ticket endpoints perform, and answers with
the triage in the helpdesk's own update shape, ready to ``PUT`` back to it:

- Zendesk: event subscriptions (``zen:event-type:ticket.created``,
  ``ticket.status_changed``, ``ticket.priority_changed``) and the JSON body of a
  trigger's "Notify active webhook" action (``{"action": ..., "ticket": {...}}``);
- Freshdesk: an automation rule's "Trigger webhook" action with the
  ``{"freshdesk_webhook": {...}}`` content documented in docs/api/webhooks/README.md.

Helpdesks retry webhooks and echo our own write-back as a new event, so a
created event for a stored ticket, a close of a closed ticket and a change to
the values already in effect answer the current write-back and change nothing.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Connection

from triage_ml import store
from triage_ml.api import deps, service
from triage_ml.api.errors import InvalidError, NotFoundError
from triage_ml.api.schemas import (
    ErrorOut,
    Status,
    TicketClose,
    TicketIn,
    TicketOut,
    TicketUpdate,
)
from triage_ml.errors import first_invalid
from triage_ml.settings import Settings

logger = logging.getLogger(__name__)

PROVIDERS = ("freshdesk", "zendesk")
Kind = Literal["created", "updated", "closed"]

ZENDESK_CREATED = "zen:event-type:ticket.created"
ZENDESK_STATUS = "zen:event-type:ticket.status_changed"
ZENDESK_PRIORITY = "zen:event-type:ticket.priority_changed"

# Zendesk's pending waits on the requester and on-hold on a third party (its own definitions).
ZENDESK_STATUSES: dict[str, Status] = {
    "new": Status.NEW,
    "open": Status.OPEN,
    "pending": Status.WAITING_ON_CUSTOMER,
    "hold": Status.WAITING_ON_THIRD_PARTY,
    "on-hold": Status.WAITING_ON_THIRD_PARTY,
    "solved": Status.RESOLVED,
    "closed": Status.CLOSED,
}
# Freshdesk's default statuses, by API code and by the name its placeholders render.
FRESHDESK_STATUSES: dict[str, Status] = {
    "2": Status.OPEN,
    "open": Status.OPEN,
    "3": Status.WAITING_ON_CUSTOMER,
    "pending": Status.WAITING_ON_CUSTOMER,
    "4": Status.RESOLVED,
    "resolved": Status.RESOLVED,
    "5": Status.CLOSED,
    "closed": Status.CLOSED,
    "6": Status.WAITING_ON_CUSTOMER,
    "waiting on customer": Status.WAITING_ON_CUSTOMER,
    "7": Status.WAITING_ON_THIRD_PARTY,
    "waiting on third party": Status.WAITING_ON_THIRD_PARTY,
}
# A helpdesk priority becomes the first of these names that is on ``settings.priority_levels``.
ZENDESK_PRIORITIES: dict[str, tuple[str, ...]] = {
    "urgent": ("urgent", "critical"),
    "high": ("high",),
    "normal": ("normal", "medium"),
    "low": ("low",),
}
FRESHDESK_PRIORITIES: dict[str, tuple[str, ...]] = {
    "1": ("low",),
    "low": ("low",),
    "2": ("medium", "normal"),
    "medium": ("medium", "normal"),
    "3": ("high",),
    "high": ("high",),
    "4": ("urgent", "critical"),
    "urgent": ("urgent", "critical"),
}
# Our level -> the helpdesk's value, for the write-back (a level not listed is not written).
TO_ZENDESK_PRIORITY = {
    "critical": "urgent",
    "urgent": "urgent",
    "high": "high",
    "medium": "normal",
    "normal": "normal",
    "low": "low",
}
TO_FRESHDESK_PRIORITY = {"critical": 4, "urgent": 4, "high": 3, "medium": 2, "normal": 2, "low": 1}

# "No priority" as the placeholders render it.
_NO_PRIORITY = {"", "-"}
_NUMERIC_ID = re.compile(r"^\d{1,20}$")
_FRESHDESK_ACTION = re.compile(r"^\{ticket_action:(\w+)\}$")
_FRESHDESK_CHANGE = re.compile(r"^\{(status|priority):\{from:(\w*),to:(\w+)\}\}$")


@dataclass(frozen=True)
class WebhookEvent:
    """One helpdesk event as the service call it becomes.

    Attributes:
        provider: ``"zendesk"`` or ``"freshdesk"``.
        kind: ``"created"`` (``body`` is a TicketIn), ``"updated"`` (a TicketUpdate) or
            ``"closed"`` (a TicketClose).
        ticket_id: Our id for the helpdesk's ticket, ``<provider>-<id>``.
        body: The request the ticket endpoints would have received.
    """

    provider: str
    kind: Kind
    ticket_id: str
    body: TicketIn | TicketUpdate | TicketClose


class WebhookAnswer(BaseModel):
    """What ``POST /v1/webhooks/{provider}`` answers: the fields to write back to the helpdesk."""

    ticket_id: str
    event: Kind
    applied: bool = Field(
        description="False when the event changed nothing (a retry, or our own write-back echoed)"
    )
    write_back: dict[str, Any] = Field(
        description="The helpdesk's own update-ticket body (see docs/api/webhooks/README.md)"
    )


# --- parsing (pure) -------------------------------------------------------------------------


def parse(
    provider: str, payload: Mapping[str, Any], priority_levels: Sequence[str]
) -> WebhookEvent:
    """The event a helpdesk's webhook payload describes.

    Args:
        provider: The path segment of ``/v1/webhooks/{provider}``.
        payload: The decoded JSON body.
        priority_levels: ``settings.priority_levels``: helpdesk priorities map onto these names.

    Returns:
        The event, with the request body the ticket endpoints take.

    Raises:
        NotFoundError: ``provider`` is not one of :data:`PROVIDERS`.
        InvalidError: A missing, empty, mistyped or unknown value, ``field`` naming its dotted
            path in the payload (``detail.id``, ``freshdesk_webhook.ticket_status``...).
    """
    if provider == "zendesk":
        return _parse_zendesk(payload, priority_levels)
    if provider == "freshdesk":
        return _parse_freshdesk(payload, priority_levels)
    raise NotFoundError(
        f"unknown webhook provider '{provider[:64]}' (known: {', '.join(PROVIDERS)})"
    )


def _parse_zendesk(payload: Mapping[str, Any], levels: Sequence[str]) -> WebhookEvent:
    if "type" in payload:
        return _zendesk_event(payload, levels)
    if "ticket" in payload:
        return _zendesk_trigger(payload, levels)
    raise InvalidError(
        "type: expected a Zendesk event ('zen:event-type:ticket.created', ...) "
        'or a trigger body {"action": ..., "ticket": {...}}',
        field="type",
    )


def _zendesk_event(payload: Mapping[str, Any], levels: Sequence[str]) -> WebhookEvent:
    kind = _text(payload, "type")
    _object(payload, "detail")
    ticket_id = _ticket_id("zendesk", payload, "detail.id")
    agent_id = _prefixed("zendesk", _optional_id(payload, "detail.actor_id"))
    if kind == ZENDESK_CREATED:
        ticket = _zendesk_ticket(payload, ticket_id, "detail", "via.channel")
        return WebhookEvent("zendesk", "created", ticket_id, ticket)
    if kind == ZENDESK_STATUS:
        status = _status(ZENDESK_STATUSES, payload, "event.current", "Zendesk status")
        return _status_event("zendesk", ticket_id, status, agent_id)
    if kind == ZENDESK_PRIORITY:
        priority = _priority(ZENDESK_PRIORITIES, payload, "event.current", levels, "Zendesk")
        if priority is None:
            raise InvalidError("event.current: the ticket's new priority is empty", "event.current")
        update = _update(priority=priority, agent_id=agent_id)
        return WebhookEvent("zendesk", "updated", ticket_id, update)
    supported = ", ".join((ZENDESK_CREATED, ZENDESK_STATUS, ZENDESK_PRIORITY))
    raise InvalidError(
        f"type: unsupported Zendesk event '{kind[:80]}' (supported: {supported})", "type"
    )


def _zendesk_trigger(payload: Mapping[str, Any], levels: Sequence[str]) -> WebhookEvent:
    _object(payload, "ticket")
    ticket_id = _ticket_id("zendesk", payload, "ticket.id")
    action = _text(payload, "action")
    if action == "created":
        ticket = _zendesk_ticket(payload, ticket_id, "ticket", "channel")
        return WebhookEvent("zendesk", "created", ticket_id, ticket)
    if action == "updated":
        status = None
        if _optional_text(payload, "ticket.status") is not None:
            status = _status(ZENDESK_STATUSES, payload, "ticket.status", "Zendesk status")
        labels = {
            "category": _optional_text(payload, "ticket.category"),
            "priority": _priority(
                ZENDESK_PRIORITIES, payload, "ticket.priority", levels, "Zendesk"
            ),
        }
        agent_id = _prefixed("zendesk", _optional_id(payload, "ticket.agent_id"))
        return _change_event("zendesk", ticket_id, status, labels, agent_id)
    raise InvalidError(f"action: expected 'created' or 'updated', got '{action[:40]}'", "action")


def _zendesk_ticket(
    payload: Mapping[str, Any], ticket_id: str, root: str, channel: str
) -> TicketIn:
    """A new Zendesk ticket from an event's ``detail`` or a trigger body's ``ticket``."""
    return _ticket_in(
        ticket_id,
        subject=(f"{root}.subject", _optional_text(payload, f"{root}.subject")),
        body=(f"{root}.description", _text(payload, f"{root}.description")),
        created_at=(f"{root}.created_at", _optional_text(payload, f"{root}.created_at")),
        channel=(f"{root}.{channel}", _optional_text(payload, f"{root}.{channel}")),
        customer_id=(
            f"{root}.requester_id",
            _prefixed("zendesk", _optional_id(payload, f"{root}.requester_id")),
        ),
    )


def _parse_freshdesk(payload: Mapping[str, Any], levels: Sequence[str]) -> WebhookEvent:
    root = "freshdesk_webhook"
    _object(payload, root)
    ticket_id = _ticket_id("freshdesk", payload, f"{root}.ticket_id")
    trigger = _text(payload, f"{root}.triggered_event")
    action = _FRESHDESK_ACTION.match(trigger)
    if action is not None and action.group(1) == "created":
        return WebhookEvent("freshdesk", "created", ticket_id, _freshdesk_ticket(payload))
    if change := _FRESHDESK_CHANGE.match(trigger):
        path = f"{root}.triggered_event"
        if change.group(1) == "status":
            status = _lookup(FRESHDESK_STATUSES, change.group(3), path, "Freshdesk status")
            return _status_event("freshdesk", ticket_id, status, None)
        priority = _level(FRESHDESK_PRIORITIES, change.group(3), path, levels, "Freshdesk")
        return WebhookEvent("freshdesk", "updated", ticket_id, _update(priority=priority))
    raise InvalidError(
        f"{root}.triggered_event: unsupported Freshdesk event '{trigger[:80]}' (supported: "
        "{ticket_action:created}, {status:{from:..,to:..}}, "
        "{priority:{from:..,to:..}})",
        f"{root}.triggered_event",
    )


def _freshdesk_ticket(payload: Mapping[str, Any]) -> TicketIn:
    root = "freshdesk_webhook"
    description = html_text(_text(payload, f"{root}.ticket_description"))
    return _ticket_in(
        _ticket_id("freshdesk", payload, f"{root}.ticket_id"),
        subject=(f"{root}.ticket_subject", _optional_text(payload, f"{root}.ticket_subject")),
        body=(f"{root}.ticket_description", description),
        channel=(f"{root}.ticket_source", _optional_text(payload, f"{root}.ticket_source")),
    )


def _status_event(
    provider: str, ticket_id: str, status: Status, agent_id: str | None
) -> WebhookEvent:
    if status is Status.CLOSED:
        return WebhookEvent(provider, "closed", ticket_id, TicketClose(agent_id=agent_id))
    update = _update(status=status, agent_id=agent_id)
    return WebhookEvent(provider, "updated", ticket_id, update)


def _change_event(
    provider: str,
    ticket_id: str,
    status: Status | None,
    labels: dict[str, str | None],
    agent_id: str | None,
) -> WebhookEvent:
    given = {name: value for name, value in labels.items() if value is not None}
    if status is Status.CLOSED:
        close = _model(TicketClose, {**given, "agent_id": agent_id})
        return WebhookEvent(provider, "closed", ticket_id, close)
    update = _update(status=status, agent_id=agent_id, **given)
    return WebhookEvent(provider, "updated", ticket_id, update)


def _update(**values: Any) -> TicketUpdate:
    return _model(TicketUpdate, {k: v for k, v in values.items() if v is not None})


def _model(model: type[BaseModel], values: dict[str, Any]) -> Any:
    # The values were read from the payload already: a refusal here is a label too long.
    try:
        return model(**values)
    except ValidationError as exc:
        field, message = first_invalid(exc)
        raise InvalidError(f"{field}: {message}", field=field) from None


def _ticket_in(ticket_id: str, **fields: tuple[str, Any]) -> TicketIn:
    """A TicketIn from (payload path, value) pairs; a refusal names the payload's path."""
    body_path, body = fields["body"]
    if not isinstance(body, str) or not body.strip():
        raise InvalidError(f"{body_path}: the ticket's text is empty", field=body_path)
    values = {name: value for name, (_, value) in fields.items() if value is not None}
    values["body"] = body.strip()
    try:
        return TicketIn(ticket_id=ticket_id, **values)
    except ValidationError as exc:
        field, message = first_invalid(exc)
        path = fields[field][0] if field in fields else field
        raise InvalidError(f"{path}: {message}", field=path) from None


# --- payload access -------------------------------------------------------------------------


def _get(payload: Mapping[str, Any], path: str) -> Any:
    node: Any = payload
    walked: list[str] = []
    for part in path.split("."):
        if not isinstance(node, Mapping):
            where = ".".join(walked)
            raise InvalidError(f"{where}: expected an object, got {_kind(node)}", field=where)
        node = node.get(part)
        walked.append(part)
    return node


def _object(payload: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    value = _get(payload, path)
    if not isinstance(value, Mapping):
        raise InvalidError(f"{path}: expected an object, got {_kind(value)}", field=path)
    return value


def _optional_text(payload: Mapping[str, Any], path: str) -> str | None:
    value = _get(payload, path)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidError(f"{path}: expected a string, got {_kind(value)}", field=path)
    return value.strip() or None


def _text(payload: Mapping[str, Any], path: str) -> str:
    value = _optional_text(payload, path)
    if value is None:
        raise InvalidError(f"{path}: required, and missing or empty", field=path)
    return value


def _optional_id(payload: Mapping[str, Any], path: str) -> str | None:
    value = _get(payload, path)
    if value is None or value == "":
        return None
    # bool is an int: a true/false id is a mistake, not ticket 1.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidError(f"{path}: expected a numeric id, got {_kind(value)}", field=path)
    text = str(value).strip()
    if not _NUMERIC_ID.match(text):
        raise InvalidError(f"{path}: expected a numeric id, got '{text[:40]}'", field=path)
    return text


def _ticket_id(provider: str, payload: Mapping[str, Any], path: str) -> str:
    value = _optional_id(payload, path)
    if value is None:
        raise InvalidError(f"{path}: the ticket id is missing", field=path)
    return f"{provider}-{value}"


def _prefixed(provider: str, value: str | None) -> str | None:
    return None if value is None else f"{provider}-{value}"


def _status(
    table: Mapping[str, Status], payload: Mapping[str, Any], path: str, what: str
) -> Status:
    value = _get(payload, path)
    if isinstance(value, bool) or not isinstance(value, int | str) or str(value).strip() == "":
        raise InvalidError(f"{path}: expected a {what}, got {_kind(value)}", field=path)
    return _lookup(table, str(value), path, what)


def _priority(
    table: Mapping[str, tuple[str, ...]],
    payload: Mapping[str, Any],
    path: str,
    levels: Sequence[str],
    provider: str,
) -> str | None:
    value = _get(payload, path)
    if value is None or (isinstance(value, str) and value.strip() in _NO_PRIORITY):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidError(f"{path}: expected a priority, got {_kind(value)}", field=path)
    return _level(table, str(value), path, levels, provider)


def _lookup(table: Mapping[str, Any], raw: str, path: str, what: str) -> Any:
    key = raw.strip().lower()
    if key not in table:
        known = ", ".join(name for name in table if not name.isdigit())
        raise InvalidError(f"{path}: unknown {what} '{raw[:40]}' (known: {known})", field=path)
    return table[key]


def _level(
    table: Mapping[str, tuple[str, ...]],
    raw: str,
    path: str,
    levels: Sequence[str],
    provider: str,
) -> str:
    candidates = _lookup(table, raw, path, f"{provider} priority")
    for name in candidates:
        if name in levels:
            return name
    raise InvalidError(
        f"{path}: {provider} priority '{raw[:40]}' has no level on this workspace's scale "
        f"(wanted one of {', '.join(candidates)}; levels: {', '.join(levels)})",
        field=path,
    )


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", bool: "a boolean", type(None): "nothing"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, int | float) else f"a {type(value).__name__}"


class _TextOnly(HTMLParser):
    """Collects an HTML fragment's text, a line break per block element."""

    BLOCKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_text(fragment: str) -> str:
    """The text of an HTML fragment (Freshdesk sends ticket descriptions as HTML).

    The standard library's parser does the decoding; this only keeps its text and
    line breaks, since the model reads words, not markup.
    """
    parser = _TextOnly()
    parser.feed(fragment)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


# --- write-back (pure) ----------------------------------------------------------------------


def write_back(provider: str, out: TicketOut) -> dict[str, Any]:
    """The helpdesk's own update-ticket body carrying a ticket's triage.

    Zendesk (``PUT /api/v2/tickets/{id}``): ``{"ticket": {"priority", "additional_tags"}}``;
    additional_tags adds ours without replacing the ticket's other tags. Freshdesk
    (``PUT /api/v2/tickets/{id}``): ``{"priority": 1-4, "tags", "custom_fields":
    {"cf_triage_category", "cf_triage_tier", "cf_triage_sla_due_at"}}``. A value the ticket
    does not have (no priority, a level with no helpdesk match) is left out.

    Raises:
        NotFoundError: An unknown provider.
    """
    tags = triage_tags(out)
    if provider == "zendesk":
        ticket: dict[str, Any] = {"additional_tags": tags}
        if (priority := TO_ZENDESK_PRIORITY.get(out.priority or "")) is not None:
            ticket["priority"] = priority
        return {"ticket": ticket}
    if provider == "freshdesk":
        answer: dict[str, Any] = {"tags": tags, "custom_fields": _freshdesk_fields(out)}
        if (level := TO_FRESHDESK_PRIORITY.get(out.priority or "")) is not None:
            answer["priority"] = level
        return answer
    raise NotFoundError(
        f"unknown webhook provider '{provider[:64]}' (known: {', '.join(PROVIDERS)})"
    )


def triage_tags(out: TicketOut) -> list[str]:
    """``triage_<category>``, ``tier_<tier>``, ``triage_needs_review``, one
    ``escalation_<signal>`` per escalation signal and ``triage_possible_duplicate``, as
    helpdesk tags (the agent's view shows why a ticket jumped the queue)."""
    tags = []
    if out.category:
        tags.append(f"triage_{_tag(out.category)}")
    if out.tier:
        tags.append(f"tier_{_tag(out.tier)}")
    if out.needs_review:
        tags.append("triage_needs_review")
    if out.triage is not None:
        tags += [f"escalation_{_tag(signal)}" for signal in out.triage.escalation]
        if out.triage.possible_duplicates:
            tags.append("triage_possible_duplicate")
    return tags


def _tag(value: str) -> str:
    # Zendesk splits tags on spaces and lowercases them: keep one token per value.
    return re.sub(r"[^a-z0-9_-]+", "_", value.lower()).strip("_") or "unknown"


def _freshdesk_fields(out: TicketOut) -> dict[str, Any]:
    due: datetime | None = out.sla_due_at
    return {
        "cf_triage_category": out.category,
        "cf_triage_tier": out.tier,
        # Freshdesk's own timestamps are UTC to the second with a Z.
        "cf_triage_sla_due_at": None
        if due is None
        else f"{due.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
    }


# --- applying an event ----------------------------------------------------------------------


def apply_event(
    conn: Connection, settings: Settings, triager: Any, event: WebhookEvent, now: datetime
) -> tuple[TicketOut, bool]:
    """Performs ``event`` through the service in ``conn``'s transaction.

    Returns:
        The ticket after the event, and whether the event changed anything: a created event
        for a stored ticket, a close of a closed ticket and a change to the values in effect
        (a retry, or our own write-back echoed by the helpdesk) change nothing.

    Raises:
        ApiError: What the service raises (404 unknown ticket, 409 illegal transition, 422).
    """
    current = _stored(conn, event.ticket_id)
    if event.kind == "created":
        if current is not None:
            return current, False
        return service.create_ticket(conn, settings, triager, event.body, now), True
    if current is None:
        raise NotFoundError(f"unknown ticket '{event.ticket_id}'", field="ticket_id")
    if event.kind == "closed":
        if current.status is Status.CLOSED:
            return current, False
        close = _close_news(event.body, current)
        return service.close_ticket(conn, settings, triager, event.ticket_id, close, now), True
    change = _update_news(event.body, current)
    if change is None:
        return current, False
    return service.update_ticket(conn, settings, triager, event.ticket_id, change, now), True


def _stored(conn: Connection, ticket_id: str) -> TicketOut | None:
    try:
        return service.get_ticket(conn, ticket_id)
    except NotFoundError:
        return None


def _close_news(close: TicketClose, current: TicketOut) -> TicketClose:
    # A label equal to the one in effect is our write-back, not an agent's final answer.
    return close.model_copy(
        update={
            "category": None if close.category == current.category else close.category,
            "priority": None if close.priority == current.priority else close.priority,
        }
    )


def _update_news(change: TicketUpdate, current: TicketOut) -> TicketUpdate | None:
    values: dict[str, Any] = {}
    if change.category is not None and change.category != current.category:
        values["category"] = change.category
    if change.priority is not None and change.priority != current.priority:
        values["priority"] = change.priority
    if (status := target_status(change.status, current.status)) is not None:
        values["status"] = status
    if not values:
        return None
    return TicketUpdate(**values, agent_id=change.agent_id, reason=change.reason)


def target_status(wanted: Status | None, current: Status | None) -> Status | None:
    """The lifecycle status a helpdesk's status means for a ticket now at ``current``.

    None when there is nothing to change: no status, the one it has, or ``new`` (a helpdesk
    reports ``new`` until an agent touches a ticket; it is never a transition's target). A
    working or waiting status on a resolved or closed ticket means the helpdesk reopened it,
    which the lifecycle calls ``reopened``.
    """
    now = current or Status.NEW
    if wanted is None or wanted is Status.NEW or wanted is now:
        return None
    if now in (Status.RESOLVED, Status.CLOSED) and wanted is not Status.RESOLVED:
        return Status.REOPENED
    return wanted


# --- the route ------------------------------------------------------------------------------

router = APIRouter(tags=["webhooks"])


@router.post(
    "/v1/webhooks/{provider}",
    response_model=WebhookAnswer,
    dependencies=[Depends(deps.writer)],
    summary="Receive a Zendesk or Freshdesk ticket event",
    responses={
        status: {"model": ErrorOut, "description": meaning}
        for status, meaning in {
            401: "No token, or an unknown or revoked one.",
            403: "A read token.",
            404: "Unknown provider, or an update or close of a ticket never created.",
            409: "A transition the lifecycle does not allow.",
            413: "Body over the size limit.",
            422: "A malformed payload (`error.field` is its dotted path in the payload).",
            429: "Over the rate limit (see Retry-After).",
            503: "No champion to triage a new ticket with.",
        }.items()
    },
)
def receive_webhook(
    provider: str,
    payload: Annotated[dict[str, Any], Body(description="The helpdesk's own JSON payload")],
    ctx: Annotated[deps.ApiContext, Depends(deps.context)],
) -> WebhookAnswer:
    """Creates, updates or closes the ticket the event names, and answers the fields to
    write back to the helpdesk (docs/api/webhooks/README.md)."""
    started = time.perf_counter()
    event = parse(provider, payload, ctx.settings.priority_levels)
    with ctx.engine.begin() as conn:
        out, applied = apply_event(conn, ctx.settings, ctx.triager, event, store.utcnow())
    logger.info(
        "webhook %s %s ticket %s: applied=%s status=%s (%.1f ms)",
        provider,
        event.kind,
        event.ticket_id,
        applied,
        out.status,
        (time.perf_counter() - started) * 1000,
    )
    return WebhookAnswer(
        ticket_id=out.ticket_id,
        event=event.kind,
        applied=applied,
        write_back=write_back(provider, out),
    )
