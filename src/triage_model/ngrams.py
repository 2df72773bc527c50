"""TF-IDF of a batch of texts with a fitted vectorizer, without its per-n-gram Python loop.

scikit-learn's analyzers build every n-gram of every text as a Python
string and count them one at a time, which was most of batch prediction
time. Two shapes of vectorizer this package trains have a faster path:

- ``char_wb`` n-grams never cross a word boundary (each word is padded with
  spaces and cut on its own), so a text's n-gram counts are the sum of its
  words' counts. :class:`WordNgrams` cuts each distinct word once, with the
  fitted vectorizer's own analyzer, keeps its columns in a bounded cache,
  and counts a batch as one sparse product (texts x words) @ (words x n-grams).
- word unigrams and bigrams are known pairs of known tokens, and a token
  never spans whitespace. :class:`TokenNgrams` tokenizes each distinct
  whitespace-separated word once, with the vectorizer's own preprocessor and
  tokenizer, keeps its tokens as numbers in a bounded cache, and finds the
  vocabulary's unigrams and bigrams among a batch's numbers with array
  operations, without building a string per bigram.

The fitted vectorizer's own TF-IDF weighting then applies. scikit-learn has
no such path, hence this module; any vectorizer this does not cover goes to
the library. The word path's result equals ``vectorizer.transform`` bit for
bit. The char path's holds the same n-grams with the same values but for
their last bits (tested): it leaves each row's n-grams in the order the
product gives them, where the library sorts them, and the weighting sums a
row's squares for its L2 norm in that order; sorting would cost a large
share of the char path's time (see docs/benchmarks.md). The models read a
matrix in any order; a trained model's predictions equal those it makes
on the library's matrix (tests/model/test_behaviour.py).
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer

# Distinct words whose columns are kept per vectorizer; past it the cache
# starts again, so memory stays bounded.
MAX_CACHED_WORDS = 100_000


class _CachedNgrams:
    """A fitted vectorizer's weighting, and a bounded per-word cache that subclasses fill."""

    def __init__(self, vectorizer: TfidfVectorizer, max_words: int = MAX_CACHED_WORDS) -> None:
        self.vectorizer = vectorizer
        self.max_words = max_words
        self.preprocess = vectorizer.build_preprocessor()
        self.weighting = _weighting(vectorizer)
        self.lock = threading.Lock()

    def transform(self, texts: Sequence[str]) -> Any:
        """``vectorizer.transform(texts)``."""
        counts = self.counts(texts)
        if self.vectorizer.binary:
            counts.data.fill(1)
        return self.weighting.transform(counts, copy=False)

    def counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """The count matrix of ``texts`` (texts x vocabulary), each n-gram once per row."""
        raise NotImplementedError


class WordNgrams(_CachedNgrams):
    """A fitted ``char_wb`` vectorizer's columns per word, and its weighting, cached."""

    def __init__(self, vectorizer: TfidfVectorizer, max_words: int = MAX_CACHED_WORDS) -> None:
        super().__init__(vectorizer, max_words)
        self.analyze = vectorizer.build_analyzer()
        self.columns: dict[str, np.ndarray] = {}

    def counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """The n-gram count matrix of ``texts`` (texts x vocabulary), rows left unsorted."""
        words, tokens, lengths = batch_words(self.preprocess, texts)
        dtype = self.vectorizer.dtype
        per_text = sparse.csr_matrix(
            (np.ones(len(tokens), dtype=dtype), tokens, _offsets(lengths)),
            shape=(len(texts), len(words)),
        )
        # The product sums a row's n-grams into one entry each, unsorted (see the module's notes).
        return (per_text @ self.word_matrix(words)).tocsr()

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
        matrix = sparse.csr_matrix(
            (
                np.ones(len(indices), dtype=self.vectorizer.dtype),
                indices,
                np.concatenate([[0], np.cumsum(lengths)]),
            ),
            shape=(len(words), len(self.vectorizer.vocabulary_)),
        )
        matrix.sum_duplicates()
        return matrix

    def word_columns(self, word: str) -> np.ndarray:
        """Vocabulary columns of one word's n-grams, repeated as often as they occur."""
        vocabulary = self.vectorizer.vocabulary_
        return np.array(
            [vocabulary[g] for g in self.analyze(word) if g in vocabulary], dtype=np.int32
        )


