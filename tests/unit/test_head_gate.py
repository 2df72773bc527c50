"""The gate's guardrail per further head: its macro-F1 may fall at most heads.max_macro_f1_drop."""

from __future__ import annotations

import pandas as pd
import pytest

from triage_ml.registry import gate
from triage_ml.settings import GateSettings, HeadSettings
from triage_ml.training.metrics import evaluate_predictions

pytestmark = pytest.mark.unit

GATE = GateSettings(require_significance=False, absolute_floor=0.1)
TRUTH = ["Billing", "Account"] * 10


def scores(category: float = 0.8, **heads: float) -> dict[str, float]:
    """Figures of a model: its category macro-F1 (a challenger's gains) and heads' macro-F1."""
    return {"category_macro_f1": category, **{f"{k}_macro_f1": v for k, v in heads.items()}}


def test_a_head_that_falls_too_far_blocks_promotion_naming_it_and_both_figures() -> None:
    decision = gate.decide(
        scores(0.9, subcategory=0.70, type=0.90),
        scores(subcategory=0.80, type=0.90),
        TRUTH,
        TRUTH,
        TRUTH,
        GATE,
        heads=HeadSettings(max_macro_f1_drop=0.05),
    )
    assert not decision.promote
    assert "subcategory_macro_f1 failed: 0.7000 against the champion's 0.8000" in decision.reason
    assert "type_macro_f1" not in decision.reason
    assert [c.name for c in decision.checks if c.name.endswith("_macro_f1")] == [
        "subcategory_macro_f1",
        "type_macro_f1",
    ]


def test_the_tolerance_comes_from_the_head_settings() -> None:
    challenger, champion = scores(0.9, team=0.76), scores(team=0.80)
    loose = gate.decide(
        challenger, champion, TRUTH, TRUTH, TRUTH, GATE, heads=HeadSettings(max_macro_f1_drop=0.05)
    )
    strict = gate.decide(challenger, champion, TRUTH, TRUTH, TRUTH, GATE, heads=HeadSettings())
    assert loose.promote
    assert not strict.promote and "team_macro_f1 failed" in strict.reason


def test_a_head_only_one_side_has_is_not_judged() -> None:
    new_head = gate.decide(scores(0.9, type=0.1), scores(), TRUTH, TRUTH, TRUTH, GATE)
    lost_head = gate.guardrails(scores(), scores(type=0.9), GATE)
    assert new_head.promote and lost_head == []


def test_the_gate_judges_heads_on_figures_from_the_same_rows() -> None:
    truth = pd.DataFrame({"category": TRUTH, "type": ["Incident", "Request"] * 10})
    answer = pd.DataFrame({"category": TRUTH, "category_proba": 0.9, "top3": '[{"category": "x"}]'})
    good = answer.assign(type=truth["type"])
    worse = answer.assign(type=["Incident"] * 20)
    levels = ("high", "low")
    decision = gate.decide(
        evaluate_predictions(worse, truth, levels),
        evaluate_predictions(good, truth, levels),
        TRUTH,
        TRUTH,
        TRUTH,
        GATE,
        heads=HeadSettings(),
    )
    check = next(c for c in decision.checks if c.name == "type_macro_f1")
    assert not check.passed and check.detail.startswith("0.3333 against the champion's 1.0000")
    assert "type_macro_f1 failed" in decision.reason
