"""Duplicate suggestions: speed of the step on a stored history, and precision on known re-sends.

A synthetic history of ``--tickets`` tickets is stored in a temporary SQLite
store. Its known duplicates are the generator's re-sends: a customer sending
one of their open tickets again a few days later, lightly reworded, with the
original's id in ``duplicate_of`` (which the store does not keep). Then:

- speed: ``possible_duplicates`` on every stored ticket, a scoring chunk
  (``--chunk``) at a time as batch scoring calls it (chunks read beforehand,
  not timed), in tickets/s; and one ticket at a time as the API calls it
  (median and p99 ms over 200 tickets);
- scoring with duplicates: ``predictions_frame`` and the duplicate step on the
  same chunks, timed apart in one pass, with a predictor trained by the real
  training code (as tests/model/conftest.py trains it), in tickets/s;
- quality: with the default window and up to ``max_suggestions``, each
  suggestion is right when both tickets share an original (the ticket re-sent);
  precision (right suggestions / suggestions) and recall (re-sends whose
  original is suggested / re-sends) at a few thresholds.

    python benchmarks/bench_duplicates.py [--tickets 20000] [--chunk 5000] [--no-model]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from triage_ml import store, synth  # noqa: E402
from triage_ml.scoring import batch, duplicates  # noqa: E402
from triage_ml.settings import DuplicateSettings, Settings  # noqa: E402

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


def known_duplicates(n: int, seed: int) -> pd.DataFrame:
    """``n`` generated tickets, ``duplicate_of`` None for those that are no re-send."""
    generated = synth.generate(n, months=6, seed=seed).tickets
    marked = generated["duplicate_of"].astype(object)
    return generated.assign(duplicate_of=marked.where(marked.notna() & (marked != ""), None))


def stored_history(url: str, tickets: pd.DataFrame) -> object:
    """A store holding ``tickets`` (store columns only, as ingest keeps them)."""
    engine = store.connect(url)
    now = pd.Timestamp.now(tz="UTC")
    rows = tickets[[c for c in store.TICKET_FIELDS if c in tickets.columns]].assign(
        content_hash=[f"h{i}" for i in range(len(tickets))], batch_id="bench", ingested_at=now
    )
    with engine.begin() as conn:
        store.insert_rows(conn, store.tickets, rows, ("created_at", "ingested_at"))
    return engine


def chunks_of(engine: object, chunk_rows: int) -> list[pd.DataFrame]:
    """Every stored ticket, in the chunks batch scoring reads (with repeat_contacts)."""
    return list(batch.unscored_chunks(engine, None, chunk_rows))


def time_batch(engine: object, chunks: list[pd.DataFrame], settings: DuplicateSettings) -> dict:
    """The duplicate step on every chunk: tickets/s (wall and CPU time), and the answers."""
    answers: dict[str, str] = {}
    started, cpu = time.perf_counter(), time.process_time()
    for chunk in chunks:
        with engine.connect() as conn:
            found = duplicates.possible_duplicates(conn, chunk, settings)
        answers.update(zip(chunk["ticket_id"], found))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    timing = {"tickets": len(answers), "seconds": seconds, "cpu": cpu}
    return timing | {"per_s": len(answers) / seconds, "per_cpu_s": len(answers) / cpu}, answers


def time_single(engine: object, chunks: list[pd.DataFrame], settings: DuplicateSettings) -> dict:
    """The duplicate step one ticket at a time (the API's call), on 200 tickets."""
    sample = pd.concat(chunks).sample(200, random_state=0)
    rows = [sample.iloc[[i]] for i in range(len(sample))]
    times = []
    with engine.connect() as conn:
        for row in rows:
            started = time.perf_counter()
            duplicates.possible_duplicates(conn, row, settings)
            times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": statistics.median(times), "p99_ms": float(np.percentile(times, 99))}


def quality(truth: pd.DataFrame, answers: dict[str, str], most: int) -> list[dict]:
    """Precision and recall of the suggestions at each of THRESHOLDS (top ``most`` kept)."""
    root = dict(zip(truth["ticket_id"], truth["duplicate_of"].fillna(truth["ticket_id"])))
    resends = set(truth.loc[truth["duplicate_of"].notna(), "ticket_id"])
    out = []
    for threshold in THRESHOLDS:
        suggested = right = found = 0
        for ticket_id, text in answers.items():
            kept = [s for s in json.loads(text) if s["similarity"] >= threshold][:most]
            hits = [root[s["ticket_id"]] == root[ticket_id] for s in kept]
            suggested, right = suggested + len(kept), right + sum(hits)
            found += int(ticket_id in resends and any(hits))
        precision = right / suggested if suggested else float("nan")
        recall = found / len(resends) if resends else float("nan")
        out.append(
            {
                "threshold": threshold,
                "suggestions": suggested,
                "precision": precision,
                "recall": recall,
            }
        )
    return out


def trained_predictor(seed: int) -> object:
    """Category candidate and stacked priority model fitted as tests/model/conftest.py does."""
    from triage_ml.training import candidates, dataset, fit, inputs, priority, retrain, selection

    settings = Settings()
    train = settings.train
    data = synth.generate(3000, months=4, seed=seed)
    feedback = data.feedback.assign(feedback_id=np.arange(len(data.feedback)))
    history = dataset.resolve_labels(data.tickets, feedback)
    split = dataset.split_snapshot(history, train.test_days, train.test_fraction, train.seed)
    rows = inputs.prepare(split.train)
    features = candidates.text_features({})
    matrix = features.fit_transform(rows)
    y = inputs.labels(rows)
    folds = selection.make_folds(y, train.cv_folds, train.cv_rows, train.seed, split.time_ordered)
    spec = candidates.category_specs(("linear_svc",))[-1]
    scored = selection.cross_validate(spec, matrix, folds, train.seed)
    config = retrain.serving_config(settings, scored, folds)
    category = fit.refit(scored.blueprint, matrix, y)
    stacked = priority.fit_stage(rows, matrix, features, train)
    return fit.assemble_predictor(features, category, stacked, config)


def time_scoring(engine: object, chunks: list[pd.DataFrame], settings: DuplicateSettings) -> dict:
    """predictions_frame and the duplicate step on each chunk, timed apart in one pass (tickets/s).

    One pass only: the runtime caches per text (language detection), so a second pass over
    the same tickets would time a cache, where scoring meets every ticket once.
    """
    model = trained_predictor(5)
    tickets = sum(len(c) for c in chunks)
    predict = find = 0.0
    for chunk in chunks:
        started = time.perf_counter()
        frame = batch.predictions_frame(model, chunk, "1")
        middle = time.perf_counter()
        with engine.connect() as conn:
            frame = batch.with_duplicates(conn, frame, chunk, settings)
        predict, find = predict + middle - started, find + time.perf_counter() - middle
        assert frame[batch.DUPLICATES].notna().all()
    return {
        "predict_per_s": tickets / predict,
        "duplicates_per_s": tickets / find,
        "with_duplicates_per_s": tickets / (predict + find),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-model", action="store_true", help="skip the predictions_frame timing")
    args = parser.parse_args()
    settings = Settings().duplicates
    truth = known_duplicates(args.tickets, args.seed)
    print(
        f"{len(truth)} stored tickets, {int(truth['duplicate_of'].notna().sum())} known "
        f"re-sends; window {settings.window_days} days, "
        f"threshold {settings.threshold}, at most {settings.max_suggestions} suggestions"
    )
    with tempfile.TemporaryDirectory() as tmp:
        engine = stored_history(f"sqlite:///{Path(tmp) / 'store.db'}", truth)
        chunks = chunks_of(engine, args.chunk)
        # Every pair at or above the lowest threshold, so one run serves them all.
        wide = settings.model_copy(update={"threshold": min(THRESHOLDS)})
        timing, answers = time_batch(engine, chunks, wide)
        default_timing, _ = time_batch(engine, chunks, settings)
        print(
            f"batch (chunks of {args.chunk}): {default_timing['per_s']:,.0f} tickets/s "
            f"({default_timing['tickets']} in {default_timing['seconds']:.2f} s; by CPU time "
            f"{default_timing['per_cpu_s']:,.0f}/s; {timing['per_s']:,.0f}/s at threshold "
            f"{min(THRESHOLDS)})"
        )
        single = time_single(engine, chunks, settings)
        print(
            f"one ticket at a time (API): median {single['median_ms']:.1f} ms, "
            f"p99 {single['p99_ms']:.1f} ms"
        )
        print("threshold  suggestions  precision  recall")
        for row in quality(truth, answers, settings.max_suggestions):
            print(
                f"{row['threshold']:>9.2f}  {row['suggestions']:>11}  {row['precision']:>9.3f}"
                f"  {row['recall']:>6.3f}"
            )
        if not args.no_model:
            scoring = time_scoring(engine, chunks, settings)
            print(
                f"scoring (one pass): predictions_frame {scoring['predict_per_s']:,.0f} "
                f"tickets/s, the duplicate step {scoring['duplicates_per_s']:,.0f} tickets/s, "
                f"both {scoring['with_duplicates_per_s']:,.0f} tickets/s"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
