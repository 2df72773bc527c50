"""Faster char n-gram and word n-gram TF-IDF: what the fitted vectorizer's own transform gives.

The word path gives it bit for bit; the char path leaves each row's n-grams
unsorted, and its row norms differ from the library's in the last bits.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from triage_model import ngrams

pytestmark = pytest.mark.unit

CORPUS = [
    "I was charged TWICE for my subscription!!",
    "Rückerstattung für die doppelte Abbuchung, bitte.  Größe: XL",
    "server\tdown\n\nsince 3am; ticket #4411-A",
    "a b c aaaa aaaaaaa",
    "Café naïve résumé İstanbul ß",
    "",
    "   \n\t  ",
    "refund refund refund",
]
NEW_TEXTS = ["Never seen words: zyxwvut qqqq", "charged twice, bitte Rückerstattung", "", "x"]


def fitted(**options: Any) -> TfidfVectorizer:
    defaults: dict[str, Any] = {"analyzer": "char_wb", "ngram_range": (2, 5), "sublinear_tf": True}
    return TfidfVectorizer(**{**defaults, **options}).fit(CORPUS)


def same(left: Any, right: Any) -> bool:
    return left.shape == right.shape and left.dtype == right.dtype and (left != right).nnz == 0


def close(left: Any, right: Any) -> bool:
    """The same n-grams per row, values equal but for rounding a row norm summed in another order.

    Summing a row's n squares in any order moves the sum by at most about
    n - 1 roundings either way; the square root halves that.
    """
    if left.shape != right.shape or left.dtype != right.dtype:
        return False
    left, right = left.tocsr(copy=True), right.tocsr(copy=True)
    left.sort_indices()
    right.sort_indices()
    if not (
        np.array_equal(left.indptr, right.indptr) and np.array_equal(left.indices, right.indices)
    ):
        return False
    per_entry = np.repeat(np.diff(right.indptr), np.diff(right.indptr))
    bound = 2 * per_entry * np.finfo(right.dtype).eps * np.abs(right.data)
    return bool(np.all(np.abs(left.data - right.data) <= bound))


# Preprocessing and weighting settings both fast paths must honour.
SHARED_OPTIONS = [
    {},
    {"lowercase": False},
    {"strip_accents": "unicode"},
    {"norm": None},
    {"norm": "l1", "sublinear_tf": False},
    {"use_idf": False},
    {"binary": True},
    {"dtype": np.float32},
]
OPTIONS = [*SHARED_OPTIONS, {"ngram_range": (1, 3), "min_df": 2}, {"max_features": 40}]


@pytest.mark.parametrize("options", OPTIONS, ids=[str(o) or "defaults" for o in OPTIONS])
def test_equals_the_library_transform(options: dict[str, Any]) -> None:
    vectorizer = fitted(**options)
    assert ngrams.covers(vectorizer)
    for texts in (CORPUS, NEW_TEXTS, CORPUS[:1]):
        assert close(ngrams.transform(vectorizer, texts), vectorizer.transform(texts))


WORD_OPTIONS = [*SHARED_OPTIONS, {"ngram_range": (1, 1)}, {"min_df": 2}, {"max_features": 12}]


def fitted_words(**options: Any) -> TfidfVectorizer:
    defaults: dict[str, Any] = {"ngram_range": (1, 2), "sublinear_tf": True}
    return TfidfVectorizer(**{**defaults, **options}).fit([*CORPUS, " ".join(CORPUS)])


@pytest.mark.parametrize("options", WORD_OPTIONS, ids=[str(o) or "defaults" for o in WORD_OPTIONS])
def test_word_unigrams_and_bigrams_equal_the_library_transform(options: dict[str, Any]) -> None:
    vectorizer = fitted_words(**options)
    assert ngrams.covers(vectorizer)
    for texts in (CORPUS, NEW_TEXTS, CORPUS[:1], [NEW_TEXTS[-1]], [" ".join(CORPUS)]):
        assert same(ngrams.transform(vectorizer, texts), vectorizer.transform(texts)), texts


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from(list("abcAßÄé İ\t\n  .,!x_1\u00a0\x1c\u2003")), max_size=40
        ),
        min_size=1,
        max_size=6,
    )
)
def test_equals_the_library_on_any_text(texts: list[str]) -> None:
    assert close(ngrams.transform(VECTORIZER, texts), VECTORIZER.transform(texts))
    assert same(ngrams.transform(WORD_VECTORIZER, texts), WORD_VECTORIZER.transform(texts))


VECTORIZER = fitted()
WORD_VECTORIZER = TfidfVectorizer(ngram_range=(1, 2)).fit(
    ["ab bc", "bc ab ab", "Ä ßé ab", "xx abc ab bc"]
)


def test_a_full_cache_starts_again_and_stays_bounded() -> None:
    vectorizer = fitted()
    cache = ngrams.WordNgrams(vectorizer, max_words=5)
    cache.transform(["one two three"])
    assert set(cache.columns) == {"one", "two", "three"}
    for texts in (CORPUS, NEW_TEXTS, CORPUS):
        assert close(cache.transform(texts), vectorizer.transform(texts))
        # Never more than the limit, or than one batch's own words.
        assert len(cache.columns) <= max(5, len({w for t in texts for w in t.lower().split()}))
    cache.transform(["one two"])
    assert set(cache.columns) == {"one", "two"}


def test_a_full_word_token_cache_starts_again_and_stays_bounded() -> None:
    vectorizer = fitted_words()
    cache = ngrams.TokenNgrams(vectorizer, max_words=5)
    cache.transform(["one two,three", "four five"])
    assert set(cache.words) == {"one", "two,three", "four", "five"}
    cache.transform(["six seven"])  # 4 + 2 > 5: the cache starts again with this batch's words
    assert set(cache.words) == {"six", "seven"}
    for texts in (CORPUS, NEW_TEXTS, CORPUS):
        assert same(cache.transform(texts), vectorizer.transform(texts))
        # Never more than the limit, or than one batch's own words.
        assert len(cache.words) <= max(5, len({w for t in texts for w in t.lower().split()}))


def test_equals_the_library_on_the_realistic_sample(shared_sample: Any) -> None:
    texts = [
        f"{s} {b}"
        for s, b in zip(shared_sample["subject"].fillna(""), shared_sample["body"].fillna(""))
    ]
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2).fit(
        texts[:800]
    )
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2).fit(texts[:800])
    new = texts[800:1100]
    assert close(ngrams.transform(char, new), char.transform(new))
    assert same(ngrams.transform(words, new), words.transform(new))


def test_a_text_s_char_row_is_the_same_in_any_batch() -> None:
    # Its n-grams' order, and so its norm to the last bit, depend on the text alone:
    # a ticket scored alone or in any chunk gets the same features.
    vectorizer = fitted()
    alone = [ngrams.transform(vectorizer, [text]) for text in CORPUS]
    for batch in (CORPUS, CORPUS[::-1], NEW_TEXTS + CORPUS + CORPUS):
        together = ngrams.transform(vectorizer, batch)
        for row, text in enumerate(batch):
            if text in CORPUS:
                expected = alone[CORPUS.index(text)]
                assert np.array_equal(together[row].indices, expected.indices)
                assert np.array_equal(together[row].data, expected.data)


@pytest.mark.parametrize(
    ("vectorizer", "equal"), [(fitted(), close), (fitted_words(), same)], ids=["char_wb", "word"]
)
def test_threads_sharing_one_vectorizer_get_the_library_result(
    vectorizer: TfidfVectorizer, equal: Any
) -> None:
    batches = [[f"{text} extra{i} word{i % 3}" for text in CORPUS] for i in range(16)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda texts: ngrams.transform(vectorizer, texts), batches))
    assert all(
        equal(result, vectorizer.transform(texts)) for result, texts in zip(results, batches)
    )


@pytest.mark.parametrize(
    "vectorizer",
    [
        TfidfVectorizer(analyzer="word", ngram_range=(1, 3)).fit(CORPUS),
        TfidfVectorizer(analyzer="word", stop_words=["for", "my"]).fit(CORPUS),
        TfidfVectorizer(analyzer="word", token_pattern=r"\S+").fit(CORPUS),
        TfidfVectorizer(analyzer="word", tokenizer=str.split, token_pattern=None).fit(CORPUS),
        TfidfVectorizer(analyzer="char").fit(CORPUS),
        TfidfVectorizer(analyzer="char_wb", preprocessor=str.upper).fit(CORPUS),
    ],
    ids=[
        "word-trigrams",
        "stop-words",
        "own-token-pattern",
        "own-tokenizer",
        "char",
        "own-preprocessor",
    ],
)
def test_other_vectorizers_are_left_to_the_library(vectorizer: TfidfVectorizer) -> None:
    assert not ngrams.covers(vectorizer)
    assert same(ngrams.transform(vectorizer, NEW_TEXTS), vectorizer.transform(NEW_TEXTS))


@pytest.mark.parametrize("vectorizer", [fitted(), fitted_words()], ids=["char_wb", "word"])
def test_a_missing_text_fails_as_in_the_library(vectorizer: TfidfVectorizer) -> None:
    with pytest.raises(ValueError, match=r"np\.nan is an invalid document"):
        ngrams.transform(vectorizer, ["fine", np.nan])


def test_equals_the_library_on_the_masked_text_the_models_read() -> None:
    # The models vectorise text with personal data masked: placeholders in brackets.
    import pandas as pd

    from triage_model.features import model_text

    raw = [
        *CORPUS,
        "Refund to anna.k@example.org, card 4111 1111 1111 1111.\n\nBest regards,\nAnna Kowal",
        "Call +44 20 7946 0958 or (555) 123-4567; IBAN GB29 NWBK 6016 1331 9268 19",
        "[EMAIL] [PHONE] already masked? Thanks,\nBob",
    ]
    texts = model_text(pd.DataFrame({"body": raw}))
    assert any("[EMAIL]" in t for t in texts) and any("[NAME]" in t for t in texts)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True).fit(texts)
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(texts)
    new = model_text(pd.DataFrame({"body": [*NEW_TEXTS, *raw[-3:]]}))
    assert close(ngrams.transform(char, new), char.transform(new))
    assert same(ngrams.transform(words, new), words.transform(new))
