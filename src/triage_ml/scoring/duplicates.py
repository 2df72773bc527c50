"""Duplicate suggestions: for each new ticket, the most similar recent open tickets.

Candidates are the open tickets (see :mod:`triage_ml.store.duplicates`) created
in the ``window_days`` before the ticket, of the same customer or with the same
body; each is kept when the cosine similarity of the two masked texts' character
4-grams reaches the threshold. A whole chunk costs a candidate query per key
list and time group (see :func:`time_groups`), one more for the texts it lacks,
and one sparse product: never a query per ticket.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize
from sqlalchemy.engine import Connection

from triage_ml.settings import DuplicateSettings
from triage_ml.store import duplicates as duplicate_queries
from triage_model import ngrams
from triage_model.features import model_text

NONE = "[]"
# Another customer's ticket is a candidate only for a body of at least this many words: short
# ones ("call me", "help???") are sent alike by unrelated customers (on the synthetic data they
# were every wrong suggestion).
MIN_SHARED_WORDS = 5
# A re-sent ticket shows in its opening; longer texts would cost time and add nothing.
MAX_CHARS = 2000
# Hashed, not fitted: no vocabulary or IDF to keep, and a ticket's similarity to another is
# the same whether the API compares it alone or batch scoring compares it within a chunk
# (an IDF fitted per chunk would make it depend on the chunk's other tickets). 4-grams alone
# were as precise as 3- to 5-grams on the synthetic re-sends, and about a third of the cost.
VECTORIZER = HashingVectorizer(
    analyzer="char_wb",
    ngram_range=(4, 4),
    n_features=2**20,
    alternate_sign=False,
    norm="l2",
    dtype=np.float32,
)
# The same n-grams counted one word at a time (see text_vectors).
_WORD_COUNTS = HashingVectorizer(**{**VECTORIZER.get_params(), "norm": None})
_PREPROCESS = VECTORIZER.build_preprocessor()


@dataclass(frozen=True)
class Tickets:
    """The columns of the tickets compared, as plain lists (pandas per value cost the API more
    than the comparison); ``created_at`` naive UTC, None where unknown."""

    ids: list[str]
    customers: list[str | None]
    created_at: list[datetime | None]
    subjects: list[str | None]
    bodies: list[str | None]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Tickets:
        """The tickets of ``frame`` (``customer_id`` and ``subject`` may be absent)."""
        times = pd.to_datetime(frame["created_at"], utc=True).dt.tz_convert(None)
        return cls(
            ids=[str(v) for v in frame["ticket_id"].tolist()],
            customers=_column(frame, "customer_id"),
            created_at=[None if pd.isna(t) else t.to_pydatetime() for t in times],
            subjects=_column(frame, "subject"),
            bodies=_column(frame, "body"),
        )


def _column(frame: pd.DataFrame, name: str) -> list[str | None]:
    if name not in frame.columns:
        return [None] * len(frame)
    return [None if v is None or v != v else str(v) for v in frame[name].tolist()]


def possible_duplicates(
    conn: Connection, tickets: pd.DataFrame, settings: DuplicateSettings
) -> list[str]:
    """The possible duplicates of each ticket, as one JSON list string per ticket.

    Args:
        conn: the store (the tickets themselves may be stored already: never their own duplicate).
        tickets: rows with ``ticket_id``, ``created_at``, ``customer_id``, ``subject``, ``body``.
        settings: threshold, window, most suggestions, and whether suggestions are on at all.

    Returns:
        ``'[{"ticket_id": "...", "similarity": 0.93, "same_customer": true}, ...]'`` per ticket,
        most similar first, at most ``settings.max_suggestions``; ``'[]'`` when none (and for
        every ticket when ``settings.enabled`` is False, without touching the store).
    """
    if not settings.enabled or tickets.empty:
        return [NONE] * len(tickets)
    given = Tickets.of(tickets)
    window = timedelta(days=settings.window_days)
    found = candidates(conn, given, window)
    pairs = candidate_pairs(given, found, window)
    similarity = pair_similarity(conn, given, pairs)
    return suggestion_lists(pairs, similarity, len(given.ids), settings)


def time_groups(times: Sequence[datetime | None], window: timedelta) -> list[list[int]]:
    """Positions of the known ``times`` in groups spanning at most ``window`` each, in time order.

    A chunk of tickets read in id order may span months: one query over its whole span
    would read every ticket its customers ever sent, where one per group reads only each
    group's window (the API's one ticket, and a chunk of recent tickets, are one group).
    """
    order = sorted((t, i) for i, t in enumerate(times) if t is not None)
    groups: list[list[int]] = []
    start: datetime | None = None
    for moment, position in order:
        if start is None or moment - start > window:
            groups.append([])
            start = moment
        groups[-1].append(position)
    return groups


def candidates(conn: Connection, tickets: Tickets, window: timedelta) -> list[Candidate]:
    """The stored candidates of every ticket with a time (one query per group of
    :func:`time_groups` and key list); a ticket found by its body keeps the body."""
    found: dict[str, Candidate] = {}
    for group in time_groups(tickets.created_at, window):
        first, last = tickets.created_at[group[0]], tickets.created_at[group[-1]]
        assert first is not None and last is not None  # time_groups keeps known times only
        rows = duplicate_queries.duplicate_candidates(
            conn,
            first - window,
            last,
            [c for c in (tickets.customers[i] for i in group) if c is not None],
            [b for b in (tickets.bodies[i] for i in group) if shareable(b)],
        )
        for row in rows:
            if row[0] not in found or row[3] is not None:
                found[row[0]] = row
    return list(found.values())


def shareable(body: str | None) -> bool:
    """Whether another customer's ticket with this very body is a candidate."""
    return body is not None and len(body.split()) >= MIN_SHARED_WORDS


