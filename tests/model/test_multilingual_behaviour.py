"""Behaviour in English and German: language, sentiment and escalation answers of a trained model.

The trained predictor of the session (tests/model/conftest.py) answers under
the signal config a retraining gives it (``training.signals.signal_config``):
the shipped English and German escalation terms. The sentiment suites are
hand-written ticket sentences (tests/model/data/sentiment_{en,de}.csv): the
fallback the issue allows where no labelled ticket set ships offline.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from triage_ml.settings import Settings
from triage_ml.training import dataset, signals
from triage_model import sentiment
from triage_model.predictor import TriagePredictor

pytestmark = pytest.mark.model

DATA = Path(__file__).parent / "data"
# The target for the direction of sentiment on non-neutral rows.
MIN_AGREEMENT = 0.80


@pytest.fixture(scope="module")
def model(trained: TriagePredictor, split: dataset.Split) -> TriagePredictor:
    """The session's predictor with the signal config a retraining writes."""
    config = {**trained.config, **signals.signal_config(Settings(), split.train)}
    return dataclasses.replace(trained, config=config)


def ticket(subject: str, body: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject": [subject],
            "body": [body],
            "channel": ["email"],
            "customer_tier": ["standard"],
            "customer_ltv": [600.0],
        }
    )


def test_a_german_legal_threat_is_flagged_as_legal(model: TriagePredictor) -> None:
    out = model.predict(
        ticket("Doppelte Abbuchung", "Ich werde meinen Anwalt einschalten und Sie verklagen.")
    )
    assert out.loc[0, "language"] == "de"
    assert "legal" in json.loads(out.loc[0, "escalation"])
    assert out.loc[0, "tier"] != "auto"


def test_a_german_complaint_scores_negative(model: TriagePredictor) -> None:
    out = model.predict(
        ticket(
            "Beschwerde",
            "Sehr geehrte Damen und Herren,\n\nich bin sehr enttäuscht. Die Lieferung ist"
            " beschädigt angekommen und Ihr Kundenservice ist eine Katastrophe.\n\n"
            "Mit freundlichen Grüßen\nErika Musterfrau",
        )
    )
    assert out.loc[0, "language"] == "de"
    assert out.loc[0, "sentiment"] < 0
    assert out.loc[0, "sentiment_reason"] is None


def test_an_english_ticket_with_a_german_signature_is_still_english(
    model: TriagePredictor,
) -> None:
    out = model.predict(
        ticket(
            "Invoice charged twice",
            "Hello team, my invoice for March was charged twice. Please refund one charge."
            "\n\nMit freundlichen Grüßen\nMax Mustermann\nMusterfirma GmbH",
        )
    )
    assert out.loc[0, "language"] == "en"
    assert out.loc[0, "sentiment_reason"] is None


def test_an_unsupported_language_has_no_sentiment_and_goes_to_review(
    model: TriagePredictor,
) -> None:
    out = model.predict(
        ticket("Facture incorrecte", "Bonjour, ma facture est incorrecte, merci de la corriger.")
    )
    assert out.loc[0, "language"] == "fr"
    assert np.isnan(out.loc[0, "sentiment"])
    assert out.loc[0, "sentiment_reason"] == "no sentiment analyzer for 'fr'"
    assert bool(out.loc[0, "needs_review"]) and out.loc[0, "tier"] == "review"


@pytest.mark.parametrize("code", ["en", "de"])
def test_sentiment_direction_on_the_behavioural_suite(code: str) -> None:
    suite = pd.read_csv(DATA / f"sentiment_{code}.csv")
    assert len(suite) >= 50 and set(suite["label"]) == {"positive", "negative", "neutral"}
    values, reasons = sentiment.scores(suite["text"].tolist(), [code] * len(suite))
    assert reasons == [None] * len(suite)
    polar = suite["label"] != "neutral"
    expected = np.where(suite["label"] == "positive", 1.0, -1.0)[polar]
    assert np.mean(np.sign(values[polar]) == expected) >= MIN_AGREEMENT
    # Requests are no complaints: none reaches the negative-sentiment review threshold.
    assert np.all(values[~polar] > Settings().signals.negative_sentiment)
