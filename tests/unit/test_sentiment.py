"""The model's VADER sentiment: always the library's own compound score, through its public API."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from triage_ml import synth
from triage_model import features, sentiment

pytestmark = pytest.mark.unit

# Words that reach every rule: lexicon words (in capitals too), boosters and
# dampeners, negations, "no", "least", "but", "kind of", idioms and their
# parts, emoticons, punctuation emphasis and emojis.
WORDS = [
    "good",
    "GOOD",
    "bad",
    "BAD",
    "terrible",
    "great",
    "love",
    "hate",
    "angry",
    "happy",
    "refund",
    "server",
    "very",
    "VERY",
    "extremely",
    "slightly",
    "sort",
    "of",
    "kind",
    "kinda",
    "not",
    "isn't",
    "never",
    "no",
    "nor",
    "or",
    "least",
    "at",
    "without",
    "doubt",
    "so",
    "this",
    "but",
    "BUT",
    "the",
    "shit",
    "bomb",
    "cut",
    "me",
    "some",
    "slack",
    "yeah",
    "right",
    "kiss",
    "death",
    "die",
    "for",
    "beating",
    "heart",
    "bus",
    "stop",
    "ass",
    "badass",
    "just",
    "enough",
    "don't",
    "aint",
    "NEVER",
    "Without",
    ":)",
    ":(",
    ":-D",
    "!!",
    "?",
    "??",
    "!!!!",
    "...",
    "😀",
    "😡",
    "👍",
    "ok!",
    "(good)",
    "",
]
SEPARATORS = [" ", "  ", "\n", "\t", ", ", ". ", "! "]


@pytest.fixture(scope="module")
def library() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


texts = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=30).map(
    lambda pairs: "".join(word + sep for word, sep in pairs)
)


@settings(max_examples=400, deadline=None)
@given(text=texts | st.text(max_size=60))
def test_scores_equal_the_library_s_on_generated_texts(
    library: SentimentIntensityAnalyzer, text: str
) -> None:
    expected = library.polarity_scores(text)
    assert sentiment.compound(text) == expected["compound"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "good",
        "not good",
        "no good",
        "not very good at all",
        "the food is kind of good",
        "at least it works",
        "least good",
        "least good at",
        "the very least good",
        "VERY good, ok",
        "never so very good",
        "It was good but the refund was TERRIBLE!!!",
        "never so good",
        "without doubt great",
        "cut me some slack",
        "yeah right",
        "I love it 😀 but 😡",
        "GREAT service, bad app :(",
        "no problem",
        "no, nor bad or good",
        "and then it was a kiss of death",
        "and the pizza is to die for",
        "it was the bomb",
        "a real bad ass",
    ],
)
def test_scores_equal_the_library_s_on_the_rules_edge_cases(
    library: SentimentIntensityAnalyzer, text: str
) -> None:
    expected = library.polarity_scores(text)
    assert sentiment.compound(text) == expected["compound"]


def assert_scores_equal(library: SentimentIntensityAnalyzer, texts: list[str]) -> None:
    expected = [library.polarity_scores(t) for t in texts]
    assert [sentiment.compound(t) for t in texts] == [e["compound"] for e in expected]


def test_scores_equal_the_library_s_on_synthetic_tickets(
    library: SentimentIntensityAnalyzer,
) -> None:
    assert_scores_equal(library, features.ticket_text(synth.generate_unlabeled(300, seed=3)))


def test_scores_equal_the_library_s_on_the_realistic_sample(
    library: SentimentIntensityAnalyzer, shared_sample: pd.DataFrame
) -> None:
    assert_scores_equal(library, features.ticket_text(shared_sample.head(600)))


def test_the_text_cache_stays_bounded_and_the_scores_right(
    library: SentimentIntensityAnalyzer,
) -> None:
    assert sentiment.compound.cache_info().maxsize == sentiment.MAX_CACHED_TEXTS
    texts = ["Good, GREAT!", "the app is not good...", "good, but (bad)", ":) :( ok!!"]
    for text in texts * 2:
        assert sentiment.compound(text) == library.polarity_scores(text)["compound"]
    assert sentiment.compound.cache_info().currsize <= sentiment.MAX_CACHED_TEXTS


def test_the_model_s_sentiment_is_the_library_s_compound(
    library: SentimentIntensityAnalyzer,
) -> None:
    texts = [
        "I am very angry, the server is down!!",
        "Thanks, great support :)",
        "x" * 2500 + " bad",
    ]
    expected = [library.polarity_scores(t[:2000])["compound"] for t in texts]
    assert features.sentiment_scores(texts).tolist() == expected
