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
from triage_model.predictor import input_frame

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


def known_categories(model: Any) -> set[str] | None:
    """The categories ``model`` can predict, or None when it does not say.

    A registered model is MLflow's pyfunc wrapper around a
    :class:`~triage_model.predictor.TriagePredictor`; ``unwrap_python_model`` is
    MLflow's public way in. Anything else with a ``classes`` attribute works too.
    """
    inner = model
    unwrap = getattr(model, "unwrap_python_model", None)
    if unwrap is not None:
        try:
            inner = getattr(unwrap(), "predictor", None)
        except Exception:  # not a Python model: nothing to read the classes from
            return None
    classes = getattr(inner, "classes", None)
    return None if classes is None else {str(c) for c in classes}


def unknown_label_warnings(labels: pd.Series, known: set[str] | None) -> list[str]:
    """One warning naming the file's labels the model cannot predict, with their row counts."""
    if known is None:
        return []
    counts = labels.astype(str)[~labels.astype(str).isin(known)].value_counts()
    if counts.empty:
        return []
    listed = ", ".join(f"{label} ({n})" for label, n in counts.sort_index().items())
    if len(counts) == labels.astype(str).nunique():
        return [
            f"none of the file's category labels is known to the model: {listed}; "
            "every prediction counts as wrong, so the category metrics are 0 "
            f"(the model knows: {', '.join(sorted(known))})"
        ]
    return [
        f"{int(counts.sum())} of {len(labels)} rows have a category label the model does not "
        f"know, counted as wrong: {listed}"
    ]


def split_trained(
    frame: pd.DataFrame, trained_ids: frozenset[str] | None
) -> tuple[pd.DataFrame, int, list[str]]:
    """The rows to score, how many of ``frame``'s rows the model trained on, and a warning.

    Rows a model learned from flatter it, so only the unseen rows are scored; a
    file the model learned entirely is scored whole, with a warning saying so.
    """
    if not trained_ids:
        return frame, 0, []
    seen = frame["ticket_id"].astype(str).isin(trained_ids).to_numpy()
    n_seen = int(seen.sum())
    if n_seen == 0:
        return frame, 0, []
    if n_seen == len(frame):
        return (
            frame,
            n_seen,
            [
                f"the model trained on all {n_seen} rows of the file: these metrics describe "
                "its training data and overstate how it does on new tickets"
            ],
        )
    return (
        frame[~seen].reset_index(drop=True),
        n_seen,
        [
            f"the model trained on {n_seen} of the file's {len(frame)} rows: "
            f"scored only the {len(frame) - n_seen} it never saw"
        ],
    )


def grouped(flat: dict[str, float]) -> dict[str, dict[str, float]]:
    """Flat ``category_*`` and ``priority_*`` metrics nested by their group."""
    out: dict[str, dict[str, float]] = {"category": {}, "priority": {}}
    for key, value in flat.items():
        group, _, name = key.partition("_")
        if group in out:
            out[group][name] = value
    return out


def evaluate_file(
    model: Any,
    path: Path,
    mapping: ingest.ColumnMapping,
    settings: Settings,
    trained_ids: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Metrics of ``model`` on ``path``, nested as ``category.*`` and ``priority.*``.

    Args:
        model: the loaded model (MLflow pyfunc or anything with ``predict``).
        path: a labeled CSV or Parquet file.
        mapping: how the file's columns map to the ticket fields.
        settings: the priority levels and chunk size.
        trained_ids: the ticket ids the model learned from (its run's lineage), if known.

    Returns:
        Row counts, the metrics, and ``warnings``: unknown labels, rows the model trained on.
    """
    frame, rejected = read_labeled_file(path, mapping, settings)
    scored, n_trained, warnings = split_trained(frame, trained_ids)
    # Only the model's inputs: labels and ids would make MLflow warn of "extra inputs".
    predicted = pd.DataFrame(model.predict(input_frame(scored.reset_index(drop=True))))
    flat = metrics.evaluate_predictions(predicted, scored, settings.priority_levels)
    out: dict[str, Any] = {
        "n": len(scored),
        "rejected_rows": rejected,
        "trained_rows": n_trained,
        **grouped(flat),
    }
    if not out["priority"]:
        del out["priority"]
    if flat["category_abstained"] > 0:
        out["category_ranked"] = ranked_metrics(predicted, scored)
    out["warnings"] = unknown_label_warnings(scored["category"], known_categories(model)) + warnings
    logger.info("evaluated on %d row(s) of %s; %d rejected", len(scored), path, rejected)
    return out
