"""The heads beside category and priority: quality, consistency and their cost (issue 27).

Three measurements, each through the project's own training functions
(``training.inputs``, ``training.heads``, ``training.fit``) and the served
model's runtime (``triage_model``):

- ``clinc150``: domain as the category, intent as the subcategory. Trained on
  train.csv's in-scope rows, scored on test.csv's in-scope rows. The subcategory
  decoded under the predicted domain beside a flat intent model (the same head's
  classifier on the same features, no constraint: the head's own argmax), its
  in-scope accuracy with and without the confidence bar, and the inconsistent
  (domain, intent) pairs of each.
- ``tickets``: the tickets sample's ``type`` and ``queue`` (as the team head),
  each on its README split (stratified 80/20, seed 0, rows in file order):
  the head's macro-F1 beside the plain TF-IDF + logistic regression baseline
  of ``bench_quality.py``, trained in the same run on the same rows.
- ``speed``: on synthetic tickets, a predictor fitted as ``fit.fit_predictor``
  fits it (category, priority stack, every head), its raw predict throughput
  on fresh tickets with and without its heads, and the heads' fit seconds.

Usage:
    python benchmarks/bench_heads.py [--datasets clinc150,tickets,speed]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import CLINC, TICKETS, fit_baseline, texts
from triage_ml import synth
from triage_ml.settings import Settings
from triage_ml.training import candidates, fit, heads, inputs
from triage_model import heads as runtime_heads

SETTINGS = Settings()
OOS = "oos"


def clinc_frame(name: str) -> pd.DataFrame:
    """A CLINC150 file's in-scope rows as tickets: text as body, domain and intent as labels."""
    frame = pd.read_csv(CLINC / name)
    frame = frame[frame["intent"] != OOS].reset_index(drop=True)
    return pd.DataFrame(
        {"body": frame["text"], "category": frame["domain"], "subcategory": frame["intent"]}
    )