# A candidate as the store gives it: ticket id, customer id, created_at (naive UTC), body or None.
Candidate = tuple[str, str | None, datetime, str | None]


@dataclass(frozen=True)
class Pairs:
    """(ticket, candidate) pairs: the ticket's position, the candidate's id, one customer or not."""

    rows: list[int]
    candidate_ids: list[str]
    same_customer: list[bool]


def candidate_pairs(tickets: Tickets, candidates: Sequence[Candidate], window: timedelta) -> Pairs:
    """(ticket, candidate) pairs of one customer or one body, the candidate in the window before.

    A customer's candidates are kept in time order, so each ticket reads only its window's
    (a frequent customer's months of tickets would otherwise be checked by each of theirs).

    Args:
        tickets: the tickets compared.
        candidates: :func:`~triage_ml.store.duplicates.duplicate_candidates`' rows.
        window: how long before a ticket a candidate may have been created.
    """
    by_customer: defaultdict[str, tuple[list[datetime], list[Candidate]]] = defaultdict(
        lambda: ([], [])
    )
    by_body: defaultdict[str, list[Candidate]] = defaultdict(list)
    # One sort of them all leaves each customer's list in time order.
    for candidate in sorted(candidates, key=itemgetter(2)):
        if candidate[1] is not None:
            times, found = by_customer[candidate[1]]
            times.append(candidate[2])
            found.append(candidate)
        if candidate[3] is not None:
            by_body[candidate[3]].append(candidate)
    pairs = Pairs([], [], [])
    for row, (ticket_id, customer, body, moment) in enumerate(
        zip(tickets.ids, tickets.customers, tickets.bodies, tickets.created_at, strict=True)
    ):
        if moment is None:
            continue
        times, ordered = by_customer.get(customer, ([], [])) if customer is not None else ([], [])
        same = ordered[bisect_left(times, moment - window) : bisect_left(times, moment)]
        alike = by_body.get(body, []) if body is not None else []
        for other, other_customer, created, _ in dict.fromkeys([*same, *alike]):
            if other != ticket_id and moment - window <= created < moment:
                pairs.rows.append(row)
                pairs.candidate_ids.append(str(other))
                pairs.same_customer.append(customer is not None and other_customer == customer)
    return pairs


def text_vectors(frame: pd.DataFrame) -> sparse.csr_matrix:
    """``VECTORIZER.transform`` of each row's masked model text (cut at ``MAX_CHARS``), its
    columns narrowed to the n-grams these texts hold: cosines between its rows are the same.

    ``char_wb`` n-grams never cross a word, so a text's counts are the sum of its words'
    counts: each distinct word of the batch is hashed once and the texts are one sparse
    product, several times faster than the library's per-text analyzer, which scikit-learn
    offers no faster path for (the same cosines: tests/unit/test_duplicate_suggestions.py).
    The narrowing matters as much: scipy's sparse products cost time in proportion to the
    matrices' width (2**20 hashed columns), which made a one-ticket call 25 ms slower.
    """
    texts = [text[:MAX_CHARS] for text in model_text(frame)]
    words, tokens, lengths = ngrams.batch_words(_PREPROCESS, texts)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    per_text = sparse.csr_matrix(
        (np.ones(len(tokens), dtype=np.float32), tokens, offsets), shape=(len(texts), len(words))
    )
    hashed = _WORD_COUNTS.transform(words)
    used, columns = np.unique(hashed.indices, return_inverse=True)
    narrow = sparse.csr_matrix(
        (hashed.data, columns.astype(np.int32), hashed.indptr), shape=(len(words), len(used))
    )
    return normalize(per_text @ narrow, norm="l2", copy=False)


def pair_similarity(conn: Connection, tickets: Tickets, pairs: Pairs) -> np.ndarray:
    """Cosine similarity of each pair's two texts.

    The tickets' texts are at hand; the candidates' that are not are read from the store.
    Each text some pair needs is vectorised once, and no other.
    """
    if not pairs.rows:
        return np.zeros(0, dtype=np.float32)
    rows = list(dict.fromkeys(pairs.rows))
    texts = {tickets.ids[r]: (tickets.subjects[r], tickets.bodies[r]) for r in rows}
    missing = [c for c in dict.fromkeys(pairs.candidate_ids) if c not in texts]
    for ticket_id, subject, body in duplicate_queries.ticket_texts(conn, missing):
        texts[ticket_id] = (subject, body)
    at = {ticket_id: i for i, ticket_id in enumerate(texts)}
    vectors = text_vectors(pd.DataFrame(list(texts.values()), columns=["subject", "body"]))
    left = [at[tickets.ids[row]] for row in pairs.rows]
    right = [at[candidate] for candidate in pairs.candidate_ids]
    # Row-wise dot products of unit vectors: the cosine of each pair.
    products = vectors[left].multiply(vectors[right])
    return np.asarray(products.sum(axis=1)).ravel()


def suggestion_lists(
    pairs: Pairs, similarity: np.ndarray, rows: int, settings: DuplicateSettings
) -> list[str]:
    """One JSON list per ticket position: its pairs at the threshold or above, best first."""
    kept: defaultdict[int, list[tuple[float, str, bool]]] = defaultdict(list)
    for row, candidate, same, value in zip(
        pairs.rows, pairs.candidate_ids, pairs.same_customer, similarity.tolist(), strict=True
    ):
        if value >= settings.threshold:
            kept[row].append((-round(value, 3), candidate, same))
    out = [NONE] * rows
    for row, found in kept.items():
        best = sorted(found)[: settings.max_suggestions]
        out[row] = json.dumps(
            [{"ticket_id": c, "similarity": -v, "same_customer": same} for v, c, same in best]
        )
    return out
