"""Feature assembly shared by training and the served model.

This module travels inside the pyfunc model, so it imports only what the
model's requirements declare (numpy, pandas, vaderSentiment).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

META_CATEGORICAL: tuple[str, ...] = ("channel", "customer_tier")
META_NUMERIC: tuple[str, ...] = ("customer_ltv",)

# Escalation signals are domain patterns, not sentiment: no library ships
# them, and they are kept here as data (a name and a regular expression).
ESCALATION_PATTERNS: dict[str, str] = {
    "esc_legal": r"\b(lawyer|attorney|legal action|lawsuit|sue|court|chargeback|ombudsman|regulator)\b",
    "esc_outage": r"\b(outage|down|offline|not loading|crash(?:ed|es|ing)?|unavailable|data loss|lost (?:all|our) data|breach|hacked)\b",
    "esc_social": r"\b(twitter|facebook|instagram|linkedin|tiktok|reddit|social media|review sites?|trustpilot|post (?:this|about))\b",
    "esc_executive": r"\b(ceo|cfo|cto|vp|vice president|executive|board|director|management)\b",
}
ESCALATION_COLUMNS: tuple[str, ...] = tuple(ESCALATION_PATTERNS)
_COMPILED = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in ESCALATION_PATTERNS.items()}


def ticket_text(frame: pd.DataFrame) -> list[str]:
    """Subject and body joined by a newline (either may be missing)."""
    subject = frame["subject"] if "subject" in frame.columns else pd.Series("", index=frame.index)
    body = frame["body"] if "body" in frame.columns else pd.Series("", index=frame.index)
    subject = subject.astype(object).where(subject.notna(), "").astype(str)
    body = body.astype(object).where(body.notna(), "").astype(str)
    return (subject + "\n" + body).str.strip().tolist()


@lru_cache(maxsize=1)
def _analyzer():  # type: ignore[no-untyped-def]
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_scores(texts: Sequence[str], max_chars: int = 2000) -> np.ndarray:
    """VADER compound sentiment in [-1, 1] for each text.

    Long texts are cut at ``max_chars``: the opening carries the tone, and the
    analyzer's cost grows with length.
    """
    analyzer = _analyzer()
    return np.array([analyzer.polarity_scores(t[:max_chars])["compound"] for t in texts], dtype=float)


def escalation_flags(texts: Sequence[str]) -> pd.DataFrame:
    """One 0/1 column per escalation signal."""
    return pd.DataFrame(
        {name: [1.0 if pattern.search(t) else 0.0 for t in texts] for name, pattern in _COMPILED.items()}
    )


def meta_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Customer metadata with neutral values where the data has none."""
    out = pd.DataFrame(index=range(len(frame)))
    for column in META_CATEGORICAL:
        values = frame[column] if column in frame.columns else pd.Series([None] * len(frame))
        out[column] = values.astype(object).where(values.notna(), "unknown").astype(str).to_numpy()
    for column in META_NUMERIC:
        values = frame[column] if column in frame.columns else pd.Series([np.nan] * len(frame))
        out[column] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return out


def model_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """Everything the category and priority pipelines read, from raw tickets."""
    texts = ticket_text(frame)
    out = meta_frame(frame)
    out.insert(0, "text", texts)
    out["sentiment"] = sentiment_scores(texts)
    return pd.concat([out, escalation_flags(texts)], axis=1)
