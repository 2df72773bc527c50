"""The ``triage-ml`` command line."""

from triage_ml.cli.app import main

__all__ = ["main"]