def fit_clinc(train: pd.DataFrame, test: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """The category model and subcategory head on the shared matrix, as a predictor; test inputs."""
    rows, test_rows = inputs.prepare(train), inputs.prepare(test)
    matrices = inputs.featurize(rows, test_rows)
    category = fit.refit(heads.head_blueprint(SETTINGS.train), matrices.train, matrices.y_train)
    fitted = heads.fit_heads(
        rows, matrices.train, matrices.features, ["subcategory"], SETTINGS.train
    )
    config = heads.heads_config(fitted, SETTINGS.heads)
    return fit.assemble_predictor(matrices.features, category, None, config, fitted), test_rows


def clinc150() -> None:
    """Hierarchical against flat intent accuracy on CLINC150's in-scope test rows."""
    if not CLINC.exists():
        print(f"clinc150: {CLINC} absent, skipped")
        return
    train, test = clinc_frame("train.csv"), clinc_frame("test.csv")
    started = time.perf_counter()
    with threadpool_limits(1):
        predictor, test_rows = fit_clinc(train, test)
        fit_seconds = time.perf_counter() - started
        matrix = predictor.matrix(test_rows)
        head = predictor.heads["subcategory"]
        flat = head.classes_[
            head.predict_proba(matrix[:, : head.n_features_in_]).argmax(axis=1)
        ].tolist()
        bars = predictor.config["head_min_confidence"]
        answers = {
            f"hierarchical, bar {bars['subcategory']}": predictor.predict(test),
            "hierarchical, no bar": dataclasses.replace(
                predictor, config={**predictor.config, "head_min_confidence": {}}
            ).predict(test),
        }
    pairs = predictor.config["heads"]["subcategory"]["pairs"]
    truth = test["subcategory"].tolist()
    print(
        f"\nclinc150: {len(train)} train / {len(test)} test in-scope rows; fit {fit_seconds:.0f} s"
    )
    category = answers[next(iter(answers))]["category"].tolist()
    print(
        f"  domain (category) accuracy            {accuracy_score(test['category'], category):.4f}"
    )
    report_intents("flat intent model", flat, truth, category, pairs)
    for name, out in answers.items():
        decoded = [None if pd.isna(s) else s for s in out["subcategory"]]
        report_intents(name, decoded, truth, out["category"].tolist(), pairs)


def report_intents(
    name: str, predicted: list[Any], truth: list[str], categories: list[str], pairs: list
) -> None:
    """One line: accuracy (withheld = miss), answered share, accuracy answered, inconsistent."""
    answered = np.array([p is not None for p in predicted])
    hits = np.array([p == t for p, t in zip(predicted, truth)])
    inconsistent = int((~runtime_heads.consistent(categories, predicted, pairs)).sum())
    print(
        f"  intent, {name:<30} accuracy {hits.mean():.4f}, answered {answered.mean():.3f}"
        f" (accuracy answered {hits[answered].mean():.4f}), inconsistent pairs {inconsistent}"
    )


def ticket_split(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sample README's split: stratified 80/20 on the target, seed 0, rows in file order."""
    y = frame[target].to_numpy(dtype=object)
    train, test = train_test_split(np.arange(len(frame)), test_size=0.2, random_state=0, stratify=y)
    return frame.iloc[train].reset_index(drop=True), frame.iloc[test].reset_index(drop=True)


def ticket_head(frame: pd.DataFrame, target: str, head: str) -> None:
    """One head (``type``, or ``team`` from ``queue``) beside the baseline, on the same rows."""
    train, test = ticket_split(frame.assign(**{head: frame[target]}), target)
    with threadpool_limits(1):
        rows, test_rows = inputs.prepare(train), inputs.prepare(test)
        matrices = inputs.featurize(rows, test_rows)
        started = time.perf_counter()
        fitted = heads.fit_heads(rows, matrices.train, matrices.features, [head], SETTINGS.train)
        seconds = time.perf_counter() - started
        base = fit_baseline(texts(train), train[target].to_numpy(dtype=object))
        baseline = base.predict(texts(test))
    model = fitted.models[head]
    proba = model.predict_proba(matrices.test[:, : model.n_features_in_])
    classes = [str(c) for c in model.classes_]
    truth = test[target].tolist()
    bar = float(SETTINGS.heads.min_confidence.get(head, 0.0))
    for name, answer in (("no bar", 0.0), (f"bar {bar}", bar)):
        found, _ = runtime_heads.flat_answers(proba, classes, answer)
        print(f"  {target} ({head} head, {name}): {scores(truth, found)}")
    print(f"  {target} baseline (TF-IDF + logreg C=10): {scores(truth, baseline.tolist())}")
    print(f"  {target} head fit {seconds:.1f} s on {len(train)} rows")


def scores(truth: list[str], predicted: list[Any]) -> str:
    """Macro-F1 and accuracy over the true classes; a withheld answer (None) is a miss."""
    shown = ["" if p is None else p for p in predicted]
    labels = sorted(set(truth))
    macro = f1_score(truth, shown, labels=labels, average="macro", zero_division=0)
    answered = np.mean([p is not None for p in predicted])
    accuracy = accuracy_score(truth, shown)
    return f"macro-F1 {macro:.4f}, accuracy {accuracy:.4f}, answered {answered:.3f}"


def tickets() -> None:
    """Type and queue (team) heads on the tickets sample."""
    if not TICKETS.exists():
        print(f"tickets: {TICKETS} absent, skipped")
        return
    frame = pd.read_csv(TICKETS)
    print(f"\ntickets sample: {len(frame)} rows")
    ticket_head(frame, "type", "type")
    ticket_head(frame, "queue", "team")


def speed(history: int = 6000, fresh: int = 20000) -> None:
    """Raw predict throughput with and without heads, the heads' own cost, and their fit seconds."""
    data = synth.generate(history + fresh, months=6, seed=7).tickets
    train, new = data.head(history), data.tail(fresh).drop(columns=list(inputs.LABEL_COLUMNS))
    spec = candidates.category_specs(("logreg",))[-1]
    with threadpool_limits(1):
        rows = inputs.prepare(train)
        started = time.perf_counter()
        predictor = fit.fit_predictor(rows, spec, {}, 0, settings=SETTINGS)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        matrix = predictor.matrix(rows)
        heads.fit_heads(rows, matrix, predictor.features, list(predictor.heads), SETTINGS.train)
        head_seconds = time.perf_counter() - started
        bare = dataclasses.replace(predictor, heads={})
        for name, model in (("every head", predictor), ("no heads", bare)):
            started = time.perf_counter()
            out = model.predict(new)
            print(
                f"  raw predict, {name}: {fresh / (time.perf_counter() - started):,.0f} tickets/s"
            )
        matrix = predictor.matrix(inputs.prepare(new))
        started = time.perf_counter()
        runtime_heads.head_answers(predictor.heads, matrix, out["category"], predictor.config)
        per_ticket = (time.perf_counter() - started) / fresh * 1e6
    print(f"  the heads alone on the shared matrix: {per_ticket:.1f} µs per ticket")
    print(
        f"  fit_predictor on {history} synthetic tickets {fit_seconds:.1f} s, of which the heads"
        f" ({', '.join(predictor.heads)}) {head_seconds:.1f} s"
    )


def main() -> None:
    """Run the chosen measurements and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="clinc150,tickets,speed")
    chosen = parser.parse_args().datasets.split(",")
    if "speed" in chosen:
        print("speed (synthetic):")
        speed()
    if "tickets" in chosen:
        tickets()
    if "clinc150" in chosen:
        clinc150()


if __name__ == "__main__":
    main()
