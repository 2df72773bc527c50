"""Mask personal data in ticket text before it is logged anywhere.

Written here because none of the project's libraries does it, and the
dedicated tools (Presidio, scrubadub) bring spaCy models that a 2-core
retraining worker should not load for three kinds of token. Order matters:
e-mail addresses first (they contain digits and dots), then phone numbers
with a country or area code, then card and account numbers, then the
remaining grouped phone numbers.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
# Grouped local phone numbers: 555-123-4567, 555.123.4567, 030 1234 5678.
PHONE_PLAIN = re.compile(r"\b\d{3}[ .\-]\d{3,4}[ .\-]\d{4}\b")

MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (EMAIL, "[EMAIL]"),
    (PHONE_MARKED, "[PHONE]"),
    (ACCOUNT, "[NUMBER]"),
    (PHONE_PLAIN, "[PHONE]"),
)


def mask_personal_data(text: str) -> str:
    """``text`` with e-mail addresses, card/account numbers and phone numbers replaced by
    placeholders."""
    for pattern, placeholder in MASKS:
        text = pattern.sub(placeholder, text)
    return text


# Query parameters that carry credentials in database and service URLs.
_SECRET_PARAMS = re.compile(r"pass|secret|token|key", re.IGNORECASE)
MASK = "***"


def url_has_password(url: str) -> bool:
    """Whether ``url`` carries a password, in its user part or a query parameter."""
    return mask_url(url) != url


def mask_url(url: str) -> str:
    """``url`` with the password of its user part and credential-like query values replaced by
    ``***``.

    Works for SQLAlchemy URLs (``postgresql+psycopg://u:p@h/db``) and HTTP URLs alike.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        if ":" in user:
            netloc = f"{user.split(':', 1)[0]}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAMS.search(key) for key, _ in pairs):
            query = urlencode(
                [(key, MASK if _SECRET_PARAMS.search(key) else value) for key, value in pairs],
                safe="*",
            )
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))
