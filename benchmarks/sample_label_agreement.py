"""How far the tickets sample's labels follow its text, and what a near-duplicate lookup adds.

It measures the label agreement of similar tickets.

Not a model of the platform: an analysis of ``../shared/data/tickets-sample``
that puts issue 4's quality targets in context (skipped when the file is
absent). It prints, for each target (queue, type, priority):

- on one line, how often two tickets of the sample carry the same label, band
  by band of the cosine similarity of their word TF-IDF vectors, against the
  agreement of two random tickets;
- on the issue's split (stratified 80/20 of the rows in file order, seed 0),
  the issue's baseline (word 1-2 + char_wb 2-5 TF-IDF, LogisticRegression(C=10,
  balanced)) and the same baseline with each test ticket that has a training
  ticket at least ``t`` similar given that neighbour's label instead. ``t`` is
  not tuned here: every value is printed, so this is an upper bound on what
  a near-duplicate memory could add, not a result.

    python benchmarks/sample_label_agreement.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from bench_quality import SHARED, baseline_model, texts

BANDS = ((0.5, 1.01), (0.4, 0.5), (0.3, 0.4), (0.2, 0.3), (0.1, 0.2))
THRESHOLDS = (0.5, 0.4, 0.3, 0.25)


def word_vectors() -> TfidfVectorizer:
    """The word 1-2 gram TF-IDF whose cosine similarity says how alike two tickets are."""
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)


def similarities(text: list[str]) -> np.ndarray:
    """Cosine similarity of every pair of texts (:func:`word_vectors`), the diagonal zeroed."""
    vectors = word_vectors().fit_transform(text)
    sims = (vectors @ vectors.T).toarray()
    np.fill_diagonal(sims, 0.0)
    return sims


def agreement_by_band(sims: np.ndarray, labels: np.ndarray) -> str:
    """One line: per similarity band, the share of pairs with the same label, and the pair count."""
    upper = np.triu_indices(len(labels), 1)
    pair_sims, same = sims[upper], labels[upper[0]] == labels[upper[1]]
    chance = float(np.sum(pd.Series(labels).value_counts(normalize=True).to_numpy() ** 2))
    cells = [f"random pair {chance:.2f}"]
    for low, high in BANDS:
        band = (pair_sims >= low) & (pair_sims < high)
        cells.append(
            f"[{low:.1f}, {min(high, 1.0):.1f}): {same[band].mean():.2f} of {band.sum():,}"
        )
    return "; ".join(cells)


def near_duplicate_lookup(text: np.ndarray, labels: np.ndarray) -> list[str]:
    """The baseline on the issue's split, and with nearest-neighbour labels per threshold."""
    train, test = train_test_split(
        np.arange(len(labels)), test_size=0.2, random_state=0, stratify=labels
    )
    predicted = baseline_model().fit(list(text[train]), labels[train]).predict(list(text[test]))
    words = word_vectors().fit(list(text[train]))
    sims = (words.transform(list(text[test])) @ words.transform(list(text[train])).T).toarray()
    nearest, best = sims.argmax(axis=1), sims.max(axis=1)
    lines = [f"baseline macro-F1 {f1_score(labels[test], predicted, average='macro'):.4f}"]
    for threshold in THRESHOLDS:
        close = best >= threshold
        looked_up = predicted.copy()
        looked_up[close] = labels[train][nearest[close]]
        lines.append(
            f"neighbour >= {threshold}: {close.sum()} test tickets, neighbour's label right on "
            f"{np.mean(looked_up[close] == labels[test][close]):.2f}, baseline right on "
            f"{np.mean(predicted[close] == labels[test][close]):.2f}; macro-F1 with the lookup "
            f"{f1_score(labels[test], looked_up, average='macro'):.4f}"
        )
    return lines


def main() -> None:
    if not SHARED.exists():
        print(f"skipped: {SHARED} is absent")
        return
    data = pd.read_csv(SHARED)
    text = np.array(texts(data), dtype=object)
    sims = similarities(list(text))
    for target in ("queue", "type", "priority"):
        labels = data[target].to_numpy(dtype=object)
        print(f"{target}: label agreement by similarity: {agreement_by_band(sims, labels)}")
        for line in near_duplicate_lookup(text, labels):
            print(f"  {line}")


if __name__ == "__main__":
    main()
