"""Feature assembly: ticket text, sentiment, escalation flags, metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage_model import escalation, features

pytestmark = pytest.mark.unit


def test_ticket_text_joins_subject_and_body() -> None:
    frame = pd.DataFrame({"subject": ["Charged twice"], "body": ["Please refund one."]})
    assert features.ticket_text(frame) == ["Charged twice\nPlease refund one."]


def test_ticket_text_with_missing_values() -> None:
    frame = pd.DataFrame(
        {"subject": [None, "Only subject", np.nan], "body": ["Only body", None, None]}
    )
    assert features.ticket_text(frame) == ["Only body", "Only subject", ""]


def test_ticket_text_with_missing_columns() -> None:
    assert features.ticket_text(pd.DataFrame({"body": ["hello"]})) == ["hello"]
    assert features.ticket_text(pd.DataFrame({"subject": ["hi"]})) == ["hi"]


def test_ticket_text_ignores_the_index() -> None:
    frame = pd.DataFrame({"subject": ["a", "b"], "body": ["x", "y"]}, index=[7, 3])
    assert features.ticket_text(frame) == ["a\nx", "b\ny"]


def test_sentiment_is_bounded_and_signed() -> None:
    angry = "This is completely unacceptable! Worst service ever, I am furious and disgusted."
    happy = "Thank you so much, the support was wonderful and I love the product!"
    scores = features.sentiment_scores([angry, "The invoice number is 123.", happy, ""])
    assert np.all((scores >= -1) & (scores <= 1))
    assert scores[0] < 0 < scores[2]
    assert scores[3] == 0.0


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("I will contact my lawyer", "esc_legal"),
        ("our whole production system is down", "esc_outage"),
        ("I'm posting on twitter about this", "esc_social"),
        ("our CEO wants an answer", "esc_executive"),
    ],
)
def test_escalation_flags_fire(text: str, flag: str) -> None:
    flags = features.escalation_flags([text])
    assert flags.loc[0, flag] == 1.0
    assert flags.drop(columns=flag).loc[0].sum() == 0.0


def test_escalation_flags_stay_quiet_on_ordinary_text() -> None:
    flags = features.escalation_flags(
        ["Could you send me a copy of my invoice? I want to download it from the dashboard."]
    )
    assert list(flags.columns) == list(features.ESCALATION_COLUMNS)
    assert flags.to_numpy().sum() == 0.0


ESCALATION_FRAGMENTS = [
    "my lawyer",
    "sued",
    "sue",
    "legal  action",
    "the server is down",
    "download",
    "crashing",
    "crashy",
    "we LOST OUR DATA",
    "lost my data",
    "Twitter",
    "review site",
    "reviews",
    "post about",
    "postpone",
    "our CEO",
    "vps",
    "VP",
    "board",
    "Vice President",
    "hello",
    "invoice",
    "",
    "\n",
    "!",
    "down-time",
]


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(
        st.lists(st.sampled_from(ESCALATION_FRAGMENTS), max_size=6).map(" ".join),
        min_size=1,
        max_size=8,
    )
)
def test_escalation_flags_equal_each_signal_s_own_search(parts: list[str]) -> None:
    # The one search for any signal only skips texts that no signal's own search would flag.
    compiled = escalation.patterns(escalation.LEGACY_ESCALATION_TERMS)
    expected = {
        f"esc_{name}": [1.0 if pattern.search(text.lower()) else 0.0 for text in parts]
        for name, pattern in compiled.by_signal
    }
    assert features.escalation_flags(parts).to_dict("list") == expected


def test_meta_frame_defaults_when_columns_are_absent() -> None:
    meta = features.meta_frame(pd.DataFrame({"body": ["a", "b"]}))
    assert list(meta.columns) == [*features.META_CATEGORICAL, *features.META_NUMERIC]
    assert meta["channel"].tolist() == ["unknown", "unknown"]
    assert meta["customer_tier"].tolist() == ["unknown", "unknown"]
    assert meta["customer_ltv"].isna().all()


def test_meta_frame_fills_missing_values_and_coerces_numbers() -> None:
    frame = pd.DataFrame(
        {
            "channel": ["email", None],
            "customer_tier": [None, "free"],
            "customer_ltv": ["12.5", "n/a"],
        },
        index=[10, 11],
    )
    meta = features.meta_frame(frame)
    assert meta["channel"].tolist() == ["email", "unknown"]
    assert meta["customer_tier"].tolist() == ["unknown", "free"]
    assert meta["customer_ltv"].iloc[0] == 12.5 and np.isnan(meta["customer_ltv"].iloc[1])


def test_model_inputs_has_every_column_the_pipelines_read() -> None:
    frame = pd.DataFrame(
        {"subject": ["Site down", None], "body": ["Our CEO is asking", "thanks!"]}, index=[5, 9]
    )
    inputs = features.model_inputs(frame)
    expected = [
        "text",
        *features.META_CATEGORICAL,
        *features.META_NUMERIC,
        "language",
        "sentiment",
        *features.ESCALATION_COLUMNS,
    ]
    assert list(inputs.columns) == expected
    assert len(inputs) == 2
    assert inputs.loc[0, "esc_outage"] == 1.0 and inputs.loc[0, "esc_executive"] == 1.0
    assert inputs.loc[1, "text"] == "thanks!"


def test_values_that_are_not_strings_are_converted_as_pandas_converts_them() -> None:
    frame = pd.DataFrame(
        {
            "subject": pd.Series([5, None], dtype=object),
            "body": pd.array(["x ", pd.NA], dtype="string"),
            "channel": [1.5, np.nan],
        }
    )
    inputs = features.model_inputs(frame)
    assert inputs["text"].tolist() == ["5\nx", ""]
    assert inputs["channel"].tolist() == ["1.5", "unknown"]


def test_model_inputs_of_one_ticket_equal_its_row_of_the_batch() -> None:
    frame = pd.DataFrame(
        {
            "subject": ["Site down", None, "Refund"],
            "body": ["Our CEO is asking ", "thanks!", None],
            "channel": ["email", None, "chat"],
            "customer_ltv": [12.5, None, 3.0],
        }
    )
    batch = features.model_inputs(frame)
    for i in range(len(frame)):
        one = features.model_inputs(frame.iloc[[i]])
        pd.testing.assert_frame_equal(one, batch.iloc[[i]].reset_index(drop=True), check_exact=True)


def test_repeat_contacts_counts_the_customers_earlier_tickets_in_the_window() -> None:
    tickets = pd.DataFrame(
        {
            "ticket_id": ["a", "b", "c", "d", "e"],
            "customer_id": ["x", "x", "y", "x", None],
            "created_at": pd.to_datetime(
                ["2026-01-01", "2026-01-10", "2026-01-10", "2026-03-01", "2026-01-02"], utc=True
            ),
        }
    )
    history = pd.DataFrame(
        {
            "ticket_id": ["z"],
            "customer_id": ["y"],
            "created_at": pd.to_datetime(["2026-01-05"], utc=True),
        }
    )
    counts = features.repeat_contacts(tickets, history)
    # b follows a by 9 days; c follows z; d is 50 days after b; e has no customer.
    assert counts[:4].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert np.isnan(counts[4])


PERSONAL = pd.DataFrame(
    {
        "subject": ["Refund to jan.kowalczyk@poczta-example.pl"],
        "body": [
            "Card 4539 1488 0343 6467 was charged twice, call +48 512 904 377.\n\n"
            "Best regards,\nJan Kowalczyk"
        ],
    }
)


def test_the_models_read_ticket_text_with_personal_data_masked() -> None:
    masked = (
        "Refund to [EMAIL]\nCard [NUMBER] was charged twice, call [PHONE].\n\nBest regards,\n[NAME]"
    )
    assert features.model_text(PERSONAL) == [masked]
    assert features.input_columns(PERSONAL)["text"] == [masked]
    assert features.model_inputs(PERSONAL)["text"].tolist() == [masked]
