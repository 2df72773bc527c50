"""``python -m triage_ml.api [OPTIONS]``: the same as ``triage-ml api serve [OPTIONS]``."""

from __future__ import annotations

import sys

from triage_ml.cli.app import main

if __name__ == "__main__":
    sys.exit(main(["api", "serve", *sys.argv[1:]]))
