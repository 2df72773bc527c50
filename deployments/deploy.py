"""Register triage-ml's work pool and scheduled deployments: exactly ``triage-ml deploy``.

The deployments are defined once, in ``triage_ml.flows.deployments``, from the
settings in the environment (``TRIAGE_PREFECT_API_URL``, ``TRIAGE_SCHEDULES__*``)::

    TRIAGE_PREFECT_API_URL=http://127.0.0.1:4200/api python deployments/deploy.py [--json]
"""

from __future__ import annotations

import sys

from triage_ml import cli

if __name__ == "__main__":
    sys.exit(cli.main(["deploy", *sys.argv[1:]]))
