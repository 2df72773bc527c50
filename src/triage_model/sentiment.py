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
function, which cannot be swapped for this analyzer alone. The rules of a
sentiment word's valence (``sentiment_valence``: "no", capitals, boosters,
negation, "least") are restated too, reading each neighbouring word's
lowercase form once instead of about ten times through a call per rule:
61.9 → 54.3 µs per synthetic ticket, 177 → 136 µs per realistic one
(medians of seven alternating rounds, 2026-11-23).
The model reads only the compound score: :meth:`Analyzer.compound` skips
the three others, and splits each distinct token off its punctuation once
(a bounded cache), as the library's ``SentiText`` does every time.
``tests/unit/test_sentiment.py`` checks that its scores equal the library's
on generated and realistic texts. The library has no batch or faster mode
to use instead.
"""

from __future__ import annotations

from typing import Any

from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    C_INCR,
    N_SCALAR,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
    SentiText,
    normalize,
)

NEGATIONS = frozenset(NEGATE)
# Every word of a multi-word idiom or booster: the only words the idiom check can match.
IDIOM_WORDS = frozenset(
    word for key in (*SPECIAL_CASES, *BOOSTER_DICT) if " " in key for word in key.split()
)
# Distinct tokens whose punctuation-stripped form is kept; past it the cache starts again.
MAX_CACHED_TOKENS = 100_000


def negates(lower: str) -> bool:
    """``vaderSentiment.negated([lower])`` for one lowercased word."""
    return lower in NEGATIONS or "n't" in lower


class Analyzer(SentimentIntensityAnalyzer):
    """``SentimentIntensityAnalyzer`` whose ``polarity_scores`` return the same values, faster."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The library replaces emojis one character at a time: only one-character keys can match.
        self._emoji_chars = frozenset(key for key in self.emojis if len(key) == 1)
        self._stripped: dict[str, str] = {}

    def polarity_scores(self, text: str) -> dict[str, float]:
        if not self._without_emoji(text):
            return super().polarity_scores(text)
        # The library's method from here on, for a text its emoji step leaves as it is (stripped).
        text = text.strip()
        return self.score_valence(self._valences(text), text)

    def compound(self, text: str) -> float:
        """``polarity_scores(text)["compound"]``, without computing the other three scores."""
        if not self._without_emoji(text):
            return super().polarity_scores(text)["compound"]
        text = text.strip()
        sentiments = self._valences(text)
        if not sentiments:
            return 0.0
        # score_valence's compound: the sum, pushed away from 0 by the punctuation emphasis, normalized.
        total = float(sum(sentiments))
        if total:
            emphasis = self._punctuation_emphasis(text)
            total = total + emphasis if total > 0 else total - emphasis
        return round(normalize(total), 4)

    def _without_emoji(self, text: Any) -> bool:
        return isinstance(text, str) and self._emoji_chars.isdisjoint(text)

    def _valences(self, text: str) -> list[float]:
        """The library's word valences of a stripped text without emojis, after its "but" rule."""
        sentitext = self._sentitext(text)
        words = sentitext.words_and_emoticons
        lowers = [word.lower() for word in words]
        last = len(words) - 1
        sentiments: list[float] = []
        for i, lower in enumerate(lowers):
            # Boosters and "kind of" score 0 there; so does a word outside the lexicon, in sentiment_valence.
            if (
                lower in BOOSTER_DICT
                or lower not in self.lexicon
                or (lower == "kind" and i < last and lowers[i + 1] == "of")
            ):
                sentiments.append(0)
                continue
            sentiments.append(self._valence(words, lowers, i, sentitext.is_cap_diff))
        # The library's "but" rule changes nothing unless some word is "but".
        return self._but_check(words, sentiments) if "but" in lowers else sentiments

    def _valence(self, words: list[str], lowers: list[str], i: int, is_cap_diff: bool) -> float:
        """The library's ``sentiment_valence`` of lexicon word ``i``, its rules restated on the lowercased words.

        The library lowercases a neighbouring word again each time a rule
        reads it (about ten times per sentiment word, with a call per rule);
        here every rule reads ``lowers``, in the library's order.
        """
        lexicon, item, lower = self.lexicon, words[i], lowers[i]
        valence = lexicon[lower]
        if lower == "no" and i != len(words) - 1 and lowers[i + 1] in lexicon:
            valence = 0.0
        if (
            (i > 0 and lowers[i - 1] == "no")
            or (i > 1 and lowers[i - 2] == "no")
            or (i > 2 and lowers[i - 3] == "no" and lowers[i - 1] in ("or", "nor"))
        ):
            valence = lexicon[lower] * N_SCALAR
        if item.isupper() and is_cap_diff:
            valence = valence + C_INCR if valence > 0 else valence - C_INCR
        for start_i in range(min(i, 3)):
            before = lowers[i - (start_i + 1)]
            if before in lexicon:
                continue
            valence += (
                _booster(words[i - (start_i + 1)], before, valence, is_cap_diff)
                * (1.0, 0.95, 0.9)[start_i]
            )
            valence = _negated(valence, lowers[max(i - 3, 0) : i], start_i)
            if start_i == 2:
                valence = self._special_idioms_check(valence, words, i)
        if i > 0 and lowers[i - 1] == "least" and "least" not in lexicon:
            if i == 1 or lowers[i - 2] not in ("at", "very"):
                valence = valence * N_SCALAR
        return valence

    def _sentitext(self, text: str) -> SentiText:
        """``SentiText(text)``, each distinct token's stripped form taken from the cache."""
        stripped = self._stripped
        words = []
        for token in text.split():
            word = stripped.get(token)
            if word is None:
                if len(stripped) >= MAX_CACHED_TOKENS:
                    stripped.clear()
                word = stripped[token] = SentiText._strip_punc_if_word(token)
            words.append(word)
        sentitext = SentiText.__new__(SentiText)
        sentitext.text, sentitext.words_and_emoticons = text, words
        # allcap_differential: some words, but not all, are in capitals.
        sentitext.is_cap_diff = 0 < len(words) - sum(map(str.isupper, words)) < len(words)
        return sentitext

    @staticmethod
    def _negation_check(
        valence: float, words_and_emoticons: list[str], start_i: int, i: int
    ) -> float:
        # The library's rules; it is only called with i > start_i, so no index wraps.
        return _negated(
            valence, [word.lower() for word in words_and_emoticons[max(i - 3, 0) : i]], start_i
        )

    @staticmethod
    def _special_idioms_check(valence: float, words_and_emoticons: list[str], i: int) -> float:
        # It also asks whether words i+1 and i+2 exist: the window keeps them when they do.
        window, j = _around(words_and_emoticons, i, before=3, after=2)
        # Every sequence it looks up has two or three words: with fewer than two idiom words nothing can match.
        if (
            window is not words_and_emoticons
            and sum(word.lower() in IDIOM_WORDS for word in window) < 2
        ):
            return valence
        return SentimentIntensityAnalyzer._special_idioms_check(valence, window, j)


