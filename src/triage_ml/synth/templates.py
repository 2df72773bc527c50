"""The generator's text material, read from the package's ``templates.json``.

``templates.json`` holds every subject, sentence and word list the generator
writes, so the text can be edited without touching Python:

- ``topics``: per category, what a ticket can be about, with a hidden
  ``severity`` (0 = question, 3 = outage), a relative ``weight``, the readable
  ``label`` the help desk records as its subcategory, its ITIL ``type``, and
  its German subjects and sentences (``de``);
- subjects, sentences and channel framing; ``{slot}`` placeholders such as
  ``{amount}`` or ``{order}`` are filled per ticket by
  :mod:`triage_ml.synth.text`;
- ``vocabulary``: the word lists those slots draw from;
- ``german``: the rest of the German material (tone, escalation cues, channel
  framing, dates) for tickets written in German;
- ``duplicates``: how a customer re-sends a ticket (follow-up lines, subject
  prefixes, words swapped for others).

The generator picks list entries by position, so the order of every list is
part of the output: reordering or adding an entry changes the data a seed
gives. An entry may appear twice to make it more likely (``"$"`` among the
currencies).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple

from triage_ml.synth.schema import CATEGORIES, LANGUAGES

# Escalation cues by kind, in the column order of the generator's cue matrix.
CUE_KINDS: tuple[str, ...] = ("legal", "social", "executive", "cancel", "impact")
# Angry sentences by anger level 1 and 2 (level 0 writes none).
MOODS: tuple[str, ...] = ("annoyed", "furious")
# Survey comments by CSAT bucket: 1-2, 3, 4-5.
CSAT_BUCKETS: tuple[str, ...] = ("unhappy", "neutral", "happy")

Strings = tuple[str, ...]


class Topic(NamedTuple):
    """What a ticket is about inside its category; its ``label`` is the ticket's subcategory."""

    name: str
    severity: float
    weight: float
    subjects: Strings
    sentences: Strings
    label: str
    ticket_type: str


@dataclass(frozen=True)
class Vocabulary:
    """Word lists the ``{slot}`` placeholders draw from."""

    first_names: Strings
    last_names: Strings
    products: Strings
    devices: Strings
    plans: Strings
    errors: Strings
    features: Strings
    cities: Strings
    countries: Strings
    carriers: Strings
    operating_systems: Strings
    browsers: Strings
    months: Strings
    date_words: Strings
    times: Strings
    email_domains: Strings
    amounts: Strings
    currencies: Strings
    seats: Strings


@dataclass(frozen=True)
class Channels:
    """How chat, phone, web-form and social tickets are framed."""

    chat_subjects: Strings
    phone_subjects: Strings
    phone_openers: Strings
    web_openers: Strings
    social_subjects: Strings
    social_mention: str
    social_hashtags: Strings


@dataclass(frozen=True)
class Duplicates:
    """How a customer re-sends a ticket: a follow-up line, a subject prefix, a few words changed."""

    follow_ups: Mapping[str, Strings]
    subject_prefixes: Strings
    rewordings: Mapping[str, str]


@dataclass(frozen=True)
class Templates:
    """All text material; sequences indexed by category follow ``CATEGORIES``."""

    topics: tuple[tuple[Topic, ...], ...]
    short_bodies: tuple[Strings, ...]
    short_generic_bodies: Strings
    short_subjects: Strings
    generic_subjects: Strings
    local_subjects: Mapping[str, Strings]
    urgent_subject_prefix: str
    generic_sentences: Strings
    context_sentences: Strings
    tried_sentences: Strings
    polite_sentences: Strings
    angry_sentences: tuple[Strings, ...]
    escalation_cues: tuple[Strings, ...]
    greetings: Mapping[str, Strings]
    closings: Mapping[str, Strings]
    apologies: Mapping[str, str]
    mobile_signature: str
    channels: Channels
    category_reasons: Strings
    priority_reasons: Strings
    conflict_reasons: Strings
    survey_comments: tuple[Strings, ...]
    vocabulary: Vocabulary
    duplicates: Duplicates | None = None


def _ordered(raw: Mapping[str, Any], names: Sequence[str], what: str) -> tuple[Any, ...]:
    """The values of ``raw`` in the order of ``names``, which must be exactly its keys."""
    if set(raw) != set(names):
        raise ValueError(
            f"templates.json: {what} must have the keys {list(names)}, got {list(raw)}"
        )
    return tuple(raw[name] for name in names)


def _topic(raw: Mapping[str, Any], language: str) -> Topic:
    """One topic, its subjects and sentences in English or (``"de"``) German."""
    text = raw if language == "en" else raw[language]
    return Topic(
        raw["name"],
        float(raw["severity"]),
        float(raw["weight"]),
        tuple(text["subjects"]),
        tuple(text["sentences"]),
        raw["label"],
        raw["type"],
    )


def _topics(raw: Mapping[str, Any], language: str = "en") -> tuple[tuple[Topic, ...], ...]:
    """Topics per category, in ``CATEGORIES`` order."""
    return tuple(
        tuple(_topic(t, language) for t in topics) for topics in _ordered(raw, CATEGORIES, "topics")
    )


def _channels(raw: Mapping[str, Any]) -> Channels:
    return Channels(
        chat_subjects=tuple(raw["chat"]["subjects"]),
        phone_subjects=tuple(raw["phone"]["subjects"]),
        phone_openers=tuple(raw["phone"]["openers"]),
        web_openers=tuple(raw["web"]["openers"]),
        social_subjects=tuple(raw["social"]["subjects"]),
        social_mention=raw["social"]["mention"],
        social_hashtags=tuple(raw["social"]["hashtags"]),
    )


