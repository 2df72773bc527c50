"""How retraining runs are named, tagged and configured in MLflow, so runs compare column by column.

A retraining is one parent run, named by month and data
(``retrain 2026-12 · 6,000 tickets``, :func:`run_name`), with one child run
per cross-validated candidate. Parent and children share metric names, so
the runs table lines them up:

- ``cv_category_macro_f1`` and ``cv_category_macro_f1_se``: mean category
  macro-F1 over the cross-validation folds and its standard error, with
  ``cv_category_macro_f1_fold_<i>`` per fold and ``cv_settings_tried``. A
  child logs its candidate's; the parent logs the chosen candidate's.
- ``fit_seconds``: wall seconds of fitting. A child's is its cross-validation;
  the parent's is every fit of the retraining (also kept as
  ``fit_seconds_total`` for earlier readers).
- ``test_<metric>`` (``test_category_macro_f1``, ``test_category_f1.<class>``
  ...): measured on the held-out test rows, so only on the parent, where the
  chosen candidate was measured. The parent keeps the unprefixed names too
  (``category_macro_f1``), which ``status`` and the gate's records read.
  Children keep ``cv_macro_f1_mean`` and ``cv_macro_f1_std_error`` for the
  same reason.

Every figure is logged rounded to 4 places (:func:`log_metrics`): the runs table
shows what was logged, and no decision reads a figure back from MLflow.

Configuration is logged as params on the parent (:func:`configuration_params`):
``train.*`` and ``gate.*`` settings, the model name. Every run carries a
``git_sha`` tag (:func:`git_sha`).
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import mlflow
import pandas as pd

from triage_ml.registry import gate
from triage_ml.settings import Settings

PLACES = gate.PLACES  # the gate's messages and the runs table show the same figures
# The address `make mlflow-ui` serves the workspace's local store on.
MLFLOW_UI_DEFAULT = "http://127.0.0.1:5000"

RUN_PREFIX = "retrain "
# The parent runs' name before runs were named by date and data; status still lists them.
LEGACY_RUN_NAME = "monthly-retrain"
GIT_SHA_TAG = "git_sha"


def run_name(rows: pd.DataFrame | Mapping[str, int] | int, when: datetime | None = None) -> str:
    """The parent run's name: month of the run and the number of labeled tickets it learned from.

    Args:
        rows: the snapshot's frame, its class counts, or its row count.
        when: the run's time; None is now (UTC).

    Returns:
        For example ``retrain 2026-12 · 6,000 tickets``.
    """
    if isinstance(rows, pd.DataFrame):
        count = len(rows)
    elif isinstance(rows, Mapping):
        count = int(sum(rows.values()))
    else:
        count = int(rows)
    month = (when or datetime.now(UTC)).strftime("%Y-%m")
    return f"{RUN_PREFIX}{month} · {count:,} ticket{'' if count == 1 else 's'}"


@functools.cache
def git_sha() -> str:
    """The commit of the checkout this code runs from, else the installed package's version.

    The commit counts only if the package's ``__init__.py`` is tracked there,
    so a package installed inside some other repository does not take that
    one's commit. Never fails: without git, the answer is ``triage-ml <version>``.
    """
    package = Path(__file__).resolve().parents[1]
    try:
        subprocess.run(
            ["git", "ls-files", "--error-unmatch", "__init__.py"],
            cwd=package,
            capture_output=True,
            check=True,
            timeout=10,
        )
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=package,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        return head.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return package_version()


def package_version() -> str:
    """``triage-ml <version>`` of the installed package (``unknown`` when not installed)."""
    try:
        return f"triage-ml {version('triage-ml')}"
    except PackageNotFoundError:
        return "triage-ml unknown"


def run_tags() -> dict[str, str]:
    """Tags every run of a retraining carries."""
    return {GIT_SHA_TAG: git_sha()}


def configuration_params(settings: Settings) -> dict[str, Any]:
    """What the retraining was told to do, as flat MLflow params (``train.*``, ``gate.*``).

    Candidate settings overrides become ``train.candidate_params.<candidate>.<name>``.
    """
    train = settings.train.model_dump(exclude={"candidate_params"})
    params: dict[str, Any] = {f"train.{k}": _param_value(v) for k, v in train.items()}
    for candidate, overrides in sorted(settings.train.candidate_params.items()):
        for name, value in sorted(overrides.items()):
            params[f"train.candidate_params.{candidate}.{name}"] = _param_value(value)
    gate = settings.gate.model_dump()
    params.update({f"gate.{k}": _param_value(v) for k, v in gate.items()})
    params["model_name"] = settings.model_name
    return params


def _param_value(value: Any) -> Any:
    # Lists read better as "a,b,c" than as a Python repr in the runs table.
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value


def comparable_metrics(
    cv: Mapping[str, float], test: Mapping[str, float], seconds: Mapping[str, float]
) -> dict[str, float]:
    """The parent's metrics under the names its children share (see the module docstring).

    Args:
        cv: the chosen candidate's cross-validation figures (``cv_...``).
        test: the challenger's figures on the test rows (unprefixed names).
        seconds: the stage timings (``fit_seconds_total`` among them).
    """
    out = {
        k: float(v)
        for k, v in cv.items()
        if k.startswith("cv_category_") or k == "cv_settings_tried"
    }
    out.update({f"test_{k}": float(v) for k, v in test.items()})
    if "fit_seconds_total" in seconds:
        out["fit_seconds"] = float(seconds["fit_seconds_total"])
    return out


def log_metrics(figures: Mapping[str, float]) -> None:
    """Log ``figures`` on the active run, each rounded to :data:`PLACES` places."""
    mlflow.log_metrics({name: round(float(value), PLACES) for name, value in figures.items()})


def ui_url(tracking_uri: str, experiment_id: str, run_id: str | None = None) -> tuple[str, str]:
    """The MLflow UI page of a run (without one, the runs table), and where that UI is.

    MLflow 3.17 opens an experiment on its GenAI overview, so the link names
    the runs table. An http(s) tracking URI is the server whose UI shows the
    run (its credentials left out of the link); a local store has no UI of its
    own until ``make mlflow-ui`` serves it, at :data:`MLFLOW_UI_DEFAULT`.
    """
    parts = urlsplit(tracking_uri)
    if parts.scheme in ("http", "https") and parts.hostname:
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        base = urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
        where = f"the MLflow tracking server {base}"
    else:
        base = MLFLOW_UI_DEFAULT
        where = f"the MLflow UI of the local store at {base}, once `make mlflow-ui` serves it"
    page = f"runs/{run_id}" if run_id else "runs"
    return f"{base}/#/experiments/{experiment_id}/{page}", where
