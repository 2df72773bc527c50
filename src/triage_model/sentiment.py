"""VADER's compound sentiment of a text, through vaderSentiment's public API only.

The model reads one figure per ticket: ``polarity_scores(text)["compound"]``
of the library's ``SentimentIntensityAnalyzer``. The library has no batch or
faster mode, so each new text costs one call; the same text scored again
(retraining prepares the validation tickets and then predicts them, the gate
scores the test set with two models) is a lookup in a bounded cache.
"""

from __future__ import annotations

from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

# Texts whose compound score is kept (features cut texts at 2,000 characters,
# so the cache stays within a few tens of megabytes); the least recent go first.
MAX_CACHED_TEXTS = 10_000


@lru_cache(maxsize=1)
def analyzer() -> SentimentIntensityAnalyzer:
    """The one analyzer of this process (building it reads the lexicon files)."""
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
