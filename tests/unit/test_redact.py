"""Personal data is masked before any ticket text is logged."""

from __future__ import annotations

import random
import re

import pytest

from triage_ml.redact import mask_personal_data, mask_url, url_has_password

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to john.doe+billing@corp.example.co.uk today", "write to [EMAIL] today"),
        ("card 4111 1111 1111 1111 was charged", "card [NUMBER] was charged"),
        ("card 4111-1111-1111-1111 was charged", "card [NUMBER] was charged"),
        ("IBAN DE44 5001 0517 5407 3249 31 please", "IBAN [NUMBER] please"),
        ("account 12345678 is locked", "account [NUMBER] is locked"),
        ("call +44 20 7946 0958 now", "call [PHONE] now"),
        ("call (555) 123-4567 now", "call [PHONE] now"),
        ("call 555.123.4567 now", "call [PHONE] now"),
    ],
)
def test_personal_data_is_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text) == expected


def test_ordinary_numbers_are_kept() -> None:
    text = "order 1234 of 2024-05-01 at 10:30, version 3.2.1, ticket #98765, 3 x 250 ml"
    assert mask_personal_data(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IBAN GB29 NWBK 6016 1331 9268 19 please", "IBAN [NUMBER] please"),
        ("IBAN NL91ABNA0417164300 please", "IBAN [NUMBER] please"),
        (
            "The app crashes.\n\nBest regards,\nMarta Wiśniewska",
            "The app crashes.\n\nBest regards,\n[NAME]",
        ),
        ("It crashes.\nThanks, John", "It crashes.\nThanks,\n[NAME]"),
        (
            "Hi\n\nCordialement,\nJean Dupont\nAcme SARL\n[PHONE]\n\nSent from my iPhone",
            "Hi\n\nCordialement,\n[NAME]\n\nSent from my iPhone",
        ),
        ("Fix it.\n--\nAnna Nowak", "Fix it.\n--\n[NAME]"),
        (
            "Danke.\n\nMit freundlichen Grüßen\n\nJürgen Weiß",
            "Danke.\n\nMit freundlichen Grüßen\n[NAME]",
        ),
    ],
)
def test_ibans_with_letters_and_signatures_are_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Thank you for your help!",
        "Thank you!\nYour agent Anna was super helpful yesterday, thank you!",
        "Re: order\nThank you\nthe parcel arrived broken",
        "Thanks\nThe app crashes on login every time I try it, on every device I own, please",
        "Please help.\nThanks",
        "Regards,\nline one\nline two\nline three\nline four\nline five",
        "PS12 HELP ME with order 1234",
    ],
)
def test_closings_without_a_signature_are_kept(text: str) -> None:
    assert mask_personal_data(text) == text


def test_the_platform_and_the_model_runtime_share_one_copy_of_the_rules() -> None:
    from triage_ml import redact
    from triage_model import redact as runtime

    assert redact.mask_personal_data is runtime.mask_personal_data
    assert redact.MASKS is runtime.MASKS


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "https://ghp_tok3n@github.example.com/org/repo",
            "https://***@github.example.com/org/repo",
        ),
        ("http://tok@mlflow:5000", "http://***@mlflow:5000"),
        ("postgresql://triage@db/triage", "postgresql://triage@db/triage"),
    ],
)
def test_a_token_in_an_http_urls_user_part_is_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert url_has_password(url) is (url != masked)


def _masked_by_the_rules(text: str) -> str:
    """Every rule applied in turn, with no shortcut: what masking means."""
    from triage_model import redact as runtime

    for pattern, placeholder in runtime.MASKS:
        text = pattern.sub(placeholder, text)

    def signature(match: re.Match[str]) -> str:
        if not (match["inline"] or match["lines"]):
            return match[0]
        return f"{match['closing']}\n{runtime.NAME}"

    return runtime.SIGNATURE.sub(signature, text)


_PIECES = (
    *"0123456789",
    *" .-+()@\n\t,",
    "1234",
    "12345678",
    "4111 1111 1111 1111",
    "DE44",
    "GB29 NWBK",
    "+44 20",
    "(555)",
    "555.123.4567",
    "a.b@c.de",
    "Best regards,",
    "Thanks",
    "--",
    "Mit freundlichen Grüßen",
    "\n\n",
    "Anna Nowak",
    "[PHONE]",
    "ok",
    "ü",
    "٣",  # a digit to \\d, though not ASCII
)


def test_masking_shortcuts_mask_exactly_what_the_rules_mask() -> None:
    """The cheap tests that skip a rule never skip one that would have matched."""
    rng = random.Random(23)
    for _ in range(4000):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 30)))
        assert mask_personal_data(text) == _masked_by_the_rules(text), repr(text)
