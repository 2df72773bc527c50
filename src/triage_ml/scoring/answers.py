"""The served answers as the platform keeps them: which fields, which are JSON text, reading them.

The model's output frame (and the predictions table, and CSV files) holds lists and objects as
JSON text, because MLflow's signature types columns, not nested values; the API, Parquet and JSON
outputs and the CLI give them back as values. This module imports nothing heavy, so the CLI can
use it at start-up.
"""

from __future__ import annotations

import json
from typing import Any

# The answers kept as JSON text.
JSON_ANSWERS: tuple[str, ...] = ("top3", "escalation", "priority_parts", "possible_duplicates")

# A scored ticket's answers as ``score`` and ``demo`` show them: the model's output columns but
# top3, and the duplicates. Spelled out so that the CLI does not import the model runtime at
# start-up; tests/unit/test_render_answers.py holds it to OUTPUT_COLUMNS.
ANSWER_FIELDS: tuple[str, ...] = (
    "ticket_id",
    "model_version",
    "category",
    "category_proba",
    "subcategory",
    "subcategory_proba",
    "type",
    "type_proba",
    "team",
    "team_proba",
    "priority",
    "priority_proba",
    "priority_score",
    "priority_parts",
    "priority_review",
    "sentiment",
    "sentiment_reason",
    "language",
    "escalation",
    "route",
    "needs_review",
    "tier",
    "possible_duplicates",
)


def parse_stored(value: Any, empty: Any = None) -> Any:
    """A JSON answer as stored, parsed; ``empty`` where none is (a model logged before the field).

    Args:
        value: The stored text, or None/NaN.
        empty: What a missing answer reads as ([] for lists, None for objects).

    Returns:
        The parsed list or object, or ``empty``.
    """
    return json.loads(value) if isinstance(value, str) and value else empty
