"""VADER sentiment, with the same scores at a lower cost per ticket.

vaderSentiment 3.3.2 spends most of a ticket's time on work that does not
change its result:
- it rebuilds the text character by character to replace emojis, even when
  there are none;
- for every sentiment word, its negation and idiom checks lowercase the
  whole ticket's word list again (up to four times per word), though they
  read at most three words before the word and two after it;
- every word outside its lexicon goes through a method call that scores it 0.

:class:`Analyzer` keeps the library's lexicon and every rule. It skips the
character loop when the text holds no emoji, hands the two checks only the
words they read, and scores words outside the lexicon 0 directly.
``tests/unit/test_sentiment.py`` checks that its scores equal the library's
on generated and realistic texts. The library has no batch or faster mode
to use instead.
"""

from __future__ import annotations

from typing import Any

from vaderSentiment.vaderSentiment import BOOSTER_DICT, SentimentIntensityAnalyzer, SentiText


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
        window, j = _around(words_and_emoticons, i, before=3, after=0)
        return SentimentIntensityAnalyzer._negation_check(valence, window, start_i, j)

    @staticmethod
    def _special_idioms_check(valence: float, words_and_emoticons: list[str], i: int) -> float:
        # It also asks whether words i+1 and i+2 exist: the window keeps them when they do.
        window, j = _around(words_and_emoticons, i, before=3, after=2)
        return SentimentIntensityAnalyzer._special_idioms_check(valence, window, j)


def _around(words: list[str], i: int, before: int, after: int) -> tuple[list[str], int]:
    """``words[i - before : i + after + 1]`` and the index of word ``i`` in it.

    The whole list while ``i < before``: the library's negative indices would
    then wrap around to the end of the list, and must see the same words.
    """
    if i < before:
        return words, i
    return words[i - before:i + after + 1], before