def _per_language(raw: Mapping[str, Any], languages: Sequence[str], what: str) -> dict[str, Any]:
    """``raw`` keyed by language, checked to cover exactly ``languages``."""
    return dict(zip(languages, _ordered(raw, languages, what), strict=True))


def _local_subjects(raw: Mapping[str, Any]) -> dict[str, Strings]:
    """Per non-English language, one subject line per category in ``CATEGORIES`` order."""
    by_language = _per_language(raw, LANGUAGES[1:], "local_subjects")
    return {
        language: tuple(_ordered(phrases, CATEGORIES, f"local_subjects.{language}"))
        for language, phrases in by_language.items()
    }


def _sentences(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The sentence and subject fields of :class:`Templates`."""
    plain = (
        "short_generic_bodies",
        "short_subjects",
        "generic_subjects",
        "generic_sentences",
        "context_sentences",
        "tried_sentences",
        "polite_sentences",
    )
    reasons = raw["correction_reasons"]
    return {name: tuple(raw[name]) for name in plain} | {
        "short_bodies": tuple(
            map(tuple, _ordered(raw["short_bodies"], CATEGORIES, "short_bodies"))
        ),
        "angry_sentences": (
            (),
            *map(tuple, _ordered(raw["angry_sentences"], MOODS, "angry_sentences")),
        ),
        "escalation_cues": tuple(
            map(tuple, _ordered(raw["escalation_cues"], CUE_KINDS, "escalation_cues"))
        ),
        "category_reasons": tuple(reasons["category"]),
        "priority_reasons": tuple(reasons["priority"]),
        "conflict_reasons": tuple(reasons["conflict"]),
        "survey_comments": tuple(
            map(tuple, _ordered(raw["survey_comments"], CSAT_BUCKETS, "survey_comments"))
        ),
    }


def parse_templates(raw: Mapping[str, Any]) -> Templates:
    """Build :class:`Templates` from the parsed JSON document.

    Args:
        raw: the content of ``templates.json``.

    Returns:
        The text material, sequences as tuples, categories in ``CATEGORIES`` order.

    Raises:
        ValueError: if categories, languages, cue kinds, moods or CSAT buckets
            do not match the generator's.
        KeyError: if a field is missing.
    """
    greetings = _per_language(raw["greetings"], LANGUAGES, "greetings")
    closings = _per_language(raw["closings"], LANGUAGES, "closings")
    return Templates(
        topics=_topics(raw["topics"]),
        local_subjects=_local_subjects(raw["local_subjects"]),
        urgent_subject_prefix=raw["urgent_subject_prefix"],
        greetings={language: tuple(g) for language, g in greetings.items()},
        closings={language: tuple(c) for language, c in closings.items()},
        apologies=_per_language(raw["apologies"], LANGUAGES[1:], "apologies"),
        mobile_signature=raw["mobile_signature"],
        channels=_channels(raw["channels"]),
        vocabulary=Vocabulary(**{k: tuple(v) for k, v in raw["vocabulary"].items()}),
        duplicates=_duplicates(raw["duplicates"]) if "duplicates" in raw else None,
        **_sentences(raw),
    )


def _duplicates(raw: Mapping[str, Any]) -> Duplicates:
    return Duplicates(
        follow_ups={language: tuple(lines) for language, lines in raw["follow_ups"].items()},
        subject_prefixes=tuple(raw["subject_prefixes"]),
        rewordings=dict(raw["rewordings"]),
    )


def parse_german(raw: Mapping[str, Any], english: Templates) -> Templates:
    """The material of tickets written in German: ``english`` with every text in German.

    Greetings, closings and local subjects are per language already; the apology
    for the customer's English becomes a plain German opening.

    Args:
        raw: the content of ``templates.json``.
        english: :func:`parse_templates` of the same content.

    Returns:
        Templates the English renderer writes German tickets with.

    Raises:
        KeyError: if a topic has no ``de`` text or the ``german`` section misses a field.
    """
    de = raw["german"]
    plain = ("short_generic_bodies", "short_subjects", "generic_subjects", "generic_sentences")
    return dataclasses.replace(
        english,
        topics=_topics(raw["topics"], "de"),
        short_bodies=tuple(map(tuple, _ordered(de["short_bodies"], CATEGORIES, "short_bodies"))),
        **{name: tuple(de[name]) for name in plain},
        context_sentences=tuple(de["context_sentences"]),
        tried_sentences=tuple(de["tried_sentences"]),
        polite_sentences=tuple(de["polite_sentences"]),
        angry_sentences=((), *map(tuple, _ordered(de["angry_sentences"], MOODS, "angry"))),
        escalation_cues=tuple(map(tuple, _ordered(de["escalation_cues"], CUE_KINDS, "cues"))),
        urgent_subject_prefix=de["urgent_subject_prefix"],
        apologies={"de": de["opening"]},
        mobile_signature=de["mobile_signature"],
        channels=_channels(de["channels"]),
        vocabulary=dataclasses.replace(
            english.vocabulary, **{k: tuple(v) for k, v in de["vocabulary"].items()}
        ),
    )


@functools.cache
def _raw_templates() -> dict[str, Any]:
    text = resources.files("triage_ml.synth").joinpath("templates.json").read_text("utf-8")
    return json.loads(text)


@functools.cache
def load_templates() -> Templates:
    """The package's text material, read from ``templates.json`` on first use.

    Returns:
        The parsed :class:`Templates`; later calls return the same object.
    """
    return parse_templates(_raw_templates())


@functools.cache
def load_german_templates() -> Templates:
    """The package's material for tickets written in German (see :func:`parse_german`).

    Returns:
        The German :class:`Templates`; later calls return the same object.
    """
    return parse_german(_raw_templates(), load_templates())
