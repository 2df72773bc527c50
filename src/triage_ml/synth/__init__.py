"""The synthetic ticket generator; its text material is data in ``templates.json``."""

from __future__ import annotations

from triage_ml.synth.generator import SyntheticData, generate, generate_unlabeled, write
from triage_ml.synth.schema import (
    CATEGORIES,
    CHANNELS,
    DEFAULT_START,
    DEFAULT_UNLABELED_START,
    FEEDBACK_COLUMNS,
    LANGUAGES,
    PRIORITIES,
    SURVEY_COLUMNS,
    TICKET_COLUMNS,
    TIERS,
)

__all__ = [
    "CATEGORIES",
    "CHANNELS",
    "DEFAULT_START",
    "DEFAULT_UNLABELED_START",
    "FEEDBACK_COLUMNS",
    "LANGUAGES",
    "PRIORITIES",
    "SURVEY_COLUMNS",
    "TICKET_COLUMNS",
    "TIERS",
    "SyntheticData",
    "generate",
    "generate_unlabeled",
    "write",
]
