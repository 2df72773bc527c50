"""Known duplicates: a customer re-sends one of their open tickets a few days later.

About ``DUPLICATE_SHARE`` of the tickets are re-sends. A re-send copies an
earlier ticket created between ``RESEND_WINDOW`` and ``MIN_DELAY`` before it:
its customer, its hidden state (topic, mood, cues, priority) and its text,
lightly reworded: a follow-up line first, a subject prefix, a few words
swapped. Its ``duplicate_of`` is the original's ticket id, the ground truth
duplicate suggestions are measured against. Originals are never re-sends
themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from triage_ml.synth.templates import Duplicates
from triage_ml.synth.text import Stream

DUPLICATE_SHARE = 0.02
RESEND_WINDOW_S = 3 * 86_400
MIN_DELAY_S = 3_600
_NS_PER_SECOND = 1_000_000_000
_WORD = re.compile(r"[\w']+")


def pick_originals(rng: np.random.Generator, created_ns: np.ndarray) -> np.ndarray:
    """The row each re-send copies, ``-1`` for a ticket that is no re-send.

    Args:
        rng: the duplicates' generator; its state advances.
        created_ns: creation times in nanoseconds, sorted.

    Returns:
        One row index per ticket: an earlier ticket's (created at least ``MIN_DELAY_S``
        and at most ``RESEND_WINDOW_S`` before), or -1.
    """
    n = len(created_ns)
    resend = rng.random(n) < DUPLICATE_SHARE
    u = rng.random(n)
    lo = np.searchsorted(created_ns, created_ns - RESEND_WINDOW_S * _NS_PER_SECOND, "left")
    hi = np.searchsorted(created_ns, created_ns - MIN_DELAY_S * _NS_PER_SECOND, "right")
    original = lo + (u * np.maximum(hi - lo, 0)).astype(np.int64)
    found = resend & (hi > lo)
    # An original that is itself drawn as a re-send stays an original: no chains.
    found &= ~resend[np.where(found, original, 0)]
    return np.where(found, original, -1)


def copy_rows(values: np.ndarray, originals: np.ndarray) -> np.ndarray:
    """``values`` with each re-send's row replaced by its original's."""
    rows = np.flatnonzero(originals >= 0)
    out = values.copy()
    out[rows] = values[originals[rows]]
    return out


def _reword(s: Stream, text: str, rewordings: Mapping[str, str]) -> str:
    """``text`` with one to three of its swappable words replaced, or one word dropped."""
    words = list(_WORD.finditer(text))
    swappable = [m for m in words if m.group() in rewordings]
    if not swappable:
        # Only a word followed by a space is dropped, so no sentence loses its end.
        inner = [m for m in words if text[m.end() : m.end() + 1] == " "]
        if len(inner) < 4:
            return text
        dropped = inner[int(s.u() * len(inner))]
        return text[: dropped.start()] + text[dropped.end() + 1 :]
    chosen = {swappable[int(s.u() * len(swappable))].start() for _ in range(s.randint(1, 3))}
    for match in sorted((m for m in swappable if m.start() in chosen), key=lambda m: -m.start()):
        text = text[: match.start()] + rewordings[match.group()] + text[match.end() :]
    return text


def resend(s: Stream, tpl: Duplicates, subject: str, body: str, language: str) -> tuple[str, str]:
    """The subject and body of a re-send of a ticket written in ``language``.

    Args:
        s: the duplicates' text stream; its state advances.
        tpl: follow-up lines per language ("en", "de"), subject prefixes, word swaps.
        subject: the original's subject.
        body: the original's body.
        language: the language the original is written in.

    Returns:
        The reworded subject (a prefix added, sometimes) and body (a follow-up line first).
    """
    follow_up = s.pick(tpl.follow_ups.get(language, tpl.follow_ups["en"]))
    prefix = s.pick(tpl.subject_prefixes) if subject else ""
    return prefix + subject, follow_up + "\n\n" + _reword(s, body, tpl.rewordings)


def resend_texts(
    s: Stream,
    tpl: Duplicates,
    texts: tuple[list[str], list[str]],
    originals: np.ndarray,
    languages: Sequence[str],
) -> tuple[list[str], list[str]]:
    """Subjects and bodies with every re-send's replaced by its original's, reworded.

    Args:
        s: the duplicates' text stream; its state advances.
        tpl: the re-send material.
        texts: the subjects and bodies of every ticket (not changed).
        originals: :func:`pick_originals`'s rows.
        languages: the language each ticket's text is written in.

    Returns:
        New lists of subjects and bodies.
    """
    subjects, bodies = list(texts[0]), list(texts[1])
    for row in np.flatnonzero(originals >= 0).tolist():
        source = int(originals[row])
        subjects[row], bodies[row] = resend(
            s, tpl, texts[0][source], texts[1][source], languages[source]
        )
    return subjects, bodies
