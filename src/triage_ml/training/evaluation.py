"""Evaluate a registered model on a user's labeled file."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from triage_ml import ingest
from triage_ml.errors import InputError
from triage_ml.ingest import contracts
from triage_ml.settings import Settings
from triage_ml.training import metrics

logger = logging.getLogger(__name__)


def read_labeled_file(
    path: Path, mapping: ingest.ColumnMapping, settings: Settings
) -> tuple[pd.DataFrame, int]:
    """Canonical, contract-valid rows of a labeled file and the count of rejected rows."""
    kept, rejected = [], 0
    schema = contracts.load_schema("tickets", settings.priority_levels)
    source = ingest.as_source(path)
    for chunk in ingest.checked_chunks(source, mapping, schema, settings.ingest_chunk_rows):
        kept.append(chunk.valid)
        rejected += len(chunk.rejected)
    frame = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame()
    if frame.empty:
        raise InputError(f"{path} has no valid labeled rows to evaluate")
    return frame, rejected


def ranked_metrics(predicted: pd.DataFrame, frame: pd.DataFrame) -> dict[str, float]:
    """Category figures of the top-ranked known class, as if the model never abstained.

    What the classifier ranks first is kept in ``top3`` when it abstains;
    these figures separate how well it ranks from how often it abstains.
    """
    first = [json.loads(row)[0]["category"] for row in predicted["top3"]]
    ranked = metrics.category_metrics(predicted.assign(category=first), frame["category"])
    return {"macro_f1": ranked["category_macro_f1"], "accuracy": ranked["category_accuracy"]}


def evaluate_file(
    model: Any, path: Path, mapping: ingest.ColumnMapping, settings: Settings
) -> dict[str, Any]:
    """Metrics of ``model`` on ``path``, nested as ``category.*`` and ``priority.*``."""
    frame, rejected = read_labeled_file(path, mapping, settings)
    predicted = pd.DataFrame(model.predict(frame.reset_index(drop=True)))
    flat = metrics.evaluate_predictions(predicted, frame, settings.priority_levels)
    out: dict[str, Any] = {
        "n": len(frame),
        "rejected_rows": rejected,
        "category": {},
        "priority": {},
    }
    for key, value in flat.items():
        group, _, name = key.partition("_")
        if group in ("category", "priority"):
            out[group][name] = value
    if not out["priority"]:
        del out["priority"]
    if flat["category_abstained"] > 0:
        out["category_ranked"] = ranked_metrics(predicted, frame)
    logger.info("evaluated on %d row(s) of %s; %d rejected", len(frame), path, rejected)
    return out
