"""Which tickets a registered version learned from, so the gate judges it only on others.

A shipped model is refitted on every labeled row of its snapshot, so no row
of it is held out any more. Its retraining run therefore keeps the ids of
the tickets it learned from (``TRAINED_IDS_ARTIFACT``), and a later gate
scores it only on test rows outside that list. Versions logged before the
list existed are judged on rows outside their snapshot's ingest batches
(``lineage/batches.json``), which holds every ticket they could have seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

TRAINED_IDS_ARTIFACT = "lineage/trained_ticket_ids.txt"
BATCHES_ARTIFACT = "lineage/batches.json"
# The evaluated model's answers to the held-out test rows (ids, category, confidence): what the
# model answers on tickets it never saw, the monitor's drift reference for those two figures.
HELD_OUT_ANSWERS_ARTIFACT = "lineage/held_out_answers.json"
ANSWER_COLUMNS = ("ticket_id", "category", "category_proba")


@dataclass(frozen=True)
class TrainedOn:
    """What a version learned from: ticket ids, or failing those its snapshot's ingest batches."""

    ticket_ids: frozenset[str] | None = None
    batch_ids: frozenset[str] | None = None

    @property
    def known(self) -> bool:
        """Whether the version's lineage says anything about its training rows."""
        return self.ticket_ids is not None or self.batch_ids is not None

    def unseen(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of ``frame`` the version never trained on (none when its lineage is unknown)."""
        if self.ticket_ids is not None:
            return ~frame["ticket_id"].astype(str).isin(self.ticket_ids).to_numpy()
        if self.batch_ids is not None:
            return ~frame["batch_id"].astype(str).isin(self.batch_ids).to_numpy()
        return np.zeros(len(frame), dtype=bool)


def log_trained_ids(ticket_ids: list[str]) -> None:
    """Keep on the active run the ids of every ticket its shipped model learned from."""
    mlflow.log_text("\n".join(ticket_ids), TRAINED_IDS_ARTIFACT)


def log_held_out_answers(ticket_ids: pd.Series, predictions: pd.DataFrame) -> None:
    """Keep on the active run the evaluated model's answers to the held-out test rows."""
    answers = pd.DataFrame(
        {
            "ticket_id": ticket_ids.astype(str).to_numpy(),
            "category": predictions["category"].astype(str).to_numpy(),
            "category_proba": predictions["category_proba"].astype(float).to_numpy(),
        }
    )
    mlflow.log_table(answers, HELD_OUT_ANSWERS_ARTIFACT)


def held_out_answers(client: MlflowClient, name: str, version: str) -> pd.DataFrame | None:
    """Version ``version``'s answers to its held-out test rows; None for versions without them."""
    run_id = client.get_model_version(name, version).run_id
    if not run_id:
        return None
    try:
        table = mlflow.load_table(HELD_OUT_ANSWERS_ARTIFACT, run_ids=[run_id])
    except (MlflowException, OSError):
        return None
    return table[list(ANSWER_COLUMNS)]


def trained_on(client: MlflowClient, name: str, version: str) -> TrainedOn:
    """What version ``version`` of model ``name`` learned from, read from its run's lineage."""
    run_id = client.get_model_version(name, version).run_id
    if not run_id:
        return TrainedOn()
    ids = _artifact_text(run_id, TRAINED_IDS_ARTIFACT)
    if ids is not None:
        return TrainedOn(ticket_ids=frozenset(filter(None, ids.split("\n"))))
    batches = _artifact_text(run_id, BATCHES_ARTIFACT)
    if batches is not None:
        return TrainedOn(batch_ids=frozenset(json.loads(batches).get("ingest_batches", [])))
    return TrainedOn()


def _artifact_text(run_id: str, path: str) -> str | None:
    try:
        return mlflow.artifacts.load_text(f"runs:/{run_id}/{path}")
    except (MlflowException, OSError):
        return None