def _weighting(vectorizer: TfidfVectorizer) -> TfidfTransformer:
    """A transformer that weights counts as ``vectorizer`` does, with its fitted idf."""
    weighting = TfidfTransformer(
        norm=vectorizer.norm,
        use_idf=vectorizer.use_idf,
        smooth_idf=vectorizer.smooth_idf,
        sublinear_tf=vectorizer.sublinear_tf,
    )
    if vectorizer.use_idf:
        weighting.idf_ = vectorizer.idf_
    else:
        # Without idf there is nothing to learn: the width alone marks it fitted.
        weighting.n_features_in_ = len(vectorizer.vocabulary_)
    return weighting


class TokenNgrams(_CachedNgrams):
    """A fitted word-unigram (and bigram) vectorizer's vocabulary as token numbers."""

    def __init__(self, vectorizer: TfidfVectorizer, max_words: int = MAX_CACHED_WORDS) -> None:
        super().__init__(vectorizer, max_words)
        self.tokenize = vectorizer.build_tokenizer()
        self.words: dict[str, tuple[int, ...]] = {}
        # Every token of the vocabulary's unigrams and bigrams gets a number; a
        # unigram's column is found by its number, a bigram's by its pair's key.
        self.tokens: dict[str, int] = {}
        unigrams: dict[int, int] = {}
        pairs: dict[int, int] = {}
        entries = [(term.split(" "), column) for term, column in vectorizer.vocabulary_.items()]
        for parts, _ in entries:
            for token in parts:
                self.tokens.setdefault(token, len(self.tokens))
        self.base = max(len(self.tokens), 1)
        for parts, column in entries:
            if len(parts) == 1:
                unigrams[self.tokens[parts[0]]] = column
            else:
                pairs[self.tokens[parts[0]] * self.base + self.tokens[parts[1]]] = column
        # One column per token number, -1 where none; the last number stands for unknown tokens.
        self.unigram_columns = np.full(len(self.tokens) + 1, -1, dtype=np.int64)
        self.unigram_columns[list(unigrams)] = list(unigrams.values())
        keys = np.fromiter(pairs, dtype=np.int64, count=len(pairs))
        order = np.argsort(keys)
        self.pair_keys = keys[order]
        self.pair_columns = np.fromiter(pairs.values(), dtype=np.int64, count=len(pairs))[order]

    def counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """The unigram and bigram count matrix of ``texts`` (texts x vocabulary)."""
        unknown = len(self.tokens)
        words, tokens, lengths = batch_words(self.preprocess, texts)
        # Each distinct word is tokenized once; its numbers are then laid out
        # for every occurrence, in text order, by array indexing.
        per_word = self.word_numbers(words)
        word_sizes = np.fromiter(map(len, per_word), dtype=np.int64, count=len(per_word))
        numbers = np.fromiter(
            chain.from_iterable(per_word), dtype=np.int64, count=int(word_sizes.sum())
        )
        sizes = word_sizes[tokens]
        ends = _offsets(sizes)
        ids = numbers[np.repeat(_offsets(word_sizes)[tokens] - ends[:-1], sizes) + _arange(ends)]
        per_text = ends[_offsets(lengths)]
        text_of = np.repeat(np.arange(len(texts)), np.diff(per_text))
        columns = self.unigram_columns[ids]
        rows, cols = [text_of[columns >= 0]], [columns[columns >= 0]]
        if self.vectorizer.ngram_range[1] == 2 and len(ids) > 1 and len(self.pair_keys):
            # Each token and the next, within one text, both known.
            pair = (text_of[:-1] == text_of[1:]) & (ids[:-1] != unknown) & (ids[1:] != unknown)
            keys = ids[:-1][pair] * self.base + ids[1:][pair]
            at = np.minimum(np.searchsorted(self.pair_keys, keys), len(self.pair_keys) - 1)
            found = self.pair_keys[at] == keys
            rows.append(text_of[:-1][pair][found])
            cols.append(self.pair_columns[at[found]])
        row_ids, col_ids = np.concatenate(rows), np.concatenate(cols)
        counts = sparse.csr_matrix(
            (np.ones(len(row_ids), dtype=self.vectorizer.dtype), (row_ids, col_ids)),
            shape=(len(texts), len(self.vectorizer.vocabulary_)),
        )
        counts.sum_duplicates()  # also sorts each row's indices: canonical, as the library's
        return counts

    def word_numbers(self, words: list[str]) -> list[tuple[int, ...]]:
        """Each whitespace-separated word's token numbers (unknown: ``len(self.tokens)``)."""
        found = list(map(self.words.get, words))
        if None in found:
            unknown, lookup = len(self.tokens), self.tokens.get
            with self.lock:
                if len(self.words) + len(words) > self.max_words:
                    self.words.clear()
                for i, numbers in enumerate(found):
                    if numbers is None:
                        tokens = self.tokenize(words[i])
                        found[i] = self.words[words[i]] = tuple(
                            map(lookup, tokens, repeat(unknown))
                        )
        return found  # type: ignore[return-value]


