"""Errors that reach a user as one clear line, never as a bare traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class TriageError(Exception):
    """A problem the user can fix: bad input, bad configuration, missing state."""


class InputError(TriageError):
    """A source file or table cannot be read or mapped."""


class TrainingDataError(TriageError):
    """The stored data cannot train a model (too few rows, a single class...)."""


class RegistryError(TriageError):
    """The model registry does not hold what was asked for."""


class ConfigError(TriageError):
    """The configuration (environment, config file, secrets directory) is unusable."""


class StoreError(TriageError):
    """The ticket store cannot be opened: a bad URL, an unreachable server, an unknown schema
    revision."""


def first_invalid(exc: ValidationError) -> tuple[str, str]:
    """The dotted field and the message of the first problem pydantic found (one line's worth)."""
    first = exc.errors()[0]
    return ".".join(str(part) for part in first["loc"]), first["msg"]
