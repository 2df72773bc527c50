"""Escalation signals: legal threats, social-media mentions, executives, outages, repeat contacts.

Escalation terms are domain patterns, not sentiment, and no library ships
them: they are data (``data_contracts/escalation.yaml``), copied into each
model's config when it is trained; a model logged before that carries none and
reads :data:`LEGACY_ESCALATION_TERMS`. Each term is a regular expression
matched as a whole word on the lowercased text (faster than a
case-insensitive search).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# The signals in the order an answer lists them; "repeat_contact" comes from the store's history.
TEXT_SIGNALS: tuple[str, ...] = ("legal", "social", "executive", "outage")
REPEAT_CONTACT = "repeat_contact"
SIGNALS: tuple[str, ...] = (*TEXT_SIGNALS, REPEAT_CONTACT)
# The model's feature column of each text signal.
FLAG_COLUMNS: tuple[str, ...] = tuple(f"esc_{signal}" for signal in TEXT_SIGNALS)
MAX_CACHED_TEXTS = 10_000

# The English terms of the models before the terms became data (issue 27).
LEGACY_ESCALATION_TERMS: dict[str, list[str]] = {
    "legal": [
        "lawyer", "attorney", "legal action", "lawsuit", "sue", "court", "chargeback",
        "ombudsman", "regulator",
    ],
    "social": [
        "twitter", "facebook", "instagram", "linkedin", "tiktok", "reddit", "social media",
        "review sites?", "trustpilot", "post (?:this|about)",
    ],
    "executive": [
        "ceo", "cfo", "cto", "vp", "vice president", "executive", "board", "director", "management",
    ],
    "outage": [
        "outage", "down", "offline", "not loading", "crash(?:ed|es|ing)?", "unavailable",
        "data loss", "lost (?:all|our) data", "breach", "hacked",
    ],
}  # fmt: skip


@dataclass(frozen=True, eq=False)
class Patterns:
    """The compiled terms: one search for any signal, then one per signal.

    Most tickets raise no signal: the one search for any of them settles
    those, where one search per signal would cost each of them four.
    """

    any_signal: re.Pattern[str]
    by_signal: tuple[tuple[str, re.Pattern[str]], ...]


def patterns(terms: Mapping[str, Sequence[str]]) -> Patterns:
    """The compiled whole-word patterns of ``terms`` (signal -> regex alternatives).

    Signals outside :data:`TEXT_SIGNALS` and signals without terms are left out.

    Raises:
        re.error: A term is not a valid regular expression.
    """
    key = tuple((signal, tuple(terms[signal])) for signal in TEXT_SIGNALS if terms.get(signal))
    return _compiled(key)


@lru_cache(maxsize=8)
def _compiled(key: tuple[tuple[str, tuple[str, ...]], ...]) -> Patterns:
    by_signal = tuple((signal, _whole_words(alternatives)) for signal, alternatives in key)
    everything = [term for _, alternatives in key for term in alternatives]
    # "(?!)" never matches: a config without terms raises no text signal.
    return Patterns(_whole_words(everything) if everything else re.compile("(?!)"), by_signal)


def _whole_words(alternatives: Sequence[str]) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{'|'.join(alternatives)})\b")


@lru_cache(maxsize=MAX_CACHED_TEXTS)
def found(text: str, compiled: Patterns) -> tuple[str, ...]:
    """The text signals in ``text`` (cached: predict asks for the flags, then for the signals)."""
    lowered = text.lower()
    if not compiled.any_signal.search(lowered):
        return ()
    return tuple(signal for signal, pattern in compiled.by_signal if pattern.search(lowered))


def flag_columns(
    texts: Sequence[str], terms: Mapping[str, Sequence[str]]
) -> dict[str, list[float]]:
    """The model's escalation features: one 0/1 column per text signal.

    Args:
        texts: Ticket texts.
        terms: Signal name -> regex alternatives (a model config's ``escalation_terms``).

    Returns:
        ``esc_legal``, ``esc_social``, ``esc_executive``, ``esc_outage``, each a list of 0.0/1.0.
    """
    compiled = patterns(terms)
    columns = {column: [0.0] * len(texts) for column in FLAG_COLUMNS}
    for row, text in enumerate(texts):
        for signal in found(text, compiled):
            columns[f"esc_{signal}"][row] = 1.0
    return columns


def signals(
    texts: Sequence[str],
    repeat_contacts: np.ndarray,
    terms: Mapping[str, Sequence[str]],
    repeat_min: int,
) -> list[list[str]]:
    """The escalation signals of each ticket, in :data:`SIGNALS` order.

    Args:
        texts: Ticket texts.
        repeat_contacts: Earlier contacts of each ticket's customer in the repeat
            window (NaN where unknown).
        terms: Signal name -> regex alternatives.
        repeat_min: Earlier contacts that make a ``repeat_contact`` signal.

    Returns:
        Per ticket, the names of the signals found (an empty list where none).
    """
    compiled = patterns(terms)
    # NaN compares False: an unknown history raises no signal.
    with np.errstate(invalid="ignore"):
        repeated = np.asarray(repeat_contacts, dtype=float) >= repeat_min
    return [
        [*found(text, compiled), *([REPEAT_CONTACT] if again else [])]
        for text, again in zip(texts, repeated, strict=True)
    ]
