"""Mask personal data and credentials before anything is logged or shown.

The personal-data rules live in the model runtime (``triage_model.redact``),
because the model masks the text it learns from and predicts on with the
same rules; they are re-exported here, so there is one copy of them. The
credential masking of URLs is the platform's own.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from triage_model.redact import (
    ACCOUNT,
    EMAIL,
    IBAN_LETTERS,
    MASKS,
    PHONE_MARKED,
    PHONE_PLAIN,
    SIGNATURE,
    mask_personal_data,
)

__all__ = [
    "ACCOUNT",
    "EMAIL",
    "IBAN_LETTERS",
    "MASK",
    "MASKS",
    "PHONE_MARKED",
    "PHONE_PLAIN",
    "SIGNATURE",
    "mask_personal_data",
    "mask_url",
    "url_has_password",
]

# Query parameters that carry credentials in database and service URLs.
_SECRET_PARAMS = re.compile(r"pass|secret|token|key", re.IGNORECASE)
MASK = "***"
# Services that take a bare token as the user part (``https://<token>@host``);
# a database URL's bare user part is only a user name.
_TOKEN_SCHEMES = frozenset({"http", "https", "ws", "wss"})


def url_has_password(url: str) -> bool:
    """Whether ``url`` carries a password, in its user part or a query parameter."""
    return mask_url(url) != url


def mask_url(url: str) -> str:
    """``url`` with the password of its user part and credential-like query values replaced by
    ``***``; an HTTP URL's bare user part (a token) too.

    Works for SQLAlchemy URLs (``postgresql+psycopg://u:p@h/db``) and HTTP URLs alike.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        if ":" in user:
            netloc = f"{user.split(':', 1)[0]}:{MASK}@{host}"
        elif parts.scheme.lower() in _TOKEN_SCHEMES:
            netloc = f"{MASK}@{host}"
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
