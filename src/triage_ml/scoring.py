"""Batch scoring: predict tickets and write the predictions back.

Chunks are read by keyset pagination and each chunk is written in its own
transaction, so memory stays flat and a failed chunk leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from triage_ml import features, store


@dataclass
class ScoreSummary:
    """What one scoring run did."""

    model_version: str
    scored: int = 0
    chunks: int = 0
    needs_review: int = 0


def predictions_frame(model: Any, tickets: pd.DataFrame, model_version: str) -> pd.DataFrame:
    """Predict ``tickets`` and shape the rows the predictions table stores."""
    predicted = model.predict(tickets.reset_index(drop=True))
    out = pd.DataFrame(predicted).reset_index(drop=True)
    out.insert(0, "ticket_id", tickets["ticket_id"].to_numpy(dtype=object))
    out["model_version"] = model_version
    out["scored_at"] = pd.Timestamp.now(tz="UTC")
    out["needs_review"] = out["needs_review"].astype(bool)
    return out


def unscored_chunks(engine: Engine, model_version: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Tickets without a prediction by ``model_version``, one chunk at a time."""
    after: str | None = None
    while True:
        with engine.connect() as conn:
            chunk = store.unscored_tickets(conn, model_version, chunk_rows, after)
            if chunk.empty:
                return
            customers = chunk["customer_id"].dropna().astype(str).unique().tolist()
            history = store.customer_contacts(conn, customers)
        after = str(chunk["ticket_id"].iloc[-1])
        yield chunk.assign(repeat_contacts=features.repeat_contacts(chunk, history))


def write_chunk(engine: Engine, predictions: pd.DataFrame) -> int:
    """Store one chunk of predictions atomically; returns rows newly written."""
    with engine.begin() as conn:
        return store.write_predictions(conn, predictions)


def score_store(engine: Engine, model: Any, model_version: str, chunk_rows: int) -> ScoreSummary:
    """Score every ticket the given model version has not scored yet."""
    summary = ScoreSummary(model_version)
    for chunk in unscored_chunks(engine, model_version, chunk_rows):
        predictions = predictions_frame(model, chunk, model_version)
        summary.scored += write_chunk(engine, predictions)
        summary.needs_review += int(predictions["needs_review"].sum())
        summary.chunks += 1
    return summary
