"""Mask personal data in ticket text: before it is logged, and before a model learns from it.

The model reads ticket text only through this masking (``features``), at
training and at prediction alike, so a fitted vocabulary never holds an
e-mail address, a phone, card or account number, or a signature's name,
nor any fragment of one. It lives in the model runtime, which ships with
every registered model and imports nothing from ``triage_ml``;
``triage_ml.redact`` re-exports it, so there is one copy of the rules.

Written here because none of the project's libraries does it, and the
dedicated tools (Presidio, scrubadub) bring spaCy models that a 2-core
retraining worker should not load for a few kinds of token. Order matters:
e-mail addresses first (they contain digits and dots), then phone numbers
with a country or area code, then IBANs, card and account numbers, then the
remaining grouped phone numbers, and signatures last (their lines are
judged by length once their numbers are placeholders).
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# Phone numbers written with a country code or an area code in brackets:
# +44 20 7946 0958, +1-555-123-4567, (555) 123-4567.
PHONE_MARKED = re.compile(
    r"(?<![\w+])"
    r"(?:\+\d{1,3}(?:[ .\-]?\(?\d{1,4}\)?){2,5}|\(\d{2,5}\)[ .\-]?\d{3,4}[ .\-]?\d{3,5})"
    r"(?!\w)"
)
# Card and account numbers: a run of 8+ digits, or 4-digit groups (cards,
# IBANs after their country code). Dates (2024-05-01) and versions stay.
ACCOUNT = re.compile(
    r"\b(?:[A-Z]{2}\d{2}[ \-]?)?(?:\d{8,}|\d{4}(?:[ \-]\d{4}){2,}(?:[ \-]\d{1,4})?)\b"
)
# IBANs whose bank code is letters (GB29 NWBK 6016 1331 9268 19, NL91 ABNA 0417 1643 00):
# the whole IBAN, where ACCOUNT alone would leave the country and bank code.
IBAN_LETTERS = re.compile(r"\b[A-Z]{2}\d{2}[ \-]?[A-Z]{4}(?:[ \-]?\d{4}){2,}(?:[ \-]?\d{1,4})?\b")
# Grouped local phone numbers: 555-123-4567, 555.123.4567, 030 1234 5678.
PHONE_PLAIN = re.compile(r"\b\d{3}[ .\-]\d{3,4}[ .\-]\d{4}\b")

# Closing lines after which a message's remaining lines are its signature:
# the languages the tickets come in, and the ``--`` delimiter of e-mail.
# Longer alternatives first, so "kind regards" is not read as "regards".
SIGN_OFFS: tuple[str, ...] = (
    "mit freundlichen grüßen",
    "yours sincerely",
    "bien cordialement",
    "best regards",
    "kind regards",
    "warm regards",
    "best wishes",
    "many thanks",
    "thanks again",
    "thank you",
    "yours truly",
    "viele grüße",
    "beste grüße",
    "liebe grüße",
    "bien à vous",
    "un saludo",
    "atentamente",
    "cordialement",
    "sincerely",
    "regards",
    "thanks",
    "cheers",
    "danke",
    "grüße",
    "saludos",
    "gracias",
    "merci",
    "best",
    "--",
)
# A closing alone on its line, after the message's first line (a name may
# follow it on the line); then, after at most one blank line, a name line (one
# to four words, the first capitalised or a placeholder, no full stop), and up
# to three more short lines (title, company, phone), that end the message or
# its paragraph: the signature. A closing followed by anything else is left
# alone: that is the message itself.
_CAPITALISED = r"(?=[A-ZÀ-ÖØ-Þ])\w[\w'.\-]*"
_NAME_LINE = rf"(?:{_CAPITALISED}|\[[A-Z]+\])(?:[ \t]+\S+){{0,3}}(?<![.!?:;])[ \t]*(?=\n|\Z)"
_SIGNATURE_AFTER_NEWLINE = (
    r"(?P<closing>[ \t]*(?i:"
    + "|".join(re.escape(s) for s in SIGN_OFFS)
    + r")(?!\w)[ \t]*[,.!]?)"
    + rf"(?P<inline>[ \t]*{_CAPITALISED}(?:[ \t]+{_CAPITALISED}){{0,2}})?"
    + rf"(?P<lines>(?:\n[ \t]*)?\n[ \t]*{_NAME_LINE}(?:\n[ \t]*\S[^\n]{{0,59}}){{0,3}})?"
    + r"[ \t]*(?=\n[ \t]*\n|\s*\Z)"
)
SIGNATURE = re.compile(r"(?<=\n)" + _SIGNATURE_AFTER_NEWLINE)
# The same matches with their newline in front: a pattern that opens on a
# literal character lets the engine skip to each newline, where the
# look-behind made it try every position (docs/benchmarks.md). A match
# never ends on a newline, so taking the one before the next match takes
# nothing another match needs.
_NEWLINE_SIGNATURE = re.compile(r"\n" + _SIGNATURE_AFTER_NEWLINE)

# The rules in the order mask_personal_data applies them, with their placeholders.
MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (EMAIL, "[EMAIL]"),
    (PHONE_MARKED, "[PHONE]"),
    (IBAN_LETTERS, "[NUMBER]"),
    (ACCOUNT, "[NUMBER]"),
    (PHONE_PLAIN, "[PHONE]"),
)
NAME = "[NAME]"


def _signature(match: re.Match[str]) -> str:
    """A :data:`_NEWLINE_SIGNATURE` match as :data:`SIGNATURE` masks it, newline kept."""
    if not (match["inline"] or match["lines"]):
        return match[0]  # a closing with nothing after it
    return f"\n{match['closing']}\n{NAME}"


def mask_personal_data(text: str) -> str:
    """``text`` with e-mail addresses, card/account and phone numbers, and signatures masked.

    Each becomes a placeholder (``[EMAIL]``, ``[NUMBER]``, ``[PHONE]``); the
    lines after a closing such as "Best regards," become one ``[NAME]``.
    """
    # In the order of MASKS. The model masks every ticket it reads, at
    # prediction too, and most hold none of these: a cheap test of what a
    # pattern cannot match without spares them its search. IBANs, card,
    # account and grouped phone numbers all hold four digits in a row, and
    # masking never joins digits into a run: one test serves all three.
    if "@" in text:
        text = EMAIL.sub("[EMAIL]", text)
    if "+" in text or "(" in text:
        text = PHONE_MARKED.sub("[PHONE]", text)
    if _FOUR_DIGITS.search(text):
        text = IBAN_LETTERS.sub("[NUMBER]", text)
        text = ACCOUNT.sub("[NUMBER]", text)
        text = PHONE_PLAIN.sub("[PHONE]", text)
    return _NEWLINE_SIGNATURE.sub(_signature, text)


_FOUR_DIGITS = re.compile(r"\d{4}")
