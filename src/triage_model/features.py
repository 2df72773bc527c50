"""Feature assembly shared by training and the served model.

This module travels inside the pyfunc model, so it imports only what the
model's requirements declare (numpy, pandas, vaderSentiment). The models
read ticket text with personal data masked (:func:`model_text`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from triage_model import sentiment
from triage_model.redact import mask_personal_data

META_CATEGORICAL: tuple[str, ...] = ("channel", "customer_tier")
META_NUMERIC: tuple[str, ...] = ("customer_ltv", "repeat_contacts")
REPEAT_WINDOW_DAYS = 30

# Escalation signals are domain patterns, not sentiment: no library ships
# them, and they are kept here as data (a name and the alternatives that
# raise it, regular expressions matched as whole words).
ESCALATION_TERMS: dict[str, str] = {
    "esc_legal": r"lawyer|attorney|legal action|lawsuit|sue|court|chargeback|ombudsman|regulator",
    "esc_outage": (
        r"outage|down|offline|not loading|crash(?:ed|es|ing)?|unavailable|data loss"
        r"|lost (?:all|our) data|breach|hacked"
    ),
    "esc_social": (
        r"twitter|facebook|instagram|linkedin|tiktok|reddit|social media|review sites?"
        r"|trustpilot|post (?:this|about)"
    ),
    "esc_executive": r"ceo|cfo|cto|vp|vice president|executive|board|director|management",
}
ESCALATION_COLUMNS: tuple[str, ...] = tuple(ESCALATION_TERMS)


def _whole_words(alternatives: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{alternatives})\b")


# Matched against lowercased text, which is faster than a case-insensitive search.
_COMPILED = {name: _whole_words(terms) for name, terms in ESCALATION_TERMS.items()}
# Most tickets raise no signal: one search for any of them settles those,
# where one search per signal would cost each of them four.
_ANY_SIGNAL = _whole_words("|".join(ESCALATION_TERMS.values()))


def ticket_text(frame: pd.DataFrame) -> list[str]:
    """Subject and body joined by a newline (either may be missing)."""
    subjects, bodies = _strings(frame, "subject", ""), _strings(frame, "body", "")
    return [f"{subject}\n{body}".strip() for subject, body in zip(subjects, bodies)]


def model_text(frame: pd.DataFrame) -> list[str]:
    """The text every model reads: :func:`ticket_text` with personal data masked.

    Masked at training and at prediction alike, so no fitted vocabulary
    holds an e-mail address, a phone or card number, or a signature's name.
    """
    return [mask_personal_data(text) for text in ticket_text(frame)]


def _strings(frame: pd.DataFrame, column: str, missing: str) -> list[str]:
    """A column as strings, ``missing`` where the value or the whole column is absent.

    Plain Python when every value is a string or null, as in every request
    to the scoring server: on a one-ticket frame each pandas call costs
    about as much as a vectoriser. Other values take pandas' own conversion.
    """
    if column not in frame.columns:
        return [missing] * len(frame)
    values = frame[column].tolist()
    if all(
        isinstance(v, str) or v is None or (isinstance(v, float) and math.isnan(v)) for v in values
    ):
        return [v if isinstance(v, str) else missing for v in values]
    series = pd.Series(values, dtype=object)
    return series.where(series.notna(), missing).astype(str).tolist()


def sentiment_scores(texts: Sequence[str], max_chars: int = 2000) -> np.ndarray:
    """VADER compound sentiment in [-1, 1] for each text.

    Long texts are cut at ``max_chars``: the opening carries the tone, and the
    analyzer's cost grows with length.
    """
    return np.array([sentiment.compound(t[:max_chars]) for t in texts], dtype=float)


def escalation_flags(texts: Sequence[str]) -> pd.DataFrame:
    """One 0/1 column per escalation signal."""
    return pd.DataFrame(_escalation_columns(texts))


def _escalation_columns(texts: Sequence[str]) -> dict[str, list[float]]:
    columns = {name: [0.0] * len(texts) for name in _COMPILED}
    for row, text in enumerate(t.lower() for t in texts):
        if _ANY_SIGNAL.search(text):
            for name, pattern in _COMPILED.items():
                if pattern.search(text):
                    columns[name][row] = 1.0
    return columns


def meta_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Customer metadata with neutral values where the data has none."""
    return pd.DataFrame(_meta_columns(frame))


def _meta_columns(frame: pd.DataFrame) -> dict[str, Any]:
    numeric = {
        column: pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        if column in frame.columns
        else np.full(len(frame), np.nan)
        for column in META_NUMERIC
    }
    return {
        **{column: _strings(frame, column, "unknown") for column in META_CATEGORICAL},
        **numeric,
    }


def repeat_contacts(
    tickets: pd.DataFrame, contacts: pd.DataFrame, window_days: int = REPEAT_WINDOW_DAYS
) -> np.ndarray:
    """For each ticket, how many tickets its customer opened in the ``window_days`` before it.

    ``contacts`` holds ``ticket_id``, ``customer_id`` and ``created_at`` of the
    customer history (the ticket itself may be among them; it is not counted).
    NaN where the ticket has no customer or no time, so a model treats it as
    unknown rather than as a first contact. Scoring has the store count the
    same (:func:`triage_ml.store.repeat_contacts_column`); a test holds the two equal.
    """
    events = pd.concat(
        [
            contacts[["ticket_id", "customer_id", "created_at"]],
            tickets[["ticket_id", "customer_id", "created_at"]],
        ]
    ).drop_duplicates("ticket_id")
    events = events[events["customer_id"].notna() & events["created_at"].notna()]
    codes = {c: i for i, c in enumerate(pd.unique(events["customer_id"].astype(str)))}
    # One sorted int64 key per event, customer first, then time in seconds:
    # two binary searches per ticket count its customer's earlier contacts.
    span = np.int64(2**34)  # seconds: beyond year 2500
    keys = np.sort(_customer_codes(events, codes) * span + _seconds(events["created_at"]))
    known = tickets["customer_id"].notna().to_numpy() & tickets["created_at"].notna().to_numpy()
    out = np.full(len(tickets), np.nan)
    query = _customer_codes(tickets[known], codes) * span + _seconds(
        tickets.loc[known, "created_at"]
    )
    out[known] = np.searchsorted(keys, query, side="left") - np.searchsorted(
        keys, query - window_days * 86_400, side="left"
    )
    return out


def _customer_codes(frame: pd.DataFrame, codes: dict[str, int]) -> np.ndarray:
    return frame["customer_id"].astype(str).map(codes).to_numpy(dtype=np.int64)


def _seconds(values: pd.Series) -> np.ndarray:
    naive = pd.to_datetime(values, utc=True).dt.tz_convert(None).to_numpy()
    return naive.astype("datetime64[s]").astype(np.int64)


def model_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """Everything the category and priority pipelines read, from raw tickets."""
    return pd.DataFrame(input_columns(frame))


def input_columns(frame: pd.DataFrame) -> dict[str, Any]:
    """The columns of :func:`model_inputs`, by name, in row order (the index is ignored).

    The served model reads these directly: on one ticket, building the frame
    costs about as much as the vectorisers.
    """
    texts = model_text(frame)
    return {
        "text": texts,
        **_meta_columns(frame),
        "sentiment": sentiment_scores(texts),
        **_escalation_columns(texts),
    }
