"""Sentiment of a ticket in [-1, 1], per language: VADER for English, a SentiWS scorer for German.

English is VADER's ``polarity_scores(text)["compound"]`` of vaderSentiment's
``SentimentIntensityAnalyzer``, unchanged. German is hand-written because no
maintained German analyzer ships offline on the package index (textblob-de
fails to import with current textblob, germansentiment downloads its model,
gersent flips a whole text's sign on any "nicht"): it scores the SentiWS word
lists that gersent ships as package data, with VADER's rules restated for
German (negation within a clause, intensifiers, "aber" contrast, "!" emphasis) and
VADER's normalisation. Any other language has no score (NaN) and a reason.

Each new text costs one call; the same text scored again (retraining prepares
the validation tickets and then predicts them, the gate scores the test set
with two models) is a lookup in a bounded cache.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib import resources

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

# Texts whose score is kept per analyzer (texts are cut at MAX_CHARS, so each
# cache stays within a few tens of megabytes); the least recent go first.
MAX_CACHED_TEXTS = 10_000
# The opening carries the tone, and an analyzer's cost grows with length.
MAX_CHARS = 2000

# VADER's constants (vaderSentiment.vaderSentiment: B_INCR, N_SCALAR, the
# normalisation's alpha and the "!" amplifier), restated for the German scorer.
BOOST = 0.293
NEGATION_SCALAR = -0.74
ALPHA = 15.0
EXCLAMATION = 0.292
# SentiWS weights lie in [-1, 1]; VADER's valences in [-4, 4].
SENTIWS_SCALE = 4.0

# Negations reach to their clause's end; the adverbs among them also this many words
# back ("gefällt mir nicht"), where "kein", "nichts" and "ohne" negate only what follows.
NEGATED_BEFORE = 4
NEGATIONS = frozenset({"nicht", "nichts", "nie", "niemals", "ohne"})
BACKWARD_NEGATIONS = frozenset({"nicht", "nie", "niemals"})
INTENSIFIERS = frozenset(
    {"sehr", "extrem", "total", "absolut", "völlig", "äußerst", "besonders", "wirklich", "höchst"}
)
# VADER's "but": what precedes the first contrast counts half, what follows 1.5 times.
_CONTRAST = re.compile(r"\b(?:aber|jedoch)\b")
# Formulae of a letter's opening and closing carry no sentiment ("freundlichen"
# is positive in SentiWS, "sehr" would boost the next word).
_GERMAN_FORMULAE = re.compile(
    r"mit freundlichen grüßen|freundliche grüße|(?:beste|viele|liebe|herzliche) grüße"
    r"|sehr geehrte[rs]?"
)
# Clauses end at punctuation, line breaks and dashes: a negation reaches no further.
_CLAUSES = re.compile(r"[,;:.!?()\n\u2013\u2014]+")
_WORDS = re.compile(r"[^\W\d_]+")


@lru_cache(maxsize=1)
def analyzer() -> SentimentIntensityAnalyzer:
    """The one VADER analyzer of this process (building it reads the lexicon files)."""
    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=MAX_CACHED_TEXTS)
def compound(text: str) -> float:
    """VADER's compound score of ``text``, in [-1, 1]: the library's, unchanged.

    Args:
        text: The text to score.

    Returns:
        ``SentimentIntensityAnalyzer().polarity_scores(text)["compound"]``.
    """
    return analyzer().polarity_scores(text)["compound"]


@lru_cache(maxsize=1)
def german_lexicon() -> dict[str, float]:
    """SentiWS valences from gersent's package data, lowercased and scaled to VADER's range.

    Where two entries meet in lower case (a noun and a verb, or a word in both
    lists) the stronger weight is kept.
    """
    lexicon: dict[str, float] = {}
    for name in ("positive.json", "negative.json"):
        words = json.loads((resources.files("gersent") / "wordlists" / "de" / name).read_text())
        for word, weight in words.items():
            key, value = word.lower(), float(weight) * SENTIWS_SCALE
            if abs(value) > abs(lexicon.get(key, 0.0)):
                lexicon[key] = value
    return lexicon


@lru_cache(maxsize=MAX_CACHED_TEXTS)
def german(text: str) -> float:
    """The German score of ``text``, in [-1, 1] like VADER's compound.

    Args:
        text: The text to score.

    Returns:
        The sum of the SentiWS valences of its words (boosted after an
        intensifier, scaled by -0.74 per negation that reaches it, halved
        before the first "aber"/"jedoch" and 1.5 times after it, plus "!"
        emphasis), normalised as VADER does: ``x / sqrt(x * x + 15)``.
    """
    lowered = _GERMAN_FORMULAE.sub(" ", text.lower())
    parts = _CONTRAST.split(lowered, maxsplit=1)
    if len(parts) == 2:
        total = 0.5 * _valence(parts[0]) + 1.5 * _valence(parts[1])
    else:
        total = _valence(lowered)
    if total:
        total += math.copysign(min(lowered.count("!"), 4) * EXCLAMATION, total)
    return max(-1.0, min(1.0, total / math.sqrt(total * total + ALPHA)))


def _valence(text: str) -> float:
    """The summed valence of the words of ``text``, clause by clause."""
    return sum(_clause_valence(_WORDS.findall(clause)) for clause in _CLAUSES.split(text))


def _clause_valence(words: list[str]) -> float:
    """One clause's summed valence: intensifiers boost the next lexicon word, negations flip.

    A negation flips the lexicon words after it in its clause ("nicht zufrieden",
    "kein Problem"); "nicht", "nie" and "niemals" also those at most
    :data:`NEGATED_BEFORE` words before them ("gefällt mir nicht"), but not a
    clause's opening comment ("Leider funktioniert der Login nicht"). Two
    negations cancel, as in VADER.
    """
    lexicon, total, boost = german_lexicon(), 0.0, 0.0
    negations = [i for i in range(len(words)) if _negates(words, i)]
    backward = [i for i in negations if words[i] in BACKWARD_NEGATIONS]
    for j, word in enumerate(words):
        if word in INTENSIFIERS:
            boost = BOOST
        elif word in lexicon and j not in negations:
            value = lexicon[word] + math.copysign(boost, lexicon[word])
            flips = sum(1 for i in negations if i < j) + sum(
                1 for i in backward if j < i <= j + NEGATED_BEFORE
            )
            total += value * NEGATION_SCALAR**flips
            boost = 0.0
    return total


def _negates(words: Sequence[str], i: int) -> bool:
    """Whether ``words[i]`` is a negation ("nicht nur ... sondern auch" is none)."""
    word = words[i]
    if word == "nicht":
        return i + 1 == len(words) or words[i + 1] != "nur"
    return word in NEGATIONS or word.startswith("kein")


ANALYZERS: dict[str, Callable[[str], float]] = {"en": compound, "de": german}


def no_score_reason(language: str) -> str:
    """Why a text in ``language`` has no sentiment score."""
    if language == "und":  # triage_model.language.UNDETERMINED
        return "language undetermined (too short or unclear)"
    return f"no sentiment analyzer for {language!r}"


def scores(texts: Sequence[str], languages: Sequence[str]) -> tuple[np.ndarray, list[str | None]]:
    """Sentiment of each text by the analyzer of its language.

    Args:
        texts: Ticket texts.
        languages: ISO 639-1 code of each text (as :func:`triage_model.language.detect` gives).

    Returns:
        Scores in [-1, 1] (NaN where no analyzer covers the language) and, per
        text, None or the reason it has no score.
    """
    values = np.full(len(texts), np.nan)
    reasons: list[str | None] = []
    for row, (text, language) in enumerate(zip(texts, languages, strict=True)):
        score = ANALYZERS.get(language)
        if score is None:
            reasons.append(no_score_reason(language))
        else:
            values[row] = score(text[:MAX_CHARS])
            reasons.append(None)
    return values, reasons
