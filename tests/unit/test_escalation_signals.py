"""Escalation signals: terms as data in English and German, model flags, signals as an answer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage_ml.training import signals as training_signals
from triage_model import escalation, features

pytestmark = pytest.mark.unit

SHIPPED_TERMS = training_signals.escalation_terms(None)


@pytest.fixture
def terms() -> dict[str, list[str]]:
    """The terms file the repository ships (data_contracts/escalation.yaml)."""
    return SHIPPED_TERMS


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("Ich werde meinen Anwalt einschalten und Sie verklagen", "legal"),
        ("Wir haben die Verbraucherzentrale informiert.", "legal"),
        ("Sonst leite ich rechtliche Schritte ein.", "legal"),
        ("Ich werde das in den sozialen Medien posten.", "social"),
        ("Ich schreibe eine Bewertung auf dem Bewertungsportal.", "social"),
        ("Unsere Geschäftsführerin verlangt eine Antwort.", "executive"),
        ("Der Vorstand ist informiert.", "executive"),
        ("Das Portal ist seit heute Morgen nicht erreichbar.", "outage"),
        ("Nach dem Update gab es einen Datenverlust.", "outage"),
        ("I will contact my lawyer", "legal"),
        ("I'm posting on twitter about this", "social"),
        ("our CEO wants an answer", "executive"),
        ("our whole production system is down", "outage"),
    ],
)
def test_a_signal_is_found_in_either_language(
    terms: dict[str, list[str]], text: str, signal: str
) -> None:
    assert escalation.signals([text], np.array([0.0]), terms, 2) == [[signal]]
    flags = escalation.flag_columns([text], terms)
    assert {column for column, values in flags.items() if values[0]} == {f"esc_{signal}"}


def test_terms_match_whole_words_only(terms: dict[str, list[str]]) -> None:
    quiet = [
        "Die Klageschrift... nein: Bitte schicken Sie mir die Rechnung.",
        "Could you send me a copy of my invoice? I want to download it.",
        "Unser Gerichtsvollzieher-Modul, bitte: wie exportiere ich Berichte?",
    ]
    assert escalation.signals(quiet, np.zeros(3), terms, 2) == [[], [], []]


def test_repeat_contacts_raise_their_own_signal_after_the_text_signals(
    terms: dict[str, list[str]],
) -> None:
    found = escalation.signals(
        ["Der Server ist ausgefallen", "hello", "hello", "hello"],
        np.array([5.0, 2.0, 1.0, np.nan]),
        terms,
        2,
    )
    assert found == [["outage", "repeat_contact"], ["repeat_contact"], [], []]


def test_signals_come_in_a_fixed_order(terms: dict[str, list[str]]) -> None:
    text = "Our CEO saw the outage on twitter and called our lawyer."
    assert escalation.signals([text], np.array([3.0]), terms, 2) == [list(escalation.SIGNALS)]


def test_flag_columns_are_the_model_s_feature_names(terms: dict[str, list[str]]) -> None:
    flags = escalation.flag_columns(["nothing to see", "Anwalt"], terms)
    assert tuple(flags) == escalation.FLAG_COLUMNS == features.ESCALATION_COLUMNS
    assert flags["esc_legal"] == [0.0, 1.0]


def test_a_config_without_terms_reads_the_legacy_english_ones() -> None:
    text = ["I will call my lawyer", "Ich werde meinen Anwalt einschalten"]
    legacy = features.signal_setting({}, "escalation_terms")
    assert legacy is escalation.LEGACY_ESCALATION_TERMS
    assert escalation.flag_columns(text, legacy)["esc_legal"] == [1.0, 0.0]
    assert features.escalation_flags(text)["esc_legal"].tolist() == [1.0, 0.0]


def test_the_shipped_file_keeps_every_legacy_english_term(terms: dict[str, list[str]]) -> None:
    for signal, english in escalation.LEGACY_ESCALATION_TERMS.items():
        assert set(english) <= set(terms[signal])


FRAGMENTS = [
    "my lawyer", "sued", "sue", "legal  action", "the server is down", "download", "crashing",
    "we LOST OUR DATA", "Twitter", "review site", "postpone", "our CEO", "vps", "VP",
    "Anwalt", "Anwaltskanzlei", "verklagen", "Geschäftsführerin", "Geschäftsführer", "ausgefallen",
    "nicht erreichbar", "nicht", "Bewertung", "stürzt ständig ab", "hello", "", "\n", "!",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.lists(st.sampled_from(FRAGMENTS), max_size=6).map(" ".join), min_size=1, max_size=6
    )
)
def test_the_one_search_for_any_signal_skips_only_quiet_texts(parts: list[str]) -> None:
    terms = SHIPPED_TERMS
    expected = [
        [s for s in escalation.TEXT_SIGNALS if escalation._whole_words(terms[s]).search(t.lower())]
        for t in parts
    ]
    assert escalation.signals(parts, np.zeros(len(parts)), terms, 2) == expected
