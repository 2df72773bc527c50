"""The model card's Markdown and tags, on inline figures (writing it is tested by a flow test)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from triage_ml.registry import card

pytestmark = pytest.mark.unit

SECTIONS = (
    "## What it predicts",
    "## Candidate",
    "## Held-out metrics",
    "## Data",
    "## Gate decision",
    "## Known limits",
)


def facts(**changes: object) -> card.Card:
    """A small card: three classes, one of them small, and a rejection by the gate."""
    labels, matrix = card.confusion(
        ["Billing"] * 5 + ["Sales"] * 4 + ["Returns"],
        ["Billing"] * 4 + ["Sales"] + ["Sales"] * 3 + ["unknown"] + ["Returns"],
    )
    data = card.DataFacts(
        snapshot_digest="0123abcd",
        batches=("b-1", "b-2"),
        first_day="2026-09-01",
        last_day="2026-11-30",
        class_counts={"Billing": 600, "Sales": 400, "Returns": 12},
        languages={"en": 900, "de": 112},
        test_rows=10,
    )
    base = card.Card(
        model_name="triage-tickets",
        version="3",
        run_id="abc123",
        candidate="logreg",
        params={"C": 3.0},
        cv={"cv_category_macro_f1": 0.812345, "cv_category_macro_f1_se": 0.01234},
        inputs=("subject", "body", "language"),
        required_inputs=("body",),
        priority_levels=("urgent", "high", "low"),
        metrics={
            "category_macro_f1": 0.7777777,
            "category_f1.Billing": 0.8888888,
            "category_f1.Sales": 0.75,
            "category_f1.Returns": 1.0,
        },
        labels=labels,
        confusion=matrix,
        data=data,
        decision={
            "promote": False,
            "reason": "rejected: the gain 0.0010 is below 0.0050",
            "checks": [{"name": "min_delta", "passed": False, "detail": "gain 0.0010 < 0.0050"}],
        },
        git_sha="deadbeef",
    )
    return dataclasses.replace(base, **changes)


def test_the_card_has_the_contracted_title_sections_and_sha_line() -> None:
    text = card.model_card(facts())
    assert text.splitlines()[0] == "# Model card: triage-tickets version 3"
    positions = [text.index(heading) for heading in SECTIONS]
    assert positions == sorted(positions)
    assert "\ngit SHA: deadbeef\n" in text


def test_the_card_states_inputs_candidate_and_rounded_figures() -> None:
    text = card.model_card(facts())
    assert "`body` (required)" in text and "`subject`" in text
    assert "one of 3 classes (Billing, Returns, Sales)" in text
    assert "`logreg`" in text and "| C | 3.0 |" in text
    assert "0.8123 ± 0.0123" in text
    assert "| category_macro_f1 | 0.7778 |" in text
    assert "| Billing | 0.8889 | 5 |" in text
    assert "0.7777777" not in text


def test_the_confusion_matrix_is_a_markdown_table_with_abstentions_as_a_column() -> None:
    text = card.model_card(facts())
    assert "| true \\ predicted | Billing | Returns | Sales | unknown |" in text
    assert "| Billing | 4 | 0 | 1 | 0 |" in text
    assert "| Sales | 0 | 0 | 3 | 1 |" in text
    # "unknown" is predicted, never true: it gets no row.
    assert "| unknown | 0" not in text


def test_data_gate_and_limits_sections() -> None:
    text = card.model_card(facts())
    assert "snapshot digest: `0123abcd`" in text and "ingest batches: 2 (`b-1`, `b-2`)" in text
    assert "2026-09-01 to 2026-11-30" in text and "| Returns | 12 |" in text
    assert "**Not promoted**: rejected: the gain 0.0010 is below 0.0050" in text
    assert "| min_delta | no | gain 0.0010 < 0.0050 |" in text
    assert f"fewer than {card.SMALL_CLASS_ROWS} labeled tickets: Returns (12)" in text
    assert "languages seen: en (900), de (112)" in text


def test_a_model_without_priority_says_so() -> None:
    assert "no priority" in card.model_card(facts(priority_levels=()))
    assert "one of urgent, high, low" in card.model_card(facts())


def test_a_pipe_in_a_class_name_does_not_break_the_tables() -> None:
    labels, matrix = card.confusion(["A|B", "C"], ["A|B", "C"])
    text = card.model_card(facts(labels=labels, confusion=matrix))
    assert "| A\\|B | 1 | 0 |" in text


def test_many_classes_give_a_compact_card_within_the_registry_limit() -> None:
    classes = [f"intent_{i:03d}" for i in range(150)]
    truth = [c for c in classes for _ in range(3)]
    predicted = [classes[(i // 3 + (i % 3 == 0)) % 150] for i in range(len(truth))]
    labels, matrix = card.confusion(truth, predicted)
    data = dataclasses.replace(facts().data, class_counts=dict.fromkeys(classes, 40))
    text = card.model_card(facts(labels=labels, confusion=matrix, data=data))
    assert len(text) <= card.MAX_CARD_CHARS
    assert all(heading in text for heading in SECTIONS)
    assert "most frequent confusions" in text and "\ngit SHA: deadbeef\n" in text


def test_a_card_cut_to_the_limit_keeps_its_sha_line() -> None:
    text = card.model_card(facts(), limit=600)
    assert len(text) <= 600 and text.endswith("git SHA: deadbeef\n")
    assert text.startswith("# Model card: triage-tickets version 3")


def test_data_facts_count_classes_and_languages_and_never_read_text() -> None:
    frame = pd.DataFrame(
        {
            "subject": ["Refund for jan@example.com"] * 3,
            "body": ["Card 4539 1488 0343 6467"] * 3,
            "category": ["Billing", "Billing", "Sales"],
            "language": ["en", None, "en"],
            "created_at": pd.to_datetime(
                ["2026-10-02 08:00", "2026-09-01 00:30", "2026-11-30 23:00"]
            ),
        }
    )
    data = card.data_facts(frame, "d1", ["b"], 1)
    assert data.class_counts == {"Billing": 2, "Sales": 1}
    assert data.languages == {"en": 2, "unknown": 1}
    assert (data.first_day, data.last_day) == ("2026-09-01", "2026-11-30")
    text = card.model_card(facts(data=data)) + str(card.card_tags(facts(data=data)))
    assert "example.com" not in text and "4539" not in text


def test_tags_carry_the_searchable_facts() -> None:
    tags = card.card_tags(facts())
    assert tags["candidate"] == "logreg" and tags["snapshot_digest"] == "0123abcd"
    assert tags["gate_decision"] == "rejected" and tags["git_sha"] == "deadbeef"
    assert tags["test_category_macro_f1"] == "0.7778" and tags["training_rows"] == "1012"
    assert all(isinstance(v, str) for v in tags.values())
    assert card.card_tags(facts(decision={"promote": True}))["gate_decision"] == "promoted"


def test_the_registered_model_description_says_what_triage_ml_models_are() -> None:
    assert card.MODEL_DESCRIPTION.startswith("triage-ml models")
