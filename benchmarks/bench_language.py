"""Language detection on the tickets sample (accuracy, speed); each signal's cost per ticket.

Accuracy is measured on the text the models read (``features.model_text``: subject, newline,
body, personal data masked) against the sample's ``language`` column, and again on the rows
whose label the text corroborates: the column is wrong on some rows labelled "de" whose text is
English. The rule is independent of the detector: a row labelled "de" is kept when its text
holds at least one German function word (:data:`GERMAN_WORDS`), a row labelled "en" when it
holds none. The detector's opening (``language.PREFIX_CHARS``, read further where unsure) is
compared with fixed lengths.

Speed is CPU time (``time.process_time``, best of ``--rounds``; the machine is shared), caches
cleared before each round, so every text is new. Per ticket, on the sample and on synthetic
tickets: language detection, sentiment by language, escalation flags with the shipped terms and
the answer's signals, against what predict did before issue 27 (VADER on every text, the
English terms). Their difference is what the signals add to predict.

    python benchmarks/bench_language.py [--rounds 5] [--synthetic 5000]
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from triage_ml import synth
from triage_ml.training import signals
from triage_model import escalation, features, language, sentiment

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tickets-sample"
CANDIDATES = features.SIGNAL_DEFAULTS["detect_languages"]
# German function words that English text does not use (the corroboration rule).
GERMAN_WORDS = frozenset(
    [
        "und", "der", "das", "ich", "nicht", "ist", "mit", "wir", "eine", "einen", "für", "auf",
        "bitte", "sehr", "uns", "wird", "werden", "können", "haben", "unsere", "unser", "ihre",
        "oder", "auch", "noch", "wie", "bei", "vom", "zum", "zur", "sich", "dass", "ein", "dem",
        "den", "des",
    ]
)  # fmt: skip
_WORD = re.compile(r"\w+")
PREFIXES = (40, 60, 100, 150, 300, None)


def corroborated(texts: list[str], labels: np.ndarray) -> np.ndarray:
    """Rows whose label the text confirms: German words for "de", none for "en"."""
    german = np.array([bool(GERMAN_WORDS & set(_WORD.findall(t.lower()))) for t in texts])
    return np.where(labels == "de", german, (labels == "en") & ~german)


def accuracy_table(texts: list[str], labels: np.ndarray, kept: np.ndarray) -> None:
    """Accuracy of each opening length, against the column and on the corroborated rows."""
    print(
        f"runtime: the first {language.PREFIX_CHARS} characters, the first"
        f" {language.LONGER_CHARS} where the probability is below {language.SURE}"
    )
    print(f"{'opening':>10} {'candidates':>10} {'column':>8} {'corroborated':>13} {'errors':>7}")
    for candidates in (tuple(CANDIDATES), ("de", "en")):
        model = language.identifier(tuple(sorted(candidates)))
        for chars in PREFIXES:
            codes = np.array([_classify(model, t, chars) for t in texts])
            errors = int(((codes != labels) & kept).sum())
            name = "whole" if chars is None else str(chars)
            print(
                f"{name:>10} {len(candidates):>10} {np.mean(codes == labels):>8.4f}"
                f" {1 - errors / kept.sum():>13.4f} {errors:>7}"
            )
        codes = np.array(language.detect(texts, candidates)[0])
        errors = int(((codes != labels) & kept).sum())
        print(
            f"{'runtime':>10} {len(candidates):>10} {np.mean(codes == labels):>8.4f}"
            f" {1 - errors / kept.sum():>13.4f} {errors:>7}"
        )


def _classify(model: language.LanguageIdentifier, text: str, chars: int | None) -> str:
    letter = re.search(r"[^\W\d_]", text)
    if letter is None:
        return language.UNDETERMINED
    opening = text[letter.start() :]
    return model.classify(opening if chars is None else opening[:chars])[0]


def cpu_us(steps: dict[str, Callable[[], object]], rows: int, rounds: int) -> dict[str, float]:
    """Best CPU microseconds per row of each step, caches cleared before each run.

    The steps take turns in every round, so a busy spell of the shared machine
    weighs on all of them alike.
    """
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for label, step in steps.items():
            clear_caches()
            started = time.process_time()
            step()
            best[label] = min(best[label], time.process_time() - started)
    return {label: seconds / rows * 1e6 for label, seconds in best.items()}


def clear_caches() -> None:
    language.identify.cache_clear()
    sentiment.compound.cache_clear()
    sentiment.german.cache_clear()
    escalation.found.cache_clear()


def costs(name: str, texts: list[str], rounds: int) -> None:
    """Per-ticket CPU cost of each signal, new and as before issue 27."""
    terms = signals.escalation_terms(None)
    codes, _ = language.detect(texts, CANDIDATES)
    shares = pd.Series(codes).value_counts(normalize=True).head(3).round(3).to_dict()
    repeats = np.zeros(len(texts))
    n = len(texts)

    def signals_after_flags() -> None:
        escalation.flag_columns(texts, terms)
        escalation.signals(texts, repeats, terms, 2)

    parts = {
        "language.detect": lambda: language.detect(texts, CANDIDATES),
        "sentiment.scores (by language)": lambda: sentiment.scores(texts, codes),
        "escalation flags + signals (shipped terms)": signals_after_flags,
        "before: VADER on every text": lambda: features.sentiment_scores(texts),
        "before: escalation flags (English terms)": lambda: escalation.flag_columns(
            texts, escalation.LEGACY_ESCALATION_TERMS
        ),
    }
    measured = cpu_us(parts, n, rounds)
    print(f"\n{name}: {n} texts, {np.mean([len(t) for t in texts]):.0f} characters on average;")
    print(f"  detected {shares}")
    for label, us in measured.items():
        print(f"  {label:<45} {us:7.1f} µs/ticket")
    new = sum(list(measured.values())[:3])
    old = sum(list(measured.values())[3:])
    print(f"  signals now {new:.1f} µs/ticket, before {old:.1f}: {new - old:+.1f} µs/ticket")
    one = measured["language.detect"]
    print(f"  language detection alone: {1e6 / one:,.0f} texts/s (one core)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--synthetic", type=int, default=5000)
    args = parser.parse_args()
    path = SAMPLE / "tickets.csv"
    if not path.exists():
        print(f"skipped: {path} is absent")
        return
    frame = pd.read_csv(path)
    texts, labels = features.model_text(frame), frame["language"].to_numpy(dtype=str)
    kept = corroborated(texts, labels)
    print(f"tickets sample: {len(frame)} rows, labels {frame['language'].value_counts().to_dict()}")
    print(
        f"corroborated rows kept: {kept.sum()} of {len(frame)} (de kept"
        f" {int(kept[labels == 'de'].sum())} of {int((labels == 'de').sum())},"
        f" en kept {int(kept[labels == 'en'].sum())} of {int((labels == 'en').sum())})"
    )
    codes, _ = language.detect(texts, CANDIDATES)
    right = np.array(codes) == labels
    print(
        f"language.detect ({len(CANDIDATES)} candidates): accuracy {right.mean():.4f}"
        " against the column,"
        f" {right[kept].mean():.4f} on the corroborated rows"
    )
    for i in np.flatnonzero(~right & kept):
        print(f"  miss: labelled {labels[i]}, detected {codes[i]}, {len(texts[i])} characters")
    print()
    accuracy_table(texts, labels, kept)
    costs("tickets sample", texts, args.rounds)
    synthetic = features.model_text(synth.generate_unlabeled(args.synthetic, seed=7))
    costs("synthetic tickets", synthetic, args.rounds)


if __name__ == "__main__":
    main()
