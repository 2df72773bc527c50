"""A review queue that teaches the most: which waiting tickets an agent should label first.

The candidates are scored tickets that no person has labeled yet (an
auto-applied label counts as none: nobody looked, and training leaves it
out). Each gets three signals:

- uncertainty: ``1 - category_proba`` of the served (champion) answer;
- disagreement: 1 when the shadow challenger answered the ticket with another
  category, else 0;
- novelty: the share of the ticket's words outside the vocabulary of the
  labeled tickets (what the champion, and the next retraining, learn from).

Signals on different scales are combined by rank: a ticket's priority is the
sum of its three percentile ranks among the candidates (each 0..1, ties
sharing their average rank), so no signal's units dominate and a signal that
is the same for every ticket (no challenger) changes nothing. Ties go to the
more uncertain ticket, then to the ticket id.

The export is a feedback file: filled in by agents, it goes back through
``triage-ml ingest feedback`` as it is (extra columns are ignored there).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer
from sqlalchemy.engine import Engine

from triage_ml.errors import InputError
from triage_ml.ingest.mapping import FEEDBACK_PROVENANCE_COLUMNS
from triage_ml.ingest.quarantine import escape_cell, write_csv_whole
from triage_ml.store import review as review_queries
from triage_ml.store.tables import shadow_predictions

logger = logging.getLogger(__name__)

# The feedback file's columns, in `ingest feedback`'s order; the agent fills all but the
# ticket id and the model version (the version whose answer the label judges).
FEEDBACK_FILE_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "corrected_category",
    "corrected_priority",
    "agent_id",
    "corrected_at",
    *FEEDBACK_PROVENANCE_COLUMNS,
)
CONTEXT_COLUMNS: tuple[str, ...] = (
    "predicted_category",
    "predicted_priority",
    "confidence",
    "challenger_category",
    "why",
    "subject",
    "body",
)
SIGNALS: tuple[str, ...] = ("uncertainty", "disagreement", "novelty")
# The vocabulary is learned from at most this many labeled tickets (the newest).
VOCABULARY_ROWS = 50_000


@dataclass(frozen=True)
class ReviewQueue:
    """The chosen tickets, best first, and how many waited.

    Attributes:
        rows: one row per chosen ticket: ticket id, served answer, signals, ``score``, ``why``.
        waiting: scored tickets without a person's label (the candidates).
        with_challenger: candidates a shadow challenger answered too.
    """

    rows: pd.DataFrame
    waiting: int
    with_challenger: int


def texts(frame: pd.DataFrame) -> list[str]:
    """Subject and body together: what the model reads."""
    subject = frame["subject"].fillna("").astype(str)
    return (subject + " " + frame["body"].fillna("").astype(str)).tolist()


def vocabulary(labeled: list[str]) -> set[str]:
    """The words of labeled tickets, as scikit-learn's CountVectorizer tokenizes them."""
    try:
        return set(CountVectorizer().fit(labeled).vocabulary_)
    except ValueError:  # no labeled text, or no token in it: every word is new
        return set()


def novelty(candidates: list[str], known: set[str]) -> np.ndarray:
    """Per text, the share of its words outside ``known`` (0 for a text without words)."""
    analyze = CountVectorizer().build_analyzer()
    out = np.zeros(len(candidates))
    for i, text in enumerate(candidates):
        words = analyze(text)
        if words:
            out[i] = sum(word not in known for word in words) / len(words)
    return out


def newest(answers: pd.DataFrame) -> pd.DataFrame:
    """Each ticket's newest answer (the one agents see), indexed by ticket id."""
    ordered = answers.sort_values(["scored_at", "model_version"], kind="stable")
    return ordered.drop_duplicates("ticket_id", keep="last").set_index("ticket_id")


