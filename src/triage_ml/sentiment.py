"""VADER sentiment, with the same scores at a lower cost per ticket.

vaderSentiment 3.3.2 spends most of a ticket's time on work that does not
change its result:
- it rebuilds the text character by character to replace emojis, even when
  there are none;
- for every sentiment word, its negation and idiom checks lowercase the
  whole ticket's word list again (up to four times per word), though they
  read at most three words before the word and two after it;
- every word outside its lexicon goes through a method call that scores it 0;
- its negation test of one word copies its 60-word negation list and scans
  it, up to three times per sentiment word;
- its idiom check formats seven word sequences per sentiment word, though
  only words of its few multi-word idioms and boosters can match.

:class:`Analyzer` keeps the library's lexicon and every rule. It skips the
character loop when the text holds no emoji, hands the idiom check only the
words it reads (and skips it when fewer than two of them belong to an
idiom), scores words outside the lexicon 0 directly, and tests a word for
negation with one set lookup. The negation check is the library's rules,
restated here around that lookup: the library's reads its ``negated``
function, which cannot be swapped for this analyzer alone.
``tests/unit/test_sentiment.py`` checks that its scores equal the library's
on generated and realistic texts. The library has no batch or faster mode
to use instead.
"""

from __future__ import annotations

from typing import Any

from vaderSentiment.vaderSentiment import BOOSTER_DICT, N_SCALAR, NEGATE, SPECIAL_CASES, SentimentIntensityAnalyzer, SentiText

NEGATIONS = frozenset(NEGATE)
# Every word of a multi-word idiom or booster: the only words the idiom check can match.
IDIOM_WORDS = frozenset(word for key in (*SPECIAL_CASES, *BOOSTER_DICT) if " " in key for word in key.split())


def negates(lower: str) -> bool:
    """``vaderSentiment.negated([lower])`` for one lowercased word."""
    return lower in NEGATIONS or "n't" in lower


class Analyzer(SentimentIntensityAnalyzer):
    """``SentimentIntensityAnalyzer`` whose ``polarity_scores`` return the same values, faster."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The library replaces emojis one character at a time: only one-character keys can match.
        self._emoji_chars = frozenset(key for key in self.emojis if len(key) == 1)

    def polarity_scores(self, text: str) -> dict[str, float]:
        if not isinstance(text, str) or not self._emoji_chars.isdisjoint(text):
            return super().polarity_scores(text)
        # The library's method from here on, for a text its emoji step leaves as it is (stripped).
        text = text.strip()
        sentitext = SentiText(text)
        words = sentitext.words_and_emoticons
        sentiments: list[float] = []
        for i, item in enumerate(words):
            lower = item.lower()
            # Boosters and "kind of" score 0 there; so does a word outside the lexicon, in sentiment_valence.
            if lower in BOOSTER_DICT or lower not in self.lexicon or (lower == "kind" and i < len(words) - 1
                                                                      and words[i + 1].lower() == "of"):
                sentiments.append(0)
                continue
            sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
        sentiments = self._but_check(words, sentiments)
        return self.score_valence(sentiments, text)

    @staticmethod
    def _negation_check(valence: float, words_and_emoticons: list[str], start_i: int, i: int) -> float:
        # The library's rules word for word; it is only called with i > start_i, so no index wraps.
        def before(k: int) -> str:
            return words_and_emoticons[i - k].lower()

        if start_i == 0:
            return valence * N_SCALAR if negates(before(1)) else valence
        if start_i == 1:
            if before(2) == "never" and before(1) in ("so", "this"):
                return valence * 1.25
            if before(2) == "without" and before(1) == "doubt":
                return valence
            return valence * N_SCALAR if negates(before(2)) else valence
        if start_i == 2:
            if before(3) == "never" and before(2) in ("so", "this") or before(1) in ("so", "this"):
                return valence * 1.25
            if before(3) == "without" and "doubt" in (before(2), before(1)):
                return valence
            return valence * N_SCALAR if negates(before(3)) else valence
        return valence

    @staticmethod
    def _special_idioms_check(valence: float, words_and_emoticons: list[str], i: int) -> float:
        # It also asks whether words i+1 and i+2 exist: the window keeps them when they do.
        window, j = _around(words_and_emoticons, i, before=3, after=2)
        # Every sequence it looks up has two or three words: with fewer than two idiom words nothing can match.
        if window is not words_and_emoticons and sum(word.lower() in IDIOM_WORDS for word in window) < 2:
            return valence
        return SentimentIntensityAnalyzer._special_idioms_check(valence, window, j)


def _around(words: list[str], i: int, before: int, after: int) -> tuple[list[str], int]:
    """``words[i - before : i + after + 1]`` and the index of word ``i`` in it.

    The whole list while ``i < before``: the library's negative indices would
    then wrap around to the end of the list, and must see the same words.
    """
    if i < before:
        return words, i
    return words[i - before:i + after + 1], before
