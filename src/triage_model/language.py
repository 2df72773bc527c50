"""The language of a ticket's text, by py3langid restricted to the configured candidates.

py3langid's bundled model is numpy arrays in an LZMA file, loaded with
``allow_pickle=False``: nothing is unpickled. Its cost grows with the text's
length, so a text is identified by its opening :data:`PREFIX_CHARS` characters
from its first letter, and again by its first :data:`LONGER_CHARS` where the
opening leaves the detector unsure (a greeting in one language before a body in
another). On the tickets sample that matched the whole text's accuracy at a
fifth of its cost (benchmarks/bench_language.py), and it keeps a German
signature at the end of an English ticket from deciding its language.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from py3langid.langid import MODEL_FILE, LanguageIdentifier

# Characters identified, from the text's first letter (benchmarks/bench_language.py), and
# how many where the opening's probability is below SURE.
PREFIX_CHARS = 100
LONGER_CHARS = 400
SURE = 0.95
# The code of a text with no letters, or too short to tell (ISO 639-2 "undetermined"): below
# MIN_CONFIDENCE, "hello?" or "Login fails" would be named Italian or Danish and sent to review.
UNDETERMINED = "und"
MIN_CONFIDENCE = 0.5
MAX_CACHED_TEXTS = 10_000
_FIRST_LETTER = re.compile(r"[^\W\d_]")


@lru_cache(maxsize=1)
def _full_model() -> LanguageIdentifier:
    """py3langid's bundled model with probabilities (reading it takes about half a second)."""
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=4)
def identifier(candidates: tuple[str, ...]) -> LanguageIdentifier:
    """py3langid's identifier restricted to ``candidates`` (one per tuple).

    A shallow copy of the one loaded model: ``set_languages`` rebinds the
    copy's class columns to new arrays and leaves the shared ones untouched.

    Raises:
        ValueError: A candidate is not a language the model knows.
    """
    model = copy.copy(_full_model())
    model.set_languages(list(candidates))
    return model


def detect(texts: Sequence[str], candidates: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Language code and confidence of each text, among ``candidates``.

    Args:
        texts: Ticket texts.
        candidates: ISO 639-1 codes the detector chooses among.

    Returns:
        The codes (:data:`UNDETERMINED` where a text has no letters or the
        detector is unsure) and the detector's probability of each (0.0 without letters).
    """
    key = tuple(sorted(set(candidates)))
    found = [identify(opening(text), key) for text in texts]
    return [code for code, _ in found], np.array([conf for _, conf in found], dtype=float)


def opening(text: str) -> str:
    """The first :data:`LONGER_CHARS` characters from the text's first letter ('' if none)."""
    letter = _FIRST_LETTER.search(text)
    return "" if letter is None else text[letter.start() : letter.start() + LONGER_CHARS]


@lru_cache(maxsize=MAX_CACHED_TEXTS)
def identify(start: str, candidates: tuple[str, ...]) -> tuple[str, float]:
    """Language and probability of a text's :func:`opening` (cached per opening and candidates).

    Its first :data:`PREFIX_CHARS` characters decide, unless the detector is less
    sure than :data:`SURE`: then all of ``start`` does. Below :data:`MIN_CONFIDENCE`
    the language is :data:`UNDETERMINED` (with the detector's confidence).
    """
    if not start:
        return UNDETERMINED, 0.0
    model = identifier(candidates)
    code, confidence = model.classify(start[:PREFIX_CHARS])
    if confidence < SURE and len(start) > PREFIX_CHARS:
        code, confidence = model.classify(start)
    if confidence < MIN_CONFIDENCE:
        return UNDETERMINED, float(confidence)
    return str(code), float(confidence)
