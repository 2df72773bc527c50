"""The API's request and response bodies (pydantic), which its OpenAPI document is built from.

Requests are strict: an unknown field is refused with 422 naming it, so a
misspelt ``categroy`` never passes as "no change". Lengths follow the ingest
contract (``data_contracts/tickets.yaml``), which every ticket also passes
before it is stored.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^\S+$")
]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class Status(StrEnum):
    """The eight lifecycle states (see :mod:`triage_ml.api.lifecycle` for the transitions)."""

    NEW = "new"
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    WAITING_ON_THIRD_PARTY = "waiting_on_third_party"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TicketIn(_Request):
    """A new ticket, as a helpdesk sends it. ``body`` is the text the model reads."""

    ticket_id: Identifier | None = Field(
        default=None, description="The helpdesk's id; one is made up when absent."
    )
    subject: str | None = Field(default=None, max_length=2000)
    body: str = Field(min_length=1, max_length=100_000, description="The ticket's text.")
    created_at: datetime | None = Field(
        default=None, description="When the customer opened it (ISO 8601); now when absent."
    )
    channel: str | None = Field(default=None, max_length=64)
    customer_id: str | None = Field(default=None, max_length=128)
    customer_tier: str | None = Field(default=None, max_length=64)
    customer_ltv: float | None = Field(default=None, ge=0, le=1e12)
    language: str | None = Field(default=None, max_length=16)
    campaign_id: str | None = Field(default=None, max_length=128)


class TicketUpdate(_Request):
    """An agent's change: a status, a category, a priority. At least one must be given."""

    status: Status | None = None
    category: Label | None = None
    priority: Label | None = None
    agent_id: str | None = Field(default=None, max_length=128)
    reason: str | None = Field(default=None, max_length=10_000)


class TicketClose(_Request):
    """The end of a ticket: its final labels (the ones in effect when absent) and resolution."""

    category: Label | None = None
    priority: Label | None = None
    resolution: str | None = Field(default=None, max_length=10_000)
    agent_id: str | None = Field(default=None, max_length=128)


class Candidate(BaseModel):
    """One of the model's top categories and its probability."""

    category: str
    proba: float


class DuplicateOut(BaseModel):
    """A recent open ticket the ticket may repeat (see the duplicates settings)."""

    ticket_id: str
    similarity: float = Field(description="Cosine similarity of the two texts, 0 to 1")
    same_customer: bool


class Triage(BaseModel):
    """The champion's answer to a ticket (the shadow challenger's is never returned).

    Answers of a model logged before a field existed have it null (lists empty).
    """

    model_version: str
    category: str
    category_proba: float
    top3: list[Candidate]
    subcategory: str | None = Field(
        default=None, description="None without a subcategory head, or when it is unsure"
    )
    subcategory_proba: float | None = None
    type: str | None = Field(default=None, description="The ticket type (e.g. incident)")
    type_proba: float | None = None
    team: str | None = Field(
        default=None, description="The team head's answer when sure (route falls back otherwise)"
    )
    team_proba: float | None = None
    priority: str | None
    priority_proba: float | None
    priority_score: float | None = Field(default=None, description="0-100, see priority_parts")
    priority_parts: dict[str, Any] | None = Field(
        default=None,
        description="The score's parts (model, value, sentiment: 0-100 or null) and weights",
    )
    priority_review: bool = Field(
        default=False,
        description="Negative sentiment, or an escalation signal raised the priority",
    )
    sentiment: float | None
    sentiment_reason: str | None = Field(
        default=None, description="Why sentiment is null (e.g. no analyzer for the language)"
    )
    language: str | None = Field(default=None, description="ISO 639-1 code detected from the text")
    escalation: list[str] = Field(
        default_factory=list, description="Signals found: legal, social, executive, outage, ..."
    )
    route: str
    tier: str = Field(description="auto, suggest or review")
    needs_review: bool
    possible_duplicates: list[DuplicateOut] = Field(
        default_factory=list, description="Recent open tickets it may repeat, most similar first"
    )
    scored_at: datetime


class LabelChange(BaseModel):
    """One entry of a ticket's label history (the feedback rows behind its final labels)."""

    category: str | None
    priority: str | None
    label_source: str
    agent_id: str | None
    model_version: str | None
    at: datetime
    reason: str | None = None


class Event(BaseModel):
    """One entry of a ticket's lifecycle: created, a status change, a correction, closed."""

    kind: str
    from_status: Status | None
    to_status: Status | None
    actor: str | None
    at: datetime


class TicketOut(BaseModel):
    """A ticket as the API returns it after a write, and as a list item."""

    ticket_id: str
    status: Status | None = Field(description="None for a batch-ingested ticket never touched here")
    category: str | None = Field(description="In effect: the agent's, else the champion's answer")
    priority: str | None
    tier: str | None
    needs_review: bool | None
    sla_due_at: datetime | None
    created_at: datetime | None
    closed_at: datetime | None = None
    resolution: str | None = None
    triage: Triage | None = Field(default=None, description="The latest answer served")


class TicketDetail(TicketOut):
    """``GET /v1/tickets/{id}``: the ticket, the answers served, its label and lifecycle history."""

    subject: str | None
    body: str
    channel: str | None
    customer_id: str | None
    language: str | None
    predictions: list[Triage]
    labels: list[LabelChange]
    events: list[Event]


class TicketPage(BaseModel):
    """A page of ``GET /v1/tickets``: pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[TicketOut]
    next_cursor: str | None


class ErrorBody(BaseModel):
    """Every error: a code, one line for a human, and the field at fault when there is one."""

    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    """The envelope of every non-2xx answer."""

    error: ErrorBody


class ListQuery(BaseModel):
    """The filters and page of ``GET /v1/tickets`` (query parameters). Newest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Status | None = None
    category: Label | None = None
    priority: Label | None = None
    tier: str | None = Field(default=None, pattern="^(auto|suggest|review)$")
    review: bool | None = Field(default=None, description="Only tickets that need review (or not)")
    escalated: bool | None = Field(
        default=None, description="Only tickets with an escalation signal (or without any)"
    )
    language: str | None = Field(
        default=None, max_length=16, description="Only tickets in this detected language"
    )
    created_from: datetime | None = Field(default=None, description="created_at >= this")
    created_to: datetime | None = Field(default=None, description="created_at < this")
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=512, description="next_cursor of a page")
