"""Data tests of the whole-batch GX suite (data_contracts/tickets_batch.json) on small batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from triage_ml import synth
from triage_ml.ingest import contracts
from triage_ml.ingest.expectations import (
    Baseline,
    BatchThresholds,
    load_suite,
    profile,
    suite_parameters,
    validate_batch,
)

pytestmark = pytest.mark.data

CATEGORIES = synth.CATEGORIES
TRAINING_PERCENT = (22, 27, 15, 13, 10, 7, 6)  # of CATEGORIES, 100 in all
BASELINE = Baseline(
    recent_volumes=(90, 100, 120),
    label_distribution=dict(zip(CATEGORIES, np.divide(TRAINING_PERCENT, 100))),
    known_categories=CATEGORIES,
    body_length_mean=150.0,
)


def canonical(percent: tuple[int, ...] = TRAINING_PERCENT, **columns: object) -> pd.DataFrame:
    """100 canonical tickets whose categories follow ``percent`` exactly."""
    n = sum(percent)
    frame = pd.DataFrame(
        {
            "ticket_id": [f"t{i}" for i in range(n)],
            "category": np.repeat(CATEGORIES, percent),
            "priority": "normal",
            "subject": "hello",
            "body": ["x" * (100 + i) for i in range(n)],
        }
    )
    return frame.assign(**columns)


@pytest.fixture(scope="module")
def gx_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One GX project for the module's checks (a project takes ~0.1 s to create, a run ~0.5 s)."""
    return tmp_path_factory.mktemp("gx")


def test_profile_keeps_lengths_not_text() -> None:
    frame = canonical().iloc[:3].assign(body=["abc", "", None], subject=[None, "s", "  x"])
    out = profile(frame)
    assert list(out.columns) == [
        "ticket_id",
        "category",
        "priority",
        "body_length",
        "subject_length",
    ]
    assert out["body_length"].tolist()[0] == 3 and out["body_length"].iloc[1:].isna().all()
    assert pd.isna(out["subject_length"].iloc[0]) and out["subject_length"].iloc[2] == 3
    assert "category" not in profile(frame.drop(columns="category")).columns


