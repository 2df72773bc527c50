"""Character n-gram TF-IDF of a batch of texts, assembled word by word.

scikit-learn's ``char_wb`` analyzer cuts every n-gram of every word of every
text in Python: it was over half of batch prediction time. Its n-grams never
cross a word boundary (each word is padded with spaces and cut on its own),
so a text's n-gram counts are the sum of its words' counts. Here each
distinct word is cut once, by the fitted vectorizer's own analyzer, its
columns are kept in a bounded cache, and a batch's counts are one sparse
product (texts x words) @ (words x n-grams). The fitted vectorizer's own
TF-IDF weighting then applies. scikit-learn has no such path, hence this
module; the result equals ``vectorizer.transform`` (tested), and any
vectorizer this does not cover goes to the library.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer

# Distinct words whose columns are kept per vectorizer (about 200 bytes
# each); past it the cache starts again, so memory stays bounded.
MAX_CACHED_WORDS = 100_000


class WordNgrams:
    """A fitted ``char_wb`` vectorizer's columns per word, and its weighting, cached."""

    def __init__(self, vectorizer: TfidfVectorizer, max_words: int = MAX_CACHED_WORDS) -> None:
        self.vectorizer = vectorizer
        self.max_words = max_words
        self.preprocess = vectorizer.build_preprocessor()
        self.analyze = vectorizer.build_analyzer()
        self.weighting = _weighting(vectorizer)
        self.columns: dict[str, np.ndarray] = {}
        self.lock = threading.Lock()

    def transform(self, texts: Sequence[str]) -> Any:
        """``vectorizer.transform(texts)``."""
        counts = self.counts(texts)
        if self.vectorizer.binary:
            counts.data.fill(1)
        return self.weighting.transform(counts, copy=False)

    def counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """The n-gram count matrix of ``texts`` (texts x vocabulary)."""
        words: dict[str, int] = {}
        tokens: list[int] = []
        indptr = [0]
        for text in texts:
            tokens.extend(words.setdefault(word, len(words)) for word in self.preprocess(text).split())
            indptr.append(len(tokens))
        dtype = self.vectorizer.dtype
        per_text = sparse.csr_matrix((np.ones(len(tokens), dtype=dtype), np.asarray(tokens, dtype=np.int64), indptr),
                                     shape=(len(texts), len(words)))
        counts = (per_text @ self.word_matrix(list(words))).tocsr()
        counts.sum_duplicates()
        counts.sort_indices()
        return counts

    def word_matrix(self, words: list[str]) -> sparse.csr_matrix:
        """One row per word: how often each vocabulary n-gram occurs in it."""
        with self.lock:
            if len(self.columns) + len(words) > self.max_words:
                self.columns.clear()
            rows = [self.columns.get(word) for word in words]
            for i, row in enumerate(rows):
                if row is None:
                    rows[i] = self.columns[words[i]] = self.word_columns(words[i])
        lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
        indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int32)
        matrix = sparse.csr_matrix((np.ones(len(indices), dtype=self.vectorizer.dtype), indices,
                                    np.concatenate([[0], np.cumsum(lengths)])),
                                   shape=(len(words), len(self.vectorizer.vocabulary_)))
        matrix.sum_duplicates()
        return matrix

    def word_columns(self, word: str) -> np.ndarray:
        """Vocabulary columns of one word's n-grams, repeated as often as they occur."""
        vocabulary = self.vectorizer.vocabulary_
        return np.array([vocabulary[g] for g in self.analyze(word) if g in vocabulary], dtype=np.int32)


def _weighting(vectorizer: TfidfVectorizer) -> TfidfTransformer:
    """A transformer that weights counts as ``vectorizer`` does, with its fitted idf."""
    weighting = TfidfTransformer(norm=vectorizer.norm, use_idf=vectorizer.use_idf, smooth_idf=vectorizer.smooth_idf,
                                 sublinear_tf=vectorizer.sublinear_tf)
    if vectorizer.use_idf:
        weighting.idf_ = vectorizer.idf_
    else:
        weighting.n_features_in_ = len(vectorizer.vocabulary_)  # marks it fitted: without idf there is nothing to fit
    return weighting


def covers(vectorizer: Any) -> bool:
    """Whether :class:`WordNgrams` reproduces this fitted vectorizer's ``transform``."""
    # A preprocessor of one's own might not give the same words when applied
    # to a word again, as the analyzer does here; the built-in one does.
    return (type(vectorizer) is TfidfVectorizer and vectorizer.analyzer == "char_wb" and vectorizer.input == "content"
            and vectorizer.preprocessor is None and isinstance(getattr(vectorizer, "vocabulary_", None), dict))


_CACHES: weakref.WeakKeyDictionary[Any, WordNgrams] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def transform(vectorizer: Any, texts: Sequence[str]) -> Any:
    """``vectorizer.transform(texts)``, word by word where :func:`covers` allows."""
    if not covers(vectorizer) or not all(isinstance(t, str) for t in texts):
        return vectorizer.transform(list(texts))
    with _CACHES_LOCK:
        cache = _CACHES.get(vectorizer) or _CACHES.setdefault(vectorizer, WordNgrams(vectorizer))
    return cache.transform(texts)
