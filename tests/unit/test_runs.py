"""Run names, the git SHA tag, configuration params and the parent's comparable metrics."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from triage_ml import registry
from triage_ml.registry import runs
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit

DECEMBER = datetime(2026, 12, 6, tzinfo=UTC)


def test_the_parent_run_is_named_by_month_and_tickets() -> None:
    assert registry.run_name(6000, DECEMBER) == "retrain 2026-12 · 6,000 tickets"
    frame = pd.DataFrame({"category": ["a", "b", "a"]})
    assert registry.run_name(frame, DECEMBER) == "retrain 2026-12 · 3 tickets"
    assert registry.run_name({"a": 1}, DECEMBER) == "retrain 2026-12 · 1 ticket"
    assert registry.run_name(10).startswith(f"retrain {datetime.now(UTC):%Y-%m} ")


def test_the_git_sha_is_the_checkout_head() -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=Path(runs.__file__).parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert registry.git_sha() == head
    assert registry.run_tags() == {"git_sha": head}


def test_without_git_the_sha_is_the_package_version(monkeypatch: pytest.MonkeyPatch) -> None:
    runs.git_sha.cache_clear()
    monkeypatch.setenv("PATH", "")
    try:
        assert runs.git_sha() == runs.package_version()
        assert runs.package_version().startswith("triage-ml ")
    finally:
        runs.git_sha.cache_clear()


def test_configuration_params_hold_candidates_cv_seed_gate_and_encoder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path))
    monkeypatch.setenv("TRIAGE_TRAIN__CANDIDATE_PARAMS", '{"logreg": {"max_iter": 50}}')
    params = runs.configuration_params(Settings())
    assert (
        params["train.candidates"] == "baseline,logreg,linear_svc,complement_nb,lightgbm,ensemble"
    )
    assert params["train.cv_folds"] == 3 and params["train.cv_rows"] == 8000
    assert params["train.seed"] == 0 and params["train.abstain_rate"] == 0.0
    assert params["train.priority_model"] == "auto" and params["train.encoder"] is False
    assert params["train.candidate_params.logreg.max_iter"] == 50
    assert params["gate.min_delta"] == 0.005 and params["gate.metric"] == "category_macro_f1"
    assert all(not isinstance(v, (dict, list, tuple)) for v in params.values())


def test_the_parent_logs_the_childrens_names_and_test_prefixed_figures() -> None:
    cv = {
        "cv_category_macro_f1": 0.8,
        "cv_category_macro_f1_se": 0.01,
        "cv_settings_tried": 2.0,
        "cv_macro_f1_mean": 0.8,
    }
    out = runs.comparable_metrics(
        cv, {"category_macro_f1": 0.7, "n": 10.0}, {"fit_seconds_total": 3.0}
    )
    assert out == {
        "cv_category_macro_f1": 0.8,
        "cv_category_macro_f1_se": 0.01,
        "cv_settings_tried": 2.0,
        "test_category_macro_f1": 0.7,
        "test_n": 10.0,
        "fit_seconds": 3.0,
    }
