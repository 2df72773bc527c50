"""A feedback row's provenance: which model answer it judges, and where its label came from.

A row may name the ``model_version`` whose answer it judges; a version that
never answered that ticket (no served or shadow prediction) is a mistake, and
the row is quarantined. A row without ``label_source`` gets one: an agent who
gave back exactly the served answer confirmed it ("agent-confirmed"), any
other label is a correction ("agent-corrected"). The served answer is the
named version's when it served the ticket, else the newest one served.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection

from triage_ml.ingest.chain import rejection
from triage_ml.store import review as review_queries
from triage_ml.store.tables import CONFIRMED, CORRECTED, predictions, shadow_predictions


def check_provenance(
    conn: Connection,
    raw: pd.DataFrame,
    valid: pd.DataFrame,
    rejected: list[dict[str, Any]],
    offset: int,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Quarantine rows naming an unknown model version; derive the missing label sources.

    Returns:
        The rows kept, with ``label_source`` set on each, and the quarantine
        records so far.
    """
    ids = valid["ticket_id"].unique().tolist()
    served = review_queries.answers(conn, predictions, ids)
    shadow = review_queries.answers(conn, shadow_predictions, ids)
    unknown = _unknown_versions(valid, pd.concat([served, shadow], ignore_index=True))
    rejected = rejected + [
        rejection(
            raw,
            i,
            offset,
            [
                f"model_version: unknown model version '{valid.at[i, 'model_version']}' "
                f"(it has no prediction of ticket '{valid.at[i, 'ticket_id']}')"
            ],
        )
        for i in valid.index[unknown]
    ]
    kept = valid[~unknown]
    return kept.assign(label_source=derived_sources(kept, served)), rejected


def _unknown_versions(valid: pd.DataFrame, answered: pd.DataFrame) -> pd.Series:
    pairs = set(zip(answered["ticket_id"].astype(str), answered["model_version"].astype(str)))
    named = valid["model_version"].notna()
    return named & pd.Series(
        [(t, str(v)) not in pairs for t, v in zip(valid["ticket_id"], valid["model_version"])],
        index=valid.index,
    )


def served_answer(rows: pd.DataFrame, served: pd.DataFrame) -> list[tuple[Any, Any] | None]:
    """The served answer each row judges, as (category, priority), or None when none was served.

    The row's ``model_version`` when that version served the ticket, else the
    newest answer served to it.
    """
    ordered = served.sort_values("scored_at")
    answer = list(zip(ordered["category"], ordered["priority"]))
    by_pair = dict(zip(zip(ordered["ticket_id"], ordered["model_version"].astype(str)), answer))
    newest = dict(zip(ordered["ticket_id"], answer))  # later rows overwrite: the newest stays
    return [
        by_pair.get((ticket, str(version))) or newest.get(ticket)
        for ticket, version in zip(rows["ticket_id"], rows["model_version"])
    ]


def _repeats(given: Any, answered: Any) -> bool:
    # A field the row leaves blank says nothing; one it sets must repeat the answer.
    return bool(pd.isna(given)) or (not pd.isna(answered) and str(given) == str(answered))


def derived_sources(rows: pd.DataFrame, served: pd.DataFrame) -> pd.Series:
    """Each row's label source: as given, else confirmed or corrected (see the module's rule)."""
    derived = [
        CONFIRMED
        if answer is not None and _repeats(category, answer[0]) and _repeats(priority, answer[1])
        else CORRECTED
        for answer, category, priority in zip(
            served_answer(rows, served), rows["corrected_category"], rows["corrected_priority"]
        )
    ]
    given = rows["label_source"].astype(object)
    return given.where(given.notna(), pd.Series(derived, index=rows.index, dtype=object))
