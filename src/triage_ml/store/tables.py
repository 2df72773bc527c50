"""The ticket store's tables: the one place its schema is declared (migrations follow it)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

ACCEPTED, BLOCKED = "accepted", "blocked"

TICKET_FIELDS: tuple[str, ...] = (
    "ticket_id",
    "created_at",
    "channel",
    "customer_id",
    "customer_tier",
    "customer_ltv",
    "language",
    "subject",
    "body",
    "category",
    "priority",
    "campaign_id",
)

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("ticket_id", sa.String(128), primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=True, index=True),
    sa.Column("channel", sa.String(64)),
    sa.Column("customer_id", sa.String(128)),
    sa.Column("customer_tier", sa.String(64)),
    sa.Column("customer_ltv", sa.Float),
    sa.Column("language", sa.String(16)),
    sa.Column("subject", sa.Text),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("category", sa.String(128)),
    sa.Column("priority", sa.String(64)),
    # Further labels, where the source's column mapping names them (issue 27).
    sa.Column("subcategory", sa.String(128)),
    sa.Column("type", sa.String(64)),
    sa.Column("team", sa.String(128)),
    # The marketing campaign behind the ticket (a source's campaign_id or utm_campaign), if any.
    sa.Column("campaign_id", sa.String(128)),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("batch_id", sa.String(64), nullable=False, index=True),
    sa.Column("ingested_at", sa.DateTime, nullable=False),
)
# A customer's tickets in a time window, read from the index alone (scoring's
# repeat-contact history: see migration 0004).
sa.Index(
    "ix_tickets_customer_history", tickets.c.customer_id, tickets.c.created_at, tickets.c.ticket_id
)

# A final label's provenance. "original": ingested with the ticket; "agent-corrected": an agent
# changed the model's answer; "agent-confirmed": an agent accepted it; "auto-applied": the
# model's answer applied with nobody looking (never trained on unless configured).
ORIGINAL, CORRECTED, CONFIRMED, AUTO_APPLIED = (
    "original",
    "agent-corrected",
    "agent-confirmed",
    "auto-applied",
)
LABEL_SOURCES: tuple[str, ...] = (ORIGINAL, CORRECTED, CONFIRMED, AUTO_APPLIED)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("feedback_id", sa.String(64), primary_key=True),
    sa.Column("ticket_id", sa.String(128), nullable=False, index=True),
    sa.Column("corrected_category", sa.String(128)),
    sa.Column("corrected_priority", sa.String(64)),
    sa.Column("agent_id", sa.String(128)),
    sa.Column("corrected_at", sa.DateTime, nullable=False),
    sa.Column("reason", sa.Text),
    # Where the label came from (LABEL_SOURCES) and which model version's answer it judges.
    sa.Column("label_source", sa.String(32)),
    sa.Column("model_version", sa.String(32)),
    sa.Column("batch_id", sa.String(64), nullable=False),
    sa.Column("ingested_at", sa.DateTime, nullable=False),
)

surveys = sa.Table(
    "surveys",
    metadata,
    sa.Column("survey_id", sa.String(64), primary_key=True),
    sa.Column("ticket_id", sa.String(128), nullable=False, index=True),
    sa.Column("csat", sa.Integer, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("answered_at", sa.DateTime, nullable=False),
    sa.Column("batch_id", sa.String(64), nullable=False),
    sa.Column("ingested_at", sa.DateTime, nullable=False),
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False),
    sa.Column("rows_stored", sa.Integer, nullable=False),
    sa.Column("rows_quarantined", sa.Integer, nullable=False),
    sa.Column("rows_skipped", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("report", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("row_number", sa.Integer),
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("released_at", sa.DateTime),
    sa.Column("released_batch", sa.String(64)),
)

# Tiers of a prediction: applied without review, shown to the agent, or decided by a human.
AUTO, SUGGEST, REVIEW = "auto", "suggest", "review"


def _prediction_columns() -> list[sa.Column]:
    return [
        sa.Column("ticket_id", sa.String(128), primary_key=True),
        sa.Column("model_version", sa.String(32), primary_key=True),
        sa.Column("category", sa.String(128)),
        sa.Column("category_proba", sa.Float),
        sa.Column("top3", sa.Text),
        sa.Column("priority", sa.String(64)),
        sa.Column("priority_proba", sa.Float),
        sa.Column("sentiment", sa.Float),
        sa.Column("route", sa.String(128)),
        sa.Column("needs_review", sa.Boolean),
        sa.Column("tier", sa.String(16)),
        sa.Column("scored_at", sa.DateTime, nullable=False),
        *answer_columns(),
    ]


def answer_columns() -> list[sa.Column]:
    """The answers added by issue 27: more heads, language, escalation, priority score, duplicates.

    JSON lists and objects (escalation, priority_parts, possible_duplicates) are kept as text.
    """
    return [
        sa.Column("subcategory", sa.String(128)),
        sa.Column("subcategory_proba", sa.Float),
        sa.Column("type", sa.String(64)),
        sa.Column("type_proba", sa.Float),
        sa.Column("team", sa.String(128)),
        sa.Column("team_proba", sa.Float),
        sa.Column("language", sa.String(16)),
        sa.Column("sentiment_reason", sa.String(128)),
        sa.Column("escalation", sa.Text),
        sa.Column("priority_score", sa.Float),
        sa.Column("priority_parts", sa.Text),
        sa.Column("priority_review", sa.Boolean),
        sa.Column("possible_duplicates", sa.Text),
    ]


predictions = sa.Table("predictions", metadata, *_prediction_columns())

# A shadow challenger's answers to the same tickets (the parallel run): the same shape as
# ``predictions``, kept apart so that nothing that answers callers can ever read them.
shadow_predictions = sa.Table("shadow_predictions", metadata, *_prediction_columns())

# Per-class tier thresholds of a model version: "held-out" ones set at training (copied from
# the model's config when it is first scored) and "live" ones re-estimated by the monitor
# from labeled production rows. Scoring applies the newest live set when there is one.
tier_thresholds = sa.Table(
    "tier_thresholds",
    metadata,
    sa.Column("model_version", sa.String(32), primary_key=True),
    sa.Column("category", sa.String(128), primary_key=True),
    sa.Column("tier", sa.String(16), primary_key=True),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("precision_low", sa.Float),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("estimated_at", sa.DateTime, nullable=False),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("decided_at", sa.DateTime, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("challenger_version", sa.String(32)),
    sa.Column("champion_version", sa.String(32)),
    sa.Column("promoted", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("details", sa.Text),
)

# One row per registered model. A guarded alias move updates its row first, so
# concurrent moves of the same model's aliases queue on the database's write
# lock (SQLite's database lock, PostgreSQL's row lock) instead of racing:
# MLflow's registry has no compare-and-set of its own.
alias_locks = sa.Table(
    "alias_locks",
    metadata,
    sa.Column("model_name", sa.String(128), primary_key=True),
    sa.Column("locked_at", sa.DateTime, nullable=False),
)

# A planned alias move, committed before the aliases move (state "pending") and
# closed after ("done" with its audit row, or "undone"). A pending intent whose
# owner process is gone is what a crash left mid-move: the next guarded move or
# reconciliation puts the aliases back to ``before_*`` (see registry.promotion).
PENDING, DONE, UNDONE = "pending", "done", "undone"
alias_intents = sa.Table(
    "alias_intents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("owner", sa.String(300), nullable=False),
    sa.Column("before_champion", sa.String(32)),
    sa.Column("before_previous", sa.String(32)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("closed_at", sa.DateTime),
    sa.Index("ix_alias_intents_model_state", "model_name", "state"),
)

# ---- the ticket events API (issue 26) ----------------------------------------------------

# A ticket's place in its lifecycle, as the events API keeps it: its status, the answer and
# priority in effect, its SLA due time and resolution. Batch-ingested tickets have no row
# until the API first changes them. ``category`` and ``priority`` are the ones in effect
# (the champion's answer, then the agent's), kept here so the list filters read one table.
ticket_state = sa.Table(
    "ticket_state",
    metadata,
    sa.Column("ticket_id", sa.String(128), primary_key=True),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("category", sa.String(128), index=True),
    sa.Column("priority", sa.String(64)),
    # "model" while the priority is the champion's answer, "agent" once an agent set it.
    sa.Column("priority_source", sa.String(16)),
    sa.Column("tier", sa.String(16)),
    sa.Column("needs_review", sa.Boolean),
    # The champion version whose answer was served for this ticket.
    sa.Column("model_version", sa.String(32)),
    sa.Column("opened_at", sa.DateTime, nullable=False),
    sa.Column("sla_due_at", sa.DateTime),
    sa.Column("resolution", sa.Text),
    sa.Column("closed_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

# Every change the API made to a ticket, in order: created, status changes, corrections,
# close. ``details`` is JSON of field names and labels, never ticket text.
ticket_events = sa.Table(
    "ticket_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.String(128), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("from_status", sa.String(32)),
    sa.Column("to_status", sa.String(32)),
    sa.Column("actor", sa.String(128)),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("details", sa.Text),
)

# The first answer to each write sent with an Idempotency-Key, per token: a repeat with the
# same body gets it again; one with another body is refused. Written in the write's own
# transaction, so a key never stands for a write that did not happen.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("token_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(300), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
)

# Bearer tokens of the API: only a SHA-256 of each secret is kept, with its scope.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_used_at", sa.DateTime),
    sa.Column("revoked_at", sa.DateTime),
)
