"""Word-by-word char n-gram TF-IDF: always what the fitted vectorizer's own transform gives."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from triage_ml import ngrams

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


OPTIONS = [
    {},
    {"lowercase": False},
    {"strip_accents": "unicode"},
    {"norm": None},
    {"norm": "l1", "sublinear_tf": False},
    {"use_idf": False},
    {"binary": True},
    {"dtype": np.float32},
    {"ngram_range": (1, 3), "min_df": 2},
    {"max_features": 40},
]


@pytest.mark.parametrize("options", OPTIONS, ids=[str(o) or "defaults" for o in OPTIONS])
def test_equals_the_library_transform(options: dict[str, Any]) -> None:
    vectorizer = fitted(**options)
    assert ngrams.covers(vectorizer)
    for texts in (CORPUS, NEW_TEXTS, CORPUS[:1]):
        assert same(ngrams.transform(vectorizer, texts), vectorizer.transform(texts))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("abcAßÄé İ\t\n  .,!x")), max_size=40), min_size=1, max_size=6))
def test_equals_the_library_on_any_text(texts: list[str]) -> None:
    vectorizer = VECTORIZER
    assert same(ngrams.transform(vectorizer, texts), vectorizer.transform(texts))


VECTORIZER = fitted()


def test_a_full_cache_starts_again_and_stays_bounded() -> None:
    vectorizer = fitted()
    cache = ngrams.WordNgrams(vectorizer, max_words=5)
    cache.transform(["one two three"])
    assert set(cache.columns) == {"one", "two", "three"}
    for texts in (CORPUS, NEW_TEXTS, CORPUS):
        assert same(cache.transform(texts), vectorizer.transform(texts))
        # Never more than the limit, or than one batch's own words.
        assert len(cache.columns) <= max(5, len({w for t in texts for w in t.lower().split()}))
    cache.transform(["one two"])
    assert set(cache.columns) == {"one", "two"}


def test_threads_sharing_one_vectorizer_get_the_library_result() -> None:
    vectorizer = fitted()
    batches = [[f"{text} extra{i} word{i % 3}" for text in CORPUS] for i in range(16)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda texts: ngrams.transform(vectorizer, texts), batches))
    assert all(same(result, vectorizer.transform(texts)) for result, texts in zip(results, batches))


@pytest.mark.parametrize("vectorizer", [
    TfidfVectorizer(analyzer="word").fit(CORPUS),
    TfidfVectorizer(analyzer="char").fit(CORPUS),
    TfidfVectorizer(analyzer="char_wb", preprocessor=str.upper).fit(CORPUS),
], ids=["word", "char", "own-preprocessor"])
def test_other_vectorizers_are_left_to_the_library(vectorizer: TfidfVectorizer) -> None:
    assert not ngrams.covers(vectorizer)
    assert same(ngrams.transform(vectorizer, NEW_TEXTS), vectorizer.transform(NEW_TEXTS))


def test_a_missing_text_fails_as_in_the_library() -> None:
    with pytest.raises(ValueError, match="np.nan is an invalid document"):
        ngrams.transform(fitted(), ["fine", np.nan])
