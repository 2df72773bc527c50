"""Batch scoring: predict tickets and write the predictions back.

Chunks are read by keyset pagination and each chunk is written in its own
transaction, so memory stays flat and a failed chunk leaves nothing behind.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from triage_ml import store
from triage_model import features
from triage_model.predictor import input_frame

logger = logging.getLogger(__name__)


@dataclass
class ScoreSummary:
    """What one scoring run did."""

    model_version: str
    scored: int = 0
    chunks: int = 0
    needs_review: int = 0


def predictions_frame(model: Any, tickets: pd.DataFrame, model_version: str) -> pd.DataFrame:
    """Predict ``tickets`` and shape the rows the predictions table stores."""
    inputs = input_frame(tickets).reset_index(drop=True)
    predicted = model.predict(inputs)
    out = pd.DataFrame(predicted).reset_index(drop=True)
    out.insert(0, "ticket_id", tickets["ticket_id"].to_numpy(dtype=object))
    out["model_version"] = model_version
    out["scored_at"] = pd.Timestamp.now(tz="UTC")
    out["needs_review"] = out["needs_review"].astype(bool)
    return out


KeyRange = tuple[str | None, str | None]


def unscored_chunks(
    engine: Engine, model_version: str | None, chunk_rows: int, key_range: KeyRange = (None, None)
) -> Iterator[pd.DataFrame]:
    """Unscored tickets in ``key_range`` (``after < id <= upto``), a chunk at a time.

    Each chunk carries ``repeat_contacts``, which the features need.
    """
    after, upto = key_range
    while True:
        with engine.connect() as conn:
            chunk = store.unscored_tickets(
                conn,
                model_version,
                chunk_rows,
                after,
                upto,
                repeat_window_days=features.REPEAT_WINDOW_DAYS,
            )
        if chunk.empty:
            return
        after = str(chunk["ticket_id"].iloc[-1])
        yield chunk


def partitions(
    engine: Engine, model_version: str | None, partition_rows: int, workers: int = 1
) -> list[KeyRange]:
    """Key ranges covering every unscored ticket, at most ``partition_rows`` each.

    Their sizes are within one of each other and their number is a multiple
    of ``workers``, so that every worker gets the same share: an odd range
    out would leave one worker scoring it alone while the others sat idle.
    """
    with engine.connect() as conn:
        total = store.count_unscored(conn, model_version)
        count = workers * max(1, math.ceil(total / (workers * partition_rows)))
        # The last ticket of each range but the last one.
        ends = sorted({i * total // count - 1 for i in range(1, count)} - {-1})
        edges = store.unscored_ids_at(conn, model_version, ends)
    bounds: list[str | None] = [None, *edges, None]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


@functools.lru_cache(maxsize=4)
def process_engine(url: str) -> Engine:
    """One engine per store and process: partitions on the same worker share its pool."""
    return store.connect(url)


def write_chunk(engine: Engine, predictions: pd.DataFrame) -> int:
    """Store one chunk of predictions atomically; returns rows newly written."""
    with engine.begin() as conn:
        return store.write_predictions(conn, predictions)


def score_partition(
    engine: Engine,
    model: Any,
    model_version: str,
    chunk_rows: int,
    key_range: KeyRange = (None, None),
    rescore: bool = False,
) -> ScoreSummary:
    """Score the unscored tickets of one key range, chunk by chunk, each chunk written atomically.

    Without ``rescore`` a ticket any model version has scored is left alone;
    with it, every ticket ``model_version`` has not scored is scored.
    """
    summary = ScoreSummary(model_version)
    for chunk in unscored_chunks(engine, model_version if rescore else None, chunk_rows, key_range):
        predictions = predictions_frame(model, chunk, model_version)
        summary.scored += write_chunk(engine, predictions)
        summary.needs_review += int(predictions["needs_review"].sum())
        summary.chunks += 1
    logger.info(
        "scored %d tickets of key range %s in %d chunk(s); %d need review",
        summary.scored,
        key_range,
        summary.chunks,
        summary.needs_review,
    )
    return summary


def combine(summaries: list[ScoreSummary], model_version: str) -> ScoreSummary:
    """One summary for the partitions of a run."""
    return ScoreSummary(
        model_version,
        sum(s.scored for s in summaries),
        sum(s.chunks for s in summaries),
        sum(s.needs_review for s in summaries),
    )
