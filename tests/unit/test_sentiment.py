"""The faster VADER analyzer: always the library's own scores."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import NEGATE, SentimentIntensityAnalyzer, negated

from triage_ml import synth
from triage_model import features, sentiment
from triage_model.sentiment import Analyzer, negates

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


@pytest.fixture(scope="module")
def fast() -> Analyzer:
    return Analyzer()


texts = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=30).map(
    lambda pairs: "".join(word + sep for word, sep in pairs)
)


@settings(max_examples=400, deadline=None)
@given(text=texts | st.text(max_size=60))
def test_scores_equal_the_library_s_on_generated_texts(
    library: SentimentIntensityAnalyzer, fast: Analyzer, text: str
) -> None:
    expected = library.polarity_scores(text)
    assert fast.polarity_scores(text) == expected
    assert fast.compound(text) == expected["compound"]


@settings(max_examples=300, deadline=None)
@given(words=st.lists(st.sampled_from(WORDS), min_size=2, max_size=8), data=st.data())
def test_the_negation_check_equals_the_library_s(words: list[str], data: st.DataObject) -> None:
    # As the library calls it: word i has at least start_i + 1 words before it.
    i = data.draw(st.integers(1, len(words) - 1))
    start_i = data.draw(st.integers(0, min(2, i - 1)))
    for valence in (1.9, -0.7):
        assert Analyzer._negation_check(
            valence, words, start_i, i
        ) == SentimentIntensityAnalyzer._negation_check(valence, words, start_i, i)


@pytest.mark.parametrize(
    "words",
    [
        "without doubt good",
        "without any doubt good",
        "without doubt so good",
        "WITHOUT DOUBT good",
        "never so good",
        "never this good",
        "never this x good",
        "never x so good",
        "never x this good",
        "not x y good",
        "x don't y good",
        "isn't good",
    ],
)
def test_the_negation_check_equals_the_library_s_on_its_rules(words: str) -> None:
    split = words.split()
    i = len(split) - 1
    for start_i in range(min(3, i)):
        ours = Analyzer._negation_check(2.0, split, start_i, i)
        assert ours == SentimentIntensityAnalyzer._negation_check(2.0, split, start_i, i), (
            words,
            start_i,
        )


@pytest.mark.parametrize(
    "word", [*NEGATE, "wouldn't", "nt", "shan't", "not", "no", "good", "", "n't"]
)
def test_one_word_negates_as_the_library_says(word: str) -> None:
    assert negates(word) == negated([word])


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
    library: SentimentIntensityAnalyzer, fast: Analyzer, text: str
) -> None:
    expected = library.polarity_scores(text)
    assert fast.polarity_scores(text) == expected
    assert fast.compound(text) == expected["compound"]


def assert_scores_equal(
    library: SentimentIntensityAnalyzer, fast: Analyzer, texts: list[str]
) -> None:
    expected = [library.polarity_scores(t) for t in texts]
    assert [fast.polarity_scores(t) for t in texts] == expected
    assert [fast.compound(t) for t in texts] == [e["compound"] for e in expected]


def test_scores_equal_the_library_s_on_synthetic_tickets(
    library: SentimentIntensityAnalyzer, fast: Analyzer
) -> None:
    assert_scores_equal(library, fast, features.ticket_text(synth.generate_unlabeled(300, seed=3)))


def test_scores_equal_the_library_s_on_the_realistic_sample(
    library: SentimentIntensityAnalyzer, fast: Analyzer, shared_sample: pd.DataFrame
) -> None:
    assert_scores_equal(library, fast, features.ticket_text(shared_sample.head(600)))


def test_the_token_cache_stays_bounded_and_the_scores_right(
    library: SentimentIntensityAnalyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sentiment, "MAX_CACHED_TOKENS", 5)
    fast = Analyzer()
    texts = [
        "Good, GREAT!",
        "the app is not good...",
        "good, but (bad)",
        "Good, GREAT!",
        ":) :( ok!!",
        "bad bad bad.",
    ]
    for text in texts * 2:
        assert fast.compound(text) == library.polarity_scores(text)["compound"]
        assert len(fast._stripped) <= 5


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
