"""Feature assembly shared by training and the served model.

This module travels inside the pyfunc model, so it imports only what the
model's requirements declare (numpy, pandas, vaderSentiment, py3langid, gersent). The models
read ticket text with personal data masked (:func:`model_text`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from triage_model import escalation, language, sentiment
from triage_model.redact import mask_personal_data

META_CATEGORICAL: tuple[str, ...] = ("channel", "customer_tier")
META_NUMERIC: tuple[str, ...] = ("customer_ltv", "repeat_contacts")
REPEAT_WINDOW_DAYS = 30

ESCALATION_COLUMNS: tuple[str, ...] = escalation.FLAG_COLUMNS

# A model config's signal keys (set at training from the platform's SignalSettings; a test
# holds the two equal) and the values a config without them, logged before issue 27, reads.
SIGNAL_DEFAULTS: dict[str, Any] = {
    "languages": ["en", "de"],
    "detect_languages": ["en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "da", "tr", "ru"],
    "language_routes": {},
    "unsupported_route": "translation-queue",
    "negative_sentiment": -0.5,
    "escalation_terms": escalation.LEGACY_ESCALATION_TERMS,
    "escalation_priority": {},
    "repeat_contacts": 5,
    "priority_weights": {"model": 0.6, "value": 0.25, "sentiment": 0.15},
    "ltv_quantiles": [],
}


def signal_setting(config: Mapping[str, Any] | None, key: str) -> Any:
    """A signal key of a model config, or its default where the config has none.

    A config with no escalation terms at all reads the legacy ones too: a model
    never runs without the signals it was trained to read.
    """
    value = (config or {}).get(key)
    if value is None or (key == "escalation_terms" and not value):
        return SIGNAL_DEFAULTS[key]
    return value


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


def sentiment_scores(texts: Sequence[str], max_chars: int = sentiment.MAX_CHARS) -> np.ndarray:
    """VADER compound sentiment in [-1, 1] for each text, whatever its language.

    The English analyzer alone, as models before issue 27 read it; the model
    inputs now score each text by its language (:func:`sentiment.scores`).
    Long texts are cut at ``max_chars``.
    """
    return np.array([sentiment.compound(t[:max_chars]) for t in texts], dtype=float)


def escalation_flags(
    texts: Sequence[str], terms: Mapping[str, Sequence[str]] | None = None
) -> pd.DataFrame:
    """One 0/1 column per escalation signal (by default the legacy English terms)."""
    return pd.DataFrame(escalation.flag_columns(texts, terms or escalation.LEGACY_ESCALATION_TERMS))


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


def model_inputs(frame: pd.DataFrame, config: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Everything the pipelines read, from raw tickets, under a model config's signal keys."""
    return pd.DataFrame(input_columns(frame, config))


def input_columns(frame: pd.DataFrame, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The columns of :func:`model_inputs`, by name, in row order (the index is ignored).

    The served model reads these directly: on one ticket, building the frame
    costs about as much as the vectorisers. ``language`` is detected from the
    text (a ticket's own ``language`` field is not trusted: the realistic
    sample's is wrong on 9% of rows); ``sentiment`` is scored by the analyzer
    of that language (NaN where none covers it).

    Args:
        frame: Raw tickets.
        config: The model config (``detect_languages``, ``escalation_terms``);
            None or missing keys read :data:`SIGNAL_DEFAULTS`.
    """
    texts = model_text(frame)
    languages, _ = language.detect(texts, signal_setting(config, "detect_languages"))
    scores, _ = sentiment.scores(texts, languages)
    return {
        "text": texts,
        **_meta_columns(frame),
        "language": languages,
        "sentiment": scores,
        **escalation.flag_columns(texts, signal_setting(config, "escalation_terms")),
    }