def _booster(word: str, lower: str, valence: float, is_cap_diff: bool) -> float:
    """``vaderSentiment.scalar_inc_dec(word, valence, is_cap_diff)``, given ``word.lower()``."""
    scalar = BOOSTER_DICT.get(lower)
    if scalar is None:
        return 0.0
    if valence < 0:
        scalar *= -1
    if word.isupper() and is_cap_diff:
        scalar = scalar + C_INCR if valence > 0 else scalar - C_INCR
    return scalar


def _negated(valence: float, before: list[str], start_i: int) -> float:
    """The library's ``_negation_check`` rules, reading the (up to three) lowercased words before the word.

    ``before[-k]`` is the word ``k`` places before it; the library reads
    ``start_i + 1`` of them.
    """
    if start_i == 0:
        return valence * N_SCALAR if negates(before[-1]) else valence
    if start_i == 1:
        if before[-2] == "never" and before[-1] in ("so", "this"):
            return valence * 1.25
        if before[-2] == "without" and before[-1] == "doubt":
            return valence
        return valence * N_SCALAR if negates(before[-2]) else valence
    if start_i == 2:
        if (before[-3] == "never" and before[-2] in ("so", "this")) or before[-1] in ("so", "this"):
            return valence * 1.25
        if before[-3] == "without" and "doubt" in (before[-2], before[-1]):
            return valence
        return valence * N_SCALAR if negates(before[-3]) else valence
    return valence


def _around(words: list[str], i: int, before: int, after: int) -> tuple[list[str], int]:
    """``words[i - before : i + after + 1]`` and the index of word ``i`` in it.

    The whole list while ``i < before``: the library's negative indices would
    then wrap around to the end of the list, and must see the same words.
    """
    if i < before:
        return words, i
    return words[i - before : i + after + 1], before
