"""Batch scoring: predict tickets and write the predictions back.

Chunks are read by keyset pagination and each chunk is written in its own
transaction, so memory stays flat and a failed chunk leaves nothing behind.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection, Engine

from triage_ml import store
from triage_ml.monitoring import tiers
from triage_ml.scoring import duplicates
from triage_ml.settings import DuplicateSettings
from triage_ml.store import shadow as shadow_queries
from triage_ml.store import thresholds as threshold_queries
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
    # Tickets the shadow challenger answered (stored apart, never returned), and its failed chunks.
    shadow_scored: int = 0
    shadow_failed: int = 0
    # The champion's predictions per tier (auto, suggest, review).
    tiers: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ShadowModel:
    """A shadow challenger: its loaded model and version (see ``monitoring.shadow``)."""

    model: Any
    version: str


# Every answer the predictions table keeps (the model's, and the store's duplicate suggestions).
ANSWER_COLUMNS: tuple[str, ...] = tuple(
    column.name
    for column in store.predictions.columns
    if column.name not in ("ticket_id", "model_version", "scored_at")
)
DUPLICATES = "possible_duplicates"


def predictions_frame(
    model: Any,
    tickets: pd.DataFrame,
    model_version: str,
    thresholds: Mapping[str, Mapping[str, float | None]] | None = None,
) -> pd.DataFrame:
    """Predict ``tickets`` and shape the rows the predictions table stores.

    The model's answers come in its own order, then the table's answers it
    does not give (a model logged before them) as nulls, ``possible_duplicates``
    null too (the caller asks the store: :func:`with_duplicates`). With ``thresholds``
    (live tier thresholds of ``model_version``), the classes they name take their
    tiers from them instead of the model's own.
    """
    inputs = input_frame(tickets).reset_index(drop=True)
    predicted = tiers.with_tier(pd.DataFrame(model.predict(inputs)))
    if thresholds:
        languages = features.signal_setting(served_config(model), "languages")
        predicted = tiers.apply_thresholds(predicted, thresholds, languages)
    kept = [c for c in predicted.columns if c in ANSWER_COLUMNS]
    out = predicted[kept].reset_index(drop=True)
    for column in ANSWER_COLUMNS:
        if column not in out.columns:
            out[column] = pd.Series([None] * len(out), dtype=object)
    out.insert(0, "ticket_id", tickets["ticket_id"].to_numpy(dtype=object))
    out["model_version"] = model_version
    out["scored_at"] = pd.Timestamp.now(tz="UTC")
    out["needs_review"] = out["needs_review"].astype(bool)
    return out


def served_config(model: Any) -> Mapping[str, Any]:
    """The config of the model being served: a predictor's own, or the one a loaded pyfunc wraps."""
    if hasattr(model, "config"):
        return model.config
    unwrap = getattr(model, "unwrap_python_model", None)
    predictor = getattr(unwrap(), "predictor", None) if unwrap is not None else None
    return getattr(predictor, "config", None) or {}


def with_duplicates(
    conn: Connection, predictions: pd.DataFrame, tickets: pd.DataFrame, settings: DuplicateSettings
) -> pd.DataFrame:
    """``predictions`` of ``tickets`` (row for row) with their ``possible_duplicates`` filled in.

    See :func:`triage_ml.scoring.duplicates.possible_duplicates`.
    """
    found = duplicates.possible_duplicates(conn, tickets, settings)
    return predictions.assign(**{DUPLICATES: found})


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
    shadow: ShadowModel | None = None,
    duplicate_settings: DuplicateSettings | None = None,
) -> ScoreSummary:
    """Score the unscored tickets of one key range, chunk by chunk, each chunk written atomically.

    Without ``rescore`` a ticket any model version has scored is left alone;
    with it, every ticket ``model_version`` has not scored is scored. With a
    ``shadow`` challenger, each chunk is also scored by it into ``shadow_predictions``
    (without duplicate suggestions). With ``duplicate_settings`` each prediction carries
    its ``possible_duplicates``; without, they stay null.
    """
    summary = ScoreSummary(model_version)
    live = live_thresholds(engine, model_version)
    for chunk in unscored_chunks(engine, model_version if rescore else None, chunk_rows, key_range):
        predictions = predictions_frame(model, chunk, model_version, live)
        if duplicate_settings is not None:
            with engine.connect() as conn:
                predictions = with_duplicates(conn, predictions, chunk, duplicate_settings)
        summary.scored += write_chunk(engine, predictions)
        summary.needs_review += int(predictions["needs_review"].sum())
        summary.tiers = dict(Counter(summary.tiers) + Counter(predictions["tier"].tolist()))
        summary.chunks += 1
        if shadow is not None:
            answered = score_shadow(engine, shadow, chunk)
            summary.shadow_scored += max(answered, 0)
            summary.shadow_failed += int(answered < 0)
    logger.info(
        "scored %d tickets of key range %s in %d chunk(s); %d need review",
        summary.scored,
        key_range,
        summary.chunks,
        summary.needs_review,
    )
    return summary


def score_shadow(engine: Engine, shadow: ShadowModel, chunk: pd.DataFrame) -> int:
    """Score a chunk with the shadow challenger into ``shadow_predictions``, in its own transaction.

    Returns:
        The rows newly written, or -1 when the challenger failed on the chunk.
    """
    try:
        live = live_thresholds(engine, shadow.version)
        frame = predictions_frame(shadow.model, chunk, shadow.version, live)
        with engine.begin() as conn:
            return shadow_queries.write_shadow_predictions(conn, frame)
    except Exception as exc:
        # The parallel run must never stop the champion's scoring; the type alone is
        # logged, as an error's message may quote a ticket.
        logger.warning(
            "shadow challenger version %s failed on a chunk (%s); the champion's answers stand",
            shadow.version,
            type(exc).__name__,
        )
        return -1


def live_thresholds(engine: Engine, model_version: str) -> dict[str, Any] | None:
    """The tier thresholds the monitor re-estimated on live rows for ``model_version``, if any."""
    with engine.connect() as conn:
        return threshold_queries.latest_thresholds(conn, model_version, threshold_queries.LIVE)


def combine(summaries: list[ScoreSummary], model_version: str) -> ScoreSummary:
    """One summary for the partitions of a run."""
    return ScoreSummary(
        model_version,
        sum(s.scored for s in summaries),
        sum(s.chunks for s in summaries),
        sum(s.needs_review for s in summaries),
        sum(s.shadow_scored for s in summaries),
        sum(s.shadow_failed for s in summaries),
        tiers=dict(sum((Counter(s.tiers) for s in summaries), Counter())),
    )
