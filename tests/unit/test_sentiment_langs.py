"""Sentiment per language: VADER for English, the SentiWS scorer for German, none otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from triage_model import sentiment

pytestmark = pytest.mark.unit


def test_english_is_vader_s_compound_unchanged() -> None:
    texts = ["Thanks, great support :)", "I am very angry, the server is down!!"]
    library = SentimentIntensityAnalyzer()
    values, reasons = sentiment.scores(texts, ["en", "en"])
    assert values.tolist() == [library.polarity_scores(t)["compound"] for t in texts]
    assert reasons == [None, None]


def test_a_german_complaint_scores_negative_and_praise_positive() -> None:
    values, reasons = sentiment.scores(
        [
            "Ich bin sehr enttäuscht, Ihr Service ist eine Katastrophe und nichts funktioniert.",
            "Vielen Dank, der Mitarbeiter war sehr freundlich und hat perfekt geholfen!",
        ],
        ["de", "de"],
    )
    assert values[0] < -0.5 and values[1] > 0.5
    assert reasons == [None, None]


@pytest.mark.parametrize(
    ("negated", "plain"),
    [
        ("Ich bin nicht zufrieden.", "Ich bin zufrieden."),
        ("Das gefällt mir nicht.", "Das gefällt mir."),
        ("Ohne Fehler geliefert.", "Mit Fehler geliefert."),
    ],
)
def test_a_german_negation_flips_the_direction(negated: str, plain: str) -> None:
    assert np.sign(sentiment.german(negated)) == -np.sign(sentiment.german(plain)) != 0


def test_kein_problem_is_not_a_problem() -> None:
    assert sentiment.german("Kein Problem, danke!") > 0 > sentiment.german("Ein Problem.")


def test_a_negation_stops_at_its_clause_and_leaves_an_opening_comment() -> None:
    # "leider" (unfortunately) is six words before "nicht": the comment stays negative.
    assert sentiment.german("Leider funktioniert der Login seit gestern nicht.") < 0
    # The comma ends the clause: "nicht" does not reach "zufrieden".
    assert sentiment.german("Das Paket kam nicht, zufrieden bin ich trotzdem.") > 0


def test_two_negations_cancel() -> None:
    assert sentiment.german("Ohne Ihre Hilfe hätte ich das nie geschafft.") > 0


def test_nicht_nur_is_no_negation() -> None:
    assert sentiment.german("Nicht nur schnell, sondern auch günstig.") > 0


def test_intensifiers_strengthen_and_aber_shifts_the_weight() -> None:
    assert sentiment.german("Das ist sehr gut.") > sentiment.german("Das ist gut.") > 0
    assert sentiment.german("Der Service war gut, aber das Produkt ist schlecht.") < 0
    assert sentiment.german("Das Produkt ist schlecht, aber der Service war gut.") > 0


def test_letter_formulae_carry_no_sentiment() -> None:
    body = "Ihr Service ist eine Katastrophe."
    closing = "\n\nMit freundlichen Grüßen\n[NAME]"
    assert sentiment.german("Sehr geehrte Damen und Herren,\n" + body + closing) == (
        sentiment.german(body)
    )


def test_lookup_ignores_case_and_scores_stay_in_range() -> None:
    assert sentiment.german("PERFEKT") == sentiment.german("perfekt") > 0
    texts = ["Katastrophe! " * 50, "perfekt toll super " * 50, "", "1234"]
    values = [sentiment.german(t) for t in texts]
    assert all(-1.0 <= v <= 1.0 for v in values)
    assert values[2] == values[3] == 0.0


def test_other_languages_have_no_score_and_a_reason() -> None:
    values, reasons = sentiment.scores(
        ["Je suis très mécontent de votre service.", "12345"], ["fr", "und"]
    )
    assert np.isnan(values).all()
    assert reasons == [
        "no sentiment analyzer for 'fr'",
        "language undetermined (too short or unclear)",
    ]


def test_the_lexicon_comes_from_gersent_s_package_data() -> None:
    lexicon = sentiment.german_lexicon()
    assert len(lexicon) > 30_000
    assert lexicon["gut"] > 0 > lexicon["schlecht"]
    assert all(word == word.lower() for word in list(lexicon)[:1000])


def test_german_scores_are_cached_and_bounded() -> None:
    assert sentiment.german.cache_info().maxsize == sentiment.MAX_CACHED_TEXTS
    text = "Die Lieferung war leider beschädigt."
    first = sentiment.german(text)
    hits = sentiment.german.cache_info().hits
    assert sentiment.german(text) == first and sentiment.german.cache_info().hits == hits + 1


def test_long_texts_are_cut_before_scoring() -> None:
    tail = " Katastrophe"
    assert sentiment.scores(["x " * sentiment.MAX_CHARS + tail], ["de"])[0][0] == 0.0
    assert sentiment.scores(["x " * 10 + tail], ["de"])[0][0] < 0
