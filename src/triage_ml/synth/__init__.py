"""The synthetic ticket generator."""

from __future__ import annotations

from triage_ml.synth.generator import (
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
    SyntheticData,
    generate,
    generate_unlabeled,
    write,
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
