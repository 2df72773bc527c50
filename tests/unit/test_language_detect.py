"""Language detection: py3langid restricted to the candidates, on a text's opening."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from triage_model import features, language

pytestmark = pytest.mark.unit

CANDIDATES = features.SIGNAL_DEFAULTS["detect_languages"]
ENGLISH_WITH_GERMAN_SIGNATURE = (
    "Invoice charged twice\nHello team, my invoice for March was charged twice to my card."
    " Please refund one of the charges.\n\nMit freundlichen Grüßen\nMax Mustermann\n"
    "Musterfirma GmbH, Musterstraße 1, 12345 Berlin"
)


def test_english_and_german_tickets_are_told_apart() -> None:
    codes, confidence = language.detect(
        [
            "The export button does nothing when I click it in Chrome.",
            "Der Export-Button reagiert nicht, wenn ich in Chrome darauf klicke.",
        ],
        CANDIDATES,
    )
    assert codes == ["en", "de"]
    assert np.all((confidence > 0.9) & (confidence <= 1.0))


def test_an_english_ticket_with_a_german_signature_stays_english() -> None:
    assert language.detect([ENGLISH_WITH_GERMAN_SIGNATURE], CANDIDATES)[0] == ["en"]
    frame = pd.DataFrame(
        {"subject": ["Invoice charged twice"], "body": [ENGLISH_WITH_GERMAN_SIGNATURE]}
    )
    assert features.input_columns(frame)["language"] == ["en"]


def test_a_text_without_letters_is_undetermined() -> None:
    codes, confidence = language.detect(["", "12345 !!!", " -- \n 42"], CANDIDATES)
    assert codes == [language.UNDETERMINED] * 3
    assert confidence.tolist() == [0.0, 0.0, 0.0]


def test_the_opening_starts_at_the_first_letter() -> None:
    assert language.opening("2024-01-05: Der Server") == "Der Server"
    assert len(language.opening("x" * 500)) == language.LONGER_CHARS


def test_an_unsure_opening_is_read_further() -> None:
    # A French greeting before an English body: the opening alone is unsure.
    text = (
        "Bonjour, problème de facture. Désolé pour mon anglais. My invoice for March shows"
        " the wrong amount and I was charged twice for the same order. Could you please"
        " refund the second charge and send me a corrected invoice? The order number is in"
        " the attachment and my account is registered under this address."
    )
    model = language.identifier(tuple(sorted(CANDIDATES)))
    assert model.classify(text[: language.PREFIX_CHARS])[1] < language.SURE
    assert language.detect([text], CANDIDATES)[0] == ["en"]


def test_only_candidates_are_answered() -> None:
    french = "Bonjour, ma facture est incorrecte, merci de la corriger rapidement."
    assert language.detect([french], CANDIDATES)[0] == ["fr"]
    assert language.detect([french], ["en", "de"])[0][0] in {"en", "de"}
    # The narrower identifier is a copy: the wider one still knows French.
    assert language.detect([french], CANDIDATES)[0] == ["fr"]


def test_an_unknown_candidate_is_refused() -> None:
    with pytest.raises(ValueError):
        language.detect(["hello there"], ["en", "xx"])


def test_detection_is_cached_per_opening() -> None:
    text = "Bitte senden Sie mir die Rechnung erneut zu, die alte ist verloren gegangen. " * 6
    language.detect([text], CANDIDATES)
    hits = language.identify.cache_info().hits
    assert language.detect([text + " Danke."], CANDIDATES)[0] == ["de"]
    assert language.identify.cache_info().hits == hits + 1


def test_sample_accuracy_on_rows_the_text_corroborates(shared_sample: pd.DataFrame) -> None:
    # The sample's column is wrong on some "de" rows (English text): keep rows whose
    # label a German function word confirms ("de") or whose text has none ("en").
    rows = shared_sample.head(400)
    texts = features.ticket_text(rows)
    german = [bool(GERMAN_WORDS & set(t.lower().split())) for t in texts]
    labels = rows["language"].tolist()
    kept = [(label == "de") == g for label, g in zip(labels, german, strict=True)]
    codes = language.detect(texts, CANDIDATES)[0]
    right = [c == label for c, label, k in zip(codes, labels, kept, strict=True) if k]
    assert len(right) > 300 and np.mean(right) >= 0.99


GERMAN_WORDS = {"und", "der", "das", "ich", "nicht", "ist", "mit", "wir", "für", "bitte"}
