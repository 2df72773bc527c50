"""The champion/challenger gate: vectorised macro-F1, paired bootstrap, decide()."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from triage_ml.registry import gate
from triage_ml.settings import GateSettings

pytestmark = pytest.mark.unit

CLASSES = ("Account", "Billing", "Shipping", "Technical")
# Fewer resamples than production: the tests need the sign, not three decimals.
GATE = GateSettings(bootstrap_resamples=400)


def random_labels(seed: int, n: int = 300, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Two independent label vectors over ``k`` classes."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, k, size=n), rng.integers(0, k, size=n)


def noisy_copy(truth: list[str], error_rate: float, seed: int) -> list[str]:
    """``truth`` with a share of rows replaced by another class."""
    rng = np.random.default_rng(seed)
    out = list(truth)
    for i in np.flatnonzero(rng.random(len(truth)) < error_rate):
        out[i] = CLASSES[
            (CLASSES.index(truth[i]) + 1 + rng.integers(0, len(CLASSES) - 1)) % len(CLASSES)
        ]
    return out


def truth_rows(n: int = 400, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [CLASSES[i] for i in rng.integers(0, len(CLASSES), size=n)]


def scores(macro: float, **extra: float) -> dict[str, float]:
    """A metrics dict as evaluate_predictions would return it."""
    base = {"category_macro_f1": macro, "priority_macro_f1": 0.6, "priority_urgent_recall": 0.6}
    base.update({f"category_f1.{c}": macro for c in CLASSES})
    base.update({k.replace("__", "."): v for k, v in extra.items()})
    return base


def failed(decision: gate.Decision) -> set[str]:
    return {c.name for c in decision.checks if not c.passed}


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_macro_f1_with_unit_weights_matches_sklearn(seed: int) -> None:
    truth, pred = random_labels(seed)
    ours = gate.macro_f1_resampled(truth, pred, np.ones((1, len(truth))), 5)
    assert ours[0] == pytest.approx(f1_score(truth, pred, average="macro"))


def test_macro_f1_ignores_classes_absent_from_the_truth_like_category_metrics() -> None:
    # category_macro_f1 averages over the true labels only; the bootstrap must agree.
    truth = np.array([0, 0, 1, 1, 1, 2])
    pred = np.array([0, 3, 1, 1, 2, 2])
    ours = gate.macro_f1_resampled(truth, pred, np.ones((1, 6)), 4)
    assert ours[0] == pytest.approx(f1_score(truth, pred, labels=[0, 1, 2], average="macro"))


def test_macro_f1_with_integer_weights_equals_repeated_rows() -> None:
    truth, pred = random_labels(7, n=50)
    weights = np.random.default_rng(7).integers(0, 3, size=50)
    ours = gate.macro_f1_resampled(truth, pred, weights[None, :].astype(float), 5)
    repeated = f1_score(
        np.repeat(truth, weights),
        np.repeat(pred, weights),
        labels=sorted(set(np.repeat(truth, weights))),
        average="macro",
    )
    assert ours[0] == pytest.approx(repeated)


def test_bootstrap_of_identical_predictions_is_exactly_zero() -> None:
    truth = truth_rows()
    pred = noisy_copy(truth, 0.2, seed=1)
    assert gate.paired_bootstrap(truth, pred, pred, 200, 0.95) == (0.0, 0.0)


def test_bootstrap_of_a_clearly_better_challenger_lies_above_zero() -> None:
    truth = truth_rows()
    low, high = gate.paired_bootstrap(
        truth, noisy_copy(truth, 0.05, 1), noisy_copy(truth, 0.30, 2), 400, 0.95
    )
    assert 0 < low < high


def test_bootstrap_of_a_noise_level_difference_straddles_zero() -> None:
    truth = truth_rows()
    champion = noisy_copy(truth, 0.2, seed=1)
    challenger = list(champion)
    # Fix two rows and break two others: no real difference.
    wrong = [i for i, (p, t) in enumerate(zip(champion, truth)) if p != t][:2]
    right = [i for i, (p, t) in enumerate(zip(champion, truth)) if p == t][:2]
    for i in wrong:
        challenger[i] = truth[i]
    for i in right:
        challenger[i] = CLASSES[(CLASSES.index(truth[i]) + 1) % len(CLASSES)]
    low, high = gate.paired_bootstrap(truth, challenger, champion, 400, 0.95)
    assert low < 0 < high


def test_bootstrap_is_reproducible_for_a_seed() -> None:
    truth = truth_rows()
    a, b = noisy_copy(truth, 0.1, 1), noisy_copy(truth, 0.15, 2)
    assert gate.paired_bootstrap(truth, a, b, 100, 0.9, seed=5) == gate.paired_bootstrap(
        truth, a, b, 100, 0.9, seed=5
    )


def test_first_model_above_the_floor_is_promoted() -> None:
    truth = truth_rows()
    decision = gate.decide(scores(0.8), None, truth, noisy_copy(truth, 0.2, 1), None, GATE)
    assert decision.promote
    assert decision.interval is None
    assert decision.reason.startswith("first model")


def test_first_model_below_the_floor_is_rejected() -> None:
    truth = truth_rows()
    decision = gate.decide(scores(0.2), None, truth, noisy_copy(truth, 0.8, 1), None, GATE)
    assert not decision.promote
    assert failed(decision) == {"threshold"}
    assert "threshold" in decision.reason and "category_macro_f1" in decision.reason


def test_an_equal_model_is_not_promoted() -> None:
    truth = truth_rows()
    pred = noisy_copy(truth, 0.2, 1)
    decision = gate.decide(scores(0.8), scores(0.8), truth, pred, pred, GATE)
    assert not decision.promote
    assert {"threshold", "bootstrap"} <= failed(decision)
    assert decision.interval == (0.0, 0.0)


def test_a_clearly_better_model_is_promoted() -> None:
    truth = truth_rows()
    decision = gate.decide(
        scores(0.95),
        scores(0.7),
        truth,
        noisy_copy(truth, 0.05, 1),
        noisy_copy(truth, 0.3, 2),
        GATE,
    )
    assert decision.promote, decision.reason
    assert decision.reason.startswith("promoted")
    assert decision.interval is not None and decision.interval[0] > 0


def test_a_better_model_with_a_collapsing_class_is_rejected() -> None:
    truth = truth_rows()
    challenger = scores(0.95, category_f1__Shipping=0.5)
    decision = gate.decide(
        challenger, scores(0.7), truth, noisy_copy(truth, 0.05, 1), noisy_copy(truth, 0.3, 2), GATE
    )
    assert not decision.promote
    assert failed(decision) == {"category_f1.Shipping"}
    assert "category_f1.Shipping" in decision.reason


def test_a_priority_drop_beyond_tolerance_is_rejected() -> None:
    truth = truth_rows()
    challenger = scores(0.95, priority_macro_f1=0.6 - 2 * GATE.max_priority_drop)
    decision = gate.decide(
        challenger, scores(0.7), truth, noisy_copy(truth, 0.05, 1), noisy_copy(truth, 0.3, 2), GATE
    )
    assert not decision.promote
    assert failed(decision) == {"priority_macro_f1"}


def test_a_priority_drop_within_tolerance_is_accepted() -> None:
    truth = truth_rows()
    challenger = scores(0.95, priority_macro_f1=0.6 - GATE.max_priority_drop / 2)
    decision = gate.decide(
        challenger, scores(0.7), truth, noisy_copy(truth, 0.05, 1), noisy_copy(truth, 0.3, 2), GATE
    )
    assert decision.promote, decision.reason


def test_urgent_recall_below_the_floor_is_rejected() -> None:
    truth = truth_rows()
    challenger = scores(0.95, priority_urgent_recall=GATE.urgent_recall_floor / 2)
    decision = gate.decide(
        challenger, scores(0.7), truth, noisy_copy(truth, 0.05, 1), noisy_copy(truth, 0.3, 2), GATE
    )
    assert not decision.promote
    assert failed(decision) == {"priority_urgent_recall"}


def test_the_reason_names_every_failing_check() -> None:
    truth = truth_rows()
    pred = noisy_copy(truth, 0.2, 1)
    challenger = scores(0.8, priority_urgent_recall=0.0, category_f1__Billing=0.1)
    decision = gate.decide(challenger, scores(0.8), truth, pred, pred, GATE)
    names = failed(decision)
    assert names == {"threshold", "bootstrap", "priority_urgent_recall", "category_f1.Billing"}
    for name in names:
        assert name in decision.reason
    assert "category_f1.Account" not in decision.reason


def test_guardrails_apply_even_without_champion_predictions() -> None:
    # Champion figures alone are enough for the guardrails; only the bootstrap needs rows.
    truth = truth_rows()
    challenger = scores(0.95, category_f1__Shipping=0.5)
    decision = gate.decide(challenger, scores(0.7), truth, noisy_copy(truth, 0.05, 1), None, GATE)
    assert not decision.promote
    # Significance cannot be shown without paired predictions, so it fails rather than is skipped.
    assert failed(decision) == {"bootstrap", "category_f1.Shipping"}
    assert decision.interval is None


def test_significance_can_be_switched_off() -> None:
    truth = truth_rows()
    pred = noisy_copy(truth, 0.2, 1)
    settings = GateSettings(bootstrap_resamples=100, require_significance=False)
    decision = gate.decide(scores(0.85), scores(0.8), truth, pred, pred, settings)
    assert decision.promote, decision.reason
    assert "bootstrap" not in {c.name for c in decision.checks}


def test_decision_is_json_ready() -> None:
    import json

    truth = truth_rows()
    decision = gate.decide(scores(0.8), None, truth, truth, None, GATE)
    record = json.loads(json.dumps(decision.as_dict()))
    assert record["promote"] is True and record["checks"][0]["name"] == "threshold"


def test_a_challenger_bound_for_the_parallel_run_needs_no_offline_gain_but_keeps_guardrails() -> (
    None
):
    truth = truth_rows()
    same = noisy_copy(truth, 0.2, seed=1)
    offline = gate.decide(scores(0.8), scores(0.8), truth, same, same, GATE)
    assert not offline.promote and {"threshold", "bootstrap"} <= failed(offline)
    live = gate.decide(scores(0.8), scores(0.8), truth, same, same, GATE, gain_judged_live=True)
    assert live.promote and live.reason.endswith("the gain is judged on live rows")
    assert "bootstrap" not in {c.name for c in live.checks}
    worse = gate.decide(
        scores(0.8, priority_macro_f1=0.4),
        scores(0.8),
        truth,
        same,
        same,
        GATE,
        gain_judged_live=True,
    )
    assert not worse.promote and failed(worse) == {"priority_macro_f1"}
    below_floor = gate.decide(
        scores(0.2), scores(0.2), truth, same, same, GATE, gain_judged_live=True
    )
    assert failed(below_floor) == {"threshold"}