def test_suite_file_is_a_gx_suite_and_drops_what_it_cannot_resolve(tmp_path: Path) -> None:
    params = suite_parameters(BASELINE, BatchThresholds(), labeled=True)
    full = load_suite(params)
    assert full.name == "tickets_batch" and len(full.expectations) == 6
    first = load_suite(suite_parameters(Baseline(), BatchThresholds(), labeled=True))
    assert {e.expectation_type for e in first.expectations} == {
        "expect_column_values_to_not_be_null",
        "expect_column_proportion_of_unique_values_to_be_between",
    }
    config = json.loads((contracts.contracts_dir() / "tickets_batch.json").read_text())
    config["expectations"][1]["type"] = "expect_column_values_to_be_nul"  # a typo GX would only log
    (tmp_path / "bad.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not valid GX configuration"):
        load_suite(params, tmp_path / "bad.json")
    config["expectations"][1]["type"] = "expect_column_values_to_not_be_null"
    config["expectations"][1]["kwargs"]["mostly"] = {
        "$PARAMETER": "1 - max_nul_share"
    }  # must not pass as "no baseline"
    (tmp_path / "typo.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="cannot resolve"):
        load_suite(params, tmp_path / "typo.json")


def test_clean_batch_passes(gx_root: Path) -> None:
    report = validate_batch(profile(canonical()), BASELINE, gx_root, "clean")
    assert report.passed and report.failures == ()
    assert report.statistics["rows"] == 100 and report.statistics["body_null_share"] == 0
    assert report.statistics["label_kl_divergence"] == pytest.approx(0, abs=1e-9)
    assert set(report.statistics) == {
        "rows",
        "body_null_share",
        "ticket_id_unique_share",
        "body_length_mean",
        "unknown_label_share",
        "label_kl_divergence",
    }


def test_mostly_empty_batch_fails_on_body_nulls(gx_root: Path) -> None:
    batch = profile(canonical(body=["some text"] * 10 + [""] * 90))
    report = validate_batch(batch, BASELINE, gx_root, "empty")
    assert not report.passed
    assert "body: 90% of rows are empty (limit 10%)" in report.failures
    assert validate_batch(
        batch,
        BASELINE,
        gx_root,
        "empty-allowed",
        thresholds=BatchThresholds(max_null_share=0.95, min_length_ratio=0),
    ).passed


def test_half_unknown_labels_fail(gx_root: Path) -> None:
    batch = profile(canonical(category=["Billing", "Refunds"] * 50))
    report = validate_batch(batch, BASELINE, gx_root, "unknown")
    assert any(line.startswith("category: 50% of labels are unknown") for line in report.failures)
    assert report.statistics["unknown_label_share"] == 0.5


def test_heavily_duplicated_ids_fail(gx_root: Path) -> None:
    report = validate_batch(
        profile(canonical(ticket_id=[f"t{i % 30}" for i in range(100)])), BASELINE, gx_root, "dups"
    )
    assert report.failures == (
        "ticket_id: only 30% of ticket ids are distinct (at most 20% may be duplicates)",
    )


def test_volume_far_above_recent_batches_fails(gx_root: Path) -> None:
    report = validate_batch(
        profile(canonical()), Baseline(recent_volumes=(2, 2, 3)), gx_root, "volume"
    )
    assert report.failures == (
        "volume: 100 rows, outside 0..20 (0.1x..10x the median of recent batches, 2)",
    )


@pytest.mark.parametrize(
    ("percent", "passes"), [((27, 22, 15, 13, 10, 7, 6), True), ((70, 10, 5, 5, 4, 3, 3), False)]
)
def test_label_shift_against_training(
    gx_root: Path, percent: tuple[int, ...], passes: bool
) -> None:
    report = validate_batch(profile(canonical(percent)), BASELINE, gx_root, f"shift-{percent[0]}")
    assert report.passed is passes
    assert passes or any(
        line.startswith(
            "category: label distribution shifted from the training data, KL divergence"
        )
        for line in report.failures
    )


def test_first_batch_runs_only_baseline_free_checks(gx_root: Path) -> None:
    report = validate_batch(profile(canonical()), Baseline(), gx_root, "first")
    assert report.passed
    assert set(report.statistics) == {"rows", "body_null_share", "ticket_id_unique_share"}


def test_unlabeled_batch_skips_label_checks(gx_root: Path) -> None:
    batch = profile(canonical().drop(columns="category"))
    report = validate_batch(batch, BASELINE, gx_root, "unlabeled", labeled=False)
    assert report.passed and "body_length_mean" in report.statistics
    assert not {"unknown_label_share", "label_kl_divergence"} & set(report.statistics)
    with pytest.raises(ValueError, match="category"):
        validate_batch(batch, BASELINE, gx_root, "unlabeled", labeled=True)


def test_docs_are_built_and_nothing_is_written_outside_gx_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd, home, root = tmp_path / "cwd", tmp_path / "home", tmp_path / "workspace" / "gx"
    cwd.mkdir(), home.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(home))
    report = validate_batch(profile(canonical()), BASELINE, root, "docs")
    assert (
        report.docs_path is not None
        and report.docs_path.is_file()
        and report.docs_path.suffix == ".html"
    )
    assert report.docs_path.is_relative_to(root)
    assert (root / "uncommitted" / "data_docs" / "local_site" / "index.html").is_file()
    assert not list(cwd.iterdir()) and not list(home.iterdir())
    assert {p.name for p in tmp_path.iterdir()} == {"cwd", "home", "workspace"}


def test_validating_the_same_batch_twice_works(tmp_path: Path) -> None:
    first = validate_batch(profile(canonical()), BASELINE, tmp_path, "again")
    second = validate_batch(profile(canonical()), BASELINE, tmp_path, "again")
    assert first.passed and second.passed
    assert (
        first.docs_path != second.docs_path
        and first.docs_path.is_file()
        and second.docs_path.is_file()
    )


def test_a_check_that_cannot_run_is_reported_not_hidden(gx_root: Path) -> None:
    batch = profile(canonical()).drop(columns="body_length")
    report = validate_batch(batch, BASELINE, gx_root, "no-body")
    assert not report.passed
    assert (
        "body_length: expect_column_values_to_not_be_null could not run: "
        'Error: The column "body_length"' in " ".join(report.failures)
    )
