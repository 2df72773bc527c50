"""The model card's Heads table and Signals section, read from the model's config and metrics."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pandas as pd
import pytest

from triage_ml.registry import card
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit

CONFIG = {
    "heads": {
        "subcategory": {"classes": ["Refund", "Invoice", "Login"], "parents": {}},
        "type": {"classes": ["Incident", "Request"]},
    },
    "languages": ["en", "de"],
    "language_routes": {"fr": "french-desk"},
    "unsupported_route": "translation-queue",
    "negative_sentiment": -0.5,
    "escalation_terms": {"legal": ["lawyer", "anwalt", "klage"], "outage": ["outage", "ausfall"]},
    "escalation_priority": {"legal": "high"},
    "repeat_contacts": 2,
    "priority_weights": {"model": 0.6, "value": 0.25, "sentiment": 0.15},
    "routes": {"Billing": "billing-team"},
}
METRICS = {
    "category_macro_f1": 0.81234,
    "category_accuracy": 0.85,
    "subcategory_macro_f1": 0.7,
    "subcategory_accuracy": 0.72,
    "subcategory_answered": 0.875,
    "subcategory_inconsistent": 0.0,
    "type_macro_f1": 0.9,
    "type_accuracy": 0.91,
    "priority_macro_f1": 0.6,
    "priority_accuracy": 0.65,
}


def facts(
    config: dict | None = None,
    levels: tuple[str, ...] = ("urgent", "high", "low"),
    **changes: object,
) -> card.Card:
    """A small card whose heads and signals come from ``config`` (CONFIG by default)."""
    config = CONFIG if config is None else config
    labels, matrix = card.confusion(["Billing", "Account"], ["Billing", "Account"])
    data = card.DataFacts("d", ("b",), None, None, {"Billing": 60, "Account": 40}, {}, 2)
    base = card.Card(
        model_name="triage-tickets",
        version="4",
        run_id="r",
        candidate="logreg",
        params={},
        cv={},
        inputs=("body",),
        required_inputs=("body",),
        priority_levels=levels,
        metrics=METRICS,
        labels=labels,
        confusion=matrix,
        data=data,
        decision={"promote": True, "reason": "promoted"},
        git_sha="sha",
        heads=card.head_classes(config, data.class_counts, levels),
        signals=card.signal_facts(config),
    )
    return dataclasses.replace(base, **changes)


def test_the_heads_table_lists_every_head_with_classes_and_figures() -> None:
    text = card.model_card(facts())
    assert "## Heads" in text
    assert "| category | 2 | 0.8123 | 0.8500 |" in text
    assert "| subcategory | 3 | 0.7000 | 0.7200 | answered 88% (else the category alone);" in text
    assert "0 inconsistent with the predicted category |" in text
    assert "| type | 2 | 0.9000 | 0.9100 |" in text
    assert "| team | not trained | | | routes come from the category map |" in text
    assert "| priority | 3 | 0.6000 | 0.6500 |" in text
    assert text.index("## Heads") < text.index("## Signals") < text.index("## Data")


def test_the_signals_section_reads_the_config() -> None:
    text = card.model_card(facts())
    assert "- languages supported: en, de; routes per language: fr -> french-desk;" in text
    assert "any other language goes to translation-queue and is flagged for review" in text
    assert "en: VADER (vaderSentiment); de: SentiWS lexicon scorer" in text
    assert "priority review at or below -0.5" in text
    assert "legal (3 terms), outage (2 terms), repeat_contact (at least 2 earlier" in text
    assert "raise priority to at least: legal -> high" in text
    assert "- priority score weights: model 0.6, value 0.25, sentiment 0.15" in text
    # The terms themselves stay in the config, not on the card.
    assert "anwalt" not in text


def test_a_config_without_the_keys_says_not_configured() -> None:
    text = card.model_card(facts({}, (), metrics={"category_macro_f1": 0.8}))
    for item in (
        "languages supported",
        "sentiment",
        "escalation signals",
        "priority score weights",
    ):
        assert f"- {item}: not configured" in text
    for head in ("subcategory", "type", "priority"):
        assert f"| {head} | not trained |" in text


def test_head_figures_become_version_tags() -> None:
    tags = card.card_tags(facts())
    assert tags["test_subcategory_macro_f1"] == "0.7000" and tags["test_type_accuracy"] == "0.9100"
    assert "test_team_macro_f1" not in tags


def test_card_facts_read_heads_and_signals_from_the_models_config() -> None:
    test = pd.DataFrame({"category": ["Billing", "Account"] * 5, "priority": ["high", "low"] * 5})
    snapshot = SimpleNamespace(
        frame=test.assign(created_at=pd.Timestamp("2026-11-01", tz="UTC")),
        digest="d",
        batch_ids=("b",),
    )
    predictions = test.assign(category_proba=0.9)
    challenger = SimpleNamespace(
        predictions=predictions, metrics=METRICS, predictor=SimpleNamespace(config=CONFIG)
    )
    chosen = SimpleNamespace(name="logreg", params={}, figures=dict)
    facts = card.card_facts(Settings(), "4", "r", chosen, challenger, test, snapshot, {})
    assert facts.heads == {
        "category": 2,
        "subcategory": 3,
        "type": 2,
        "team": None,
        "priority": 2,
    }
    # The scale's levels the labels hold, not the whole configured scale.
    assert facts.priority_levels == ("high", "low")
    assert facts.signals["escalation_terms"] == {"legal": 3, "outage": 2}
    assert "routes" not in facts.signals
