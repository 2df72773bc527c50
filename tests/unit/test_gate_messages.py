"""What the gate says: each check's message says whether it passed and what failed, rounded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pytest

from triage_ml import registry
from triage_ml.registry import gate, promotion
from triage_ml.settings import GateSettings, Settings

pytestmark = pytest.mark.unit

GATE = GateSettings(bootstrap_resamples=100)
# A figure printed with more than four decimals.
UNROUNDED = re.compile(r"\d\.\d{5,}")


def check_named(checks: list[gate.Check], name: str) -> gate.Check:
    return next(c for c in checks if c.name == name)


def test_threshold_passes_with_the_floor_and_the_gain_stated() -> None:
    check = gate.mlflow_threshold_check(
        {"category_macro_f1": 0.812345678}, {"category_macro_f1": 0.8}, GATE
    )
    assert check.passed
    assert check.message == (
        "threshold passed: category_macro_f1 0.8123 is at or above the floor 0.3000; "
        "its gain over the champion's 0.8000 is +0.0123, at least the required +0.0050"
    )


def test_threshold_below_the_floor_says_so() -> None:
    check = gate.mlflow_threshold_check({"category_macro_f1": 0.123456789}, None, GATE)
    assert not check.passed
    assert check.message == "threshold failed: category_macro_f1 0.1235 is below the floor 0.3000"


def test_threshold_with_too_small_a_gain_says_which_part_failed() -> None:
    check = gate.mlflow_threshold_check(
        {"category_macro_f1": 0.80123}, {"category_macro_f1": 0.8}, GATE
    )
    assert not check.passed
    assert "0.8012 is at or above the floor 0.3000" in check.message
    assert "is +0.0012, less than the required +0.0050" in check.message
    assert check.message.startswith("threshold failed: ")


def test_bootstrap_failure_says_the_interval_does_not_lie_above_zero() -> None:
    check = gate.significance_check((-0.0120004, 0.00399999), GATE)
    assert not check.passed
    assert check.message == (
        "bootstrap failed: the 95% interval of the gain [-0.0120, +0.0040] does not lie above 0"
    )


def test_bootstrap_pass_says_the_interval_lies_above_zero() -> None:
    check = gate.significance_check((0.00211111, 0.0312345), GATE)
    assert check.passed
    assert check.message == (
        "bootstrap passed: the 95% interval of the gain [+0.0021, +0.0312] lies above 0"
    )


def test_bootstrap_without_paired_predictions_fails_and_says_why() -> None:
    check = gate.significance_check(None, GATE)
    assert not check.passed and "no champion predictions" in check.message


@pytest.mark.parametrize(
    ("challenger", "passed", "words"),
    [
        (0.595, True, "0.5950 against the champion's 0.6000: a drop of +0.0050, within"),
        (0.55, False, "0.5500 against the champion's 0.6000: a drop of +0.0500, beyond"),
    ],
)
def test_priority_drop_messages(challenger: float, passed: bool, words: str) -> None:
    checks = gate.guardrails({"priority_macro_f1": challenger}, {"priority_macro_f1": 0.6}, GATE)
    check = check_named(checks, "priority_macro_f1")
    assert check.passed is passed
    assert words in check.message and check.message.endswith("the tolerance 0.0100")
    assert check.message.startswith(f"priority_macro_f1 {'passed' if passed else 'failed'}: ")


@pytest.mark.parametrize(
    ("recall", "passed", "words"),
    [(0.3333333, True, "0.3333 is at or above the floor 0.3000"), (0.1, False, "0.1000 is below")],
)
def test_urgent_recall_messages(recall: float, passed: bool, words: str) -> None:
    checks = gate.guardrails({"priority_urgent_recall": recall}, {}, GATE)
    check = check_named(checks, "priority_urgent_recall")
    assert check.passed is passed and words in check.message


@pytest.mark.parametrize(("value", "passed"), [(0.9, True), (0.5, False)])
def test_class_f1_drop_messages(value: float, passed: bool) -> None:
    checks = gate.guardrails({"category_f1.Billing": value}, {"category_f1.Billing": 0.92}, GATE)
    check = check_named(checks, "category_f1.Billing")
    assert check.passed is passed
    assert ("within" if passed else "beyond") + " the tolerance 0.0500" in check.message


def test_unseen_rows_rejection_says_what_failed() -> None:
    decision = gate.too_few_unseen({"category_macro_f1": 0.9}, 4, 50, "3", GATE)
    assert decision.reason.startswith("rejected: unseen rows failed: 4 of 50 test rows")


def test_a_rejection_lists_each_failed_check_and_no_passed_one() -> None:
    truth = ["a", "b"] * 50
    challenger = {"category_macro_f1": 0.8, "priority_urgent_recall": 0.1, "category_f1.a": 0.8}
    champion = {"category_macro_f1": 0.8, "category_f1.a": 0.8}
    decision = gate.decide(challenger, champion, truth, truth, truth, GATE)
    failed = [c for c in decision.checks if not c.passed]
    assert [c.name for c in failed] == ["threshold", "bootstrap", "priority_urgent_recall"]
    assert decision.reason == "rejected: " + "; ".join(c.message for c in failed)
    assert "bootstrap failed: the 95% interval of the gain [+0.0000, +0.0000] does not lie" in (
        decision.reason
    )
    assert "lies above 0" not in decision.reason and "passed" not in decision.reason
    assert "category_f1.a" not in decision.reason


def test_every_message_of_a_decision_is_rounded() -> None:
    truth = ["a", "b", "c"] * 40
    pred = truth[:-7] + ["a"] * 7
    challenger = {"category_macro_f1": 0.7123456789, "priority_macro_f1": 0.51234567}
    champion = {"category_macro_f1": 0.70987654321, "priority_macro_f1": 0.5987654}
    decision = gate.decide(challenger, champion, truth, pred, truth, GATE)
    texts = [decision.reason, *(c.message for c in decision.checks)]
    assert not [t for t in texts if UNROUNDED.search(t)], texts


def test_rounded_rounds_floats_at_any_depth_and_leaves_the_rest() -> None:
    value = {"a": 0.123456, "b": [1, (0.98765, "x")], "c": True, "d": None, "e": 7}
    assert gate.rounded(value) == {
        "a": 0.1235,
        "b": [1, [0.9877, "x"]],
        "c": True,
        "d": None,
        "e": 7,
    }


def test_the_decision_logged_to_mlflow_is_rounded_but_the_returned_record_is_not(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    registry.use_workspace(settings)
    truth = ["a", "b"] * 30
    champion = {"category_macro_f1": 0.60123456, "n": 60}
    decision = gate.decide({"category_macro_f1": 0.9}, champion, truth, truth, truth, GATE)
    registered = registry.RegisteredModel(settings.model_name, "2", "models:/x/2", "run")
    with mlflow.start_run() as run:
        record = promotion.log_decision(decision, registered, "1", settings)
    logged = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="promotion/decision.json", dst_path=tmp_path
            )
        ).read_text()
    )
    assert logged["champion"] == {"category_macro_f1": 0.6012, "n": 60}
    assert record["champion"]["category_macro_f1"] == 0.60123456
    assert logged["gate"]["min_delta"] == GATE.min_delta and logged["reason"] == decision.reason
    metrics = mlflow.get_run(run.info.run_id).data.metrics
    assert metrics["champion.category_macro_f1"] == 0.6012
