"""Personal data is masked before any ticket text is logged."""

from __future__ import annotations

import pytest

from triage_ml.redact import mask_personal_data

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
