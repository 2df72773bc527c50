"""The values and columns of the generated tables."""

from __future__ import annotations

from datetime import datetime

from triage_ml.store.tables import TICKET_FIELDS

CATEGORIES: tuple[str, ...] = (
    "Billing",
    "Technical",
    "Account",
    "Shipping",
    "Returns",
    "Sales",
    "Feedback",
)
PRIORITIES: tuple[str, ...] = ("critical", "high", "normal", "low")
CHANNELS: tuple[str, ...] = ("email", "chat", "phone", "web", "social")
TIERS: tuple[str, ...] = ("free", "standard", "premium", "enterprise")
LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr")

DEFAULT_START = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
DEFAULT_UNLABELED_START = datetime.fromisoformat("2026-07-01T00:00:00+00:00")

# The ticket file's columns are the store's ticket fields, in the store's order.
TICKET_COLUMNS: tuple[str, ...] = TICKET_FIELDS
FEEDBACK_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "corrected_category",
    "corrected_priority",
    "agent_id",
    "corrected_at",
    "reason",
)
SURVEY_COLUMNS: tuple[str, ...] = ("ticket_id", "csat", "comment", "answered_at")