def batch_words(preprocess: Any, texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The distinct whitespace-separated words of the preprocessed ``texts``, and where they are.

    Returns:
        The distinct words in order of first occurrence; each occurrence's
        number in that list, text after text; and how many words each text holds.
    """
    # Numbers given at first sight by the dict itself, in C: a Python loop
    # over every word of a batch cost a large share of the char path.
    numbered: defaultdict[str, int] = defaultdict()
    numbered.default_factory = numbered.__len__
    number = numbered.__getitem__
    tokens: list[int] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    for row, text in enumerate(texts):
        start = len(tokens)
        tokens.extend(map(number, preprocess(text).split()))
        lengths[row] = len(tokens) - start
    return list(numbered), np.asarray(tokens, dtype=np.int64), lengths


def _offsets(sizes: np.ndarray) -> np.ndarray:
    """Where each of consecutive runs of ``sizes`` starts, and where the last ends."""
    return np.concatenate([[0], np.cumsum(sizes)])


def _arange(offsets: np.ndarray) -> np.ndarray:
    """0, 1, ... up to where the last run of :func:`_offsets` ends."""
    return np.arange(int(offsets[-1]))


def covers(vectorizer: Any) -> bool:
    """Whether :class:`WordNgrams` or :class:`TokenNgrams` reproduces ``vectorizer.transform``."""
    return _char_words(vectorizer) or _word_pairs(vectorizer)


def _plain(vectorizer: Any) -> bool:
    return (
        type(vectorizer) is TfidfVectorizer
        and vectorizer.input == "content"
        and vectorizer.preprocessor is None
        and isinstance(getattr(vectorizer, "vocabulary_", None), dict)
    )


def _char_words(vectorizer: Any) -> bool:
    # A preprocessor of one's own might not give the same words when applied
    # to a word again, as the analyzer does here; the built-in one does.
    return _plain(vectorizer) and vectorizer.analyzer == "char_wb"


DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


def _word_pairs(vectorizer: Any) -> bool:
    # The default token pattern never yields a space, so a vocabulary term
    # splits on spaces into exactly the tokens it was joined from.
    return (
        _plain(vectorizer)
        and vectorizer.analyzer == "word"
        and tuple(vectorizer.ngram_range) in ((1, 1), (1, 2))
        and vectorizer.tokenizer is None
        and vectorizer.stop_words is None
        and vectorizer.token_pattern == DEFAULT_TOKEN_PATTERN
    )


_CACHES: weakref.WeakKeyDictionary[Any, _CachedNgrams] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def transform(vectorizer: Any, texts: Sequence[str]) -> Any:
    """``vectorizer.transform(texts)``, by a cached fast path where :func:`covers` allows.

    Args:
        vectorizer: A fitted ``TfidfVectorizer`` (any other transformer goes to the library).
        texts: The texts to transform.

    Returns:
        The TF-IDF matrix, as ``vectorizer.transform(list(texts))`` returns it.
    """
    if not covers(vectorizer) or not all(isinstance(t, str) for t in texts):
        return vectorizer.transform(list(texts))
    with _CACHES_LOCK:
        cache = _CACHES.get(vectorizer)
        if cache is None:
            cache = _CACHES[vectorizer] = (
                WordNgrams(vectorizer) if _char_words(vectorizer) else TokenNgrams(vectorizer)
            )
    return cache.transform(texts)