def signals(served: pd.DataFrame, challenger: pd.DataFrame, known: set[str]) -> pd.DataFrame:
    """The three signals and the combined ``score`` of each waiting ticket.

    Args:
        served: newest served answer per ticket (:func:`newest`), with ``subject`` and ``body``.
        challenger: newest shadow answer per ticket (may be empty).
        known: the labeled tickets' vocabulary.
    """
    out = served.copy()
    out["challenger_category"] = out.index.map(challenger["category"]) if len(challenger) else None
    proba = pd.to_numeric(out["category_proba"], errors="coerce")
    out["uncertainty"] = (1.0 - proba).fillna(1.0)
    answered = out["challenger_category"].notna()
    out["disagreement"] = (answered & (out["challenger_category"] != out["category"])).astype(float)
    out["novelty"] = novelty(texts(out), known)
    ranks = [out[name].rank(pct=True, method="average") for name in SIGNALS]
    out["score"] = sum(ranks)
    return out


def why(row: pd.Series) -> str:
    """Why a ticket is in the queue, in words an agent reads (no ticket text)."""
    parts = [f"confidence {1 - row['uncertainty']:.2f}"]
    if row["disagreement"]:
        parts.append(f"challenger says {row['challenger_category']}")
    if row["novelty"] > 0:
        parts.append(f"{row['novelty']:.0%} of its words unseen in labeled tickets")
    return "; ".join(parts)


def choose(scored: pd.DataFrame, budget: int) -> pd.DataFrame:
    """The ``budget`` best tickets by score (ties: more uncertain first, then ticket id)."""
    ordered = scored.rename_axis("ticket_id").reset_index()
    ordered = ordered.sort_values(
        ["score", "uncertainty", "ticket_id"], ascending=[False, False, True], kind="stable"
    )
    chosen = ordered.head(budget).reset_index(drop=True)
    return chosen.assign(why=[why(row) for _, row in chosen.iterrows()])


def build_queue(engine: Engine, budget: int) -> ReviewQueue:
    """The ``budget`` waiting tickets whose labels would teach the model most.

    Raises:
        InputError: ``budget`` is below 1, or no scored ticket waits for a label.
    """
    if budget < 1:
        raise InputError(f"budget must be at least 1 ticket (got {budget})")
    with engine.connect() as conn:
        waiting = review_queries.waiting_answers(conn)
        if waiting.empty:
            raise InputError(
                "no scored ticket waits for a label: score new tickets first (`triage-ml score`)"
            )
        served = newest(waiting)
        shadow = review_queries.answers(conn, shadow_predictions, served.index.tolist())
        labeled = review_queries.labeled_texts(conn, VOCABULARY_ROWS)
    challenger = newest(shadow) if len(shadow) else shadow
    scored = signals(served, challenger, vocabulary(texts(labeled)))
    queue = ReviewQueue(
        rows=choose(scored, budget),
        waiting=len(served),
        with_challenger=int(scored["challenger_category"].notna().sum()),
    )
    logger.info(
        "review queue: %d of %d waiting tickets chosen (%d answered by a challenger)",
        len(queue.rows),
        queue.waiting,
        queue.with_challenger,
    )
    return queue


def feedback_file(rows: pd.DataFrame) -> pd.DataFrame:
    """The queue as a feedback file: blank label columns for the agent, then the context."""
    out = pd.DataFrame(dict.fromkeys(FEEDBACK_FILE_COLUMNS, ""), index=rows.index)
    out["ticket_id"] = rows["ticket_id"]
    out["model_version"] = rows["model_version"].astype(str)
    context = pd.DataFrame(
        {
            "predicted_category": rows["category"],
            "predicted_priority": rows["priority"],
            "confidence": (1 - rows["uncertainty"]).round(4),
            "challenger_category": rows["challenger_category"],
            "why": rows["why"],
            "subject": rows["subject"],
            "body": rows["body"],
        }
    )
    # A spreadsheet would run a cell starting with "=" as a formula; ingest never reads these.
    return pd.concat([out, context.map(escape_cell)], axis=1)


def export(rows: pd.DataFrame, out: Path) -> int:
    """Write the queue to ``out`` as CSV, whole or not at all; returns the rows written.

    Raises:
        InputError: ``out``'s folder is missing, ``out`` is a folder, or it cannot be written.
    """
    write_csv_whole(feedback_file(rows), out)
    return len(rows)
