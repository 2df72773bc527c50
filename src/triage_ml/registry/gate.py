"""Champion vs challenger on the same rows: thresholds, bootstrap, guardrails.

MLflow's ``validate_evaluation_results`` with ``MetricThreshold`` checks the
absolute floor and the minimum gain. It has no paired significance test and
no per-class or tolerance guardrails, so those are written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import mlflow
import numpy as np
from mlflow.models import MetricThreshold
from mlflow.models.evaluation.base import EvaluationResult
from mlflow.models.evaluation.validation import ModelValidationFailedException

from triage_ml.settings import GateSettings, HeadSettings
from triage_model.heads import HEADS

# Figures in messages, tags and reports: enough to tell two models apart, few
# enough to read. The decision itself is taken on the unrounded figures.
PLACES = 4


def figure(value: float, signed: bool = False) -> str:
    """``value`` rounded to :data:`PLACES` places for a message (with its sign when ``signed``)."""
    return f"{value:+.{PLACES}f}" if signed else f"{value:.{PLACES}f}"


def rounded(value: Any) -> Any:
    """``value`` with each float in it (in dicts, lists, tuples) rounded to :data:`PLACES`."""
    if isinstance(value, float):
        return round(value, PLACES)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item) for item in value]
    return value


@dataclass(frozen=True)
class Check:
    """One gate condition and whether it held.

    ``detail`` states what was found, true either way: on a failure it says
    what did not hold ("... does not lie above 0"), never the condition.
    """

    name: str
    passed: bool
    detail: str

    @property
    def message(self) -> str:
        """``<name> passed: <detail>`` or ``<name> failed: <detail>``."""
        return f"{self.name} {'passed' if self.passed else 'failed'}: {self.detail}"


@dataclass(frozen=True)
class Decision:
    """The gate's verdict with every figure that led to it."""

    promote: bool
    reason: str
    challenger: dict[str, float]
    champion: dict[str, float] | None
    interval: tuple[float, float] | None
    checks: list[Check] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record of the decision."""
        return asdict(self)


def macro_f1_resampled(
    truth: np.ndarray, pred: np.ndarray, weights: np.ndarray, n_classes: int
) -> np.ndarray:
    """Macro-F1 of each bootstrap resample, given per-row resample counts.

    Vectorised over resamples: ``weights`` is (resamples, rows).
    """
    true_hot = np.eye(n_classes)[truth]
    pred_hot = np.eye(n_classes)[pred]
    tp = weights @ (true_hot * pred_hot)
    support = weights @ true_hot
    predicted = weights @ pred_hot
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    return (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def paired_bootstrap(
    truth: Sequence[str],
    challenger: Sequence[str],
    champion: Sequence[str],
    resamples: int,
    confidence: float,
    seed: int = 0,
) -> tuple[float, float]:
    """Interval of macro-F1(challenger) - macro-F1(champion) over paired resamples of rows."""
    classes = {c: i for i, c in enumerate(sorted(set(truth) | set(challenger) | set(champion)))}
    t, a, b = (np.array([classes[x] for x in seq]) for seq in (truth, challenger, champion))
    rng = np.random.default_rng(seed)
    uniform = np.full(len(t), 1.0 / len(t))
    diffs = []
    # Resample in blocks so memory stays at block x rows, not resamples x rows.
    for block in np.array_split(np.arange(resamples), max(1, resamples // 100)):
        weights = rng.multinomial(len(t), uniform, size=len(block)).astype(float)
        diffs.append(
            macro_f1_resampled(t, a, weights, len(classes))
            - macro_f1_resampled(t, b, weights, len(classes))
        )
    diff = np.concatenate(diffs)
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(diff, tail)), float(np.quantile(diff, 1.0 - tail))


def mlflow_threshold_check(
    challenger: dict[str, float], champion: dict[str, float] | None, gate: GateSettings
) -> Check:
    """Floor and minimum gain on the gate metric, each judged by MLflow's validation API.

    The floor and the gain are validated apart, so the message can say which
    of the two failed; MLflow's own message prints unrounded figures.
    """
    value = challenger[gate.metric]
    floor_met = mlflow_accepts(
        gate.metric,
        value,
        None,
        MetricThreshold(threshold=gate.absolute_floor, greater_is_better=True),
    )
    parts = [
        f"{gate.metric} {figure(value)} is "
        f"{'at or above' if floor_met else 'below'} the floor {figure(gate.absolute_floor)}"
    ]
    gain_met = True
    if champion is not None:
        before = champion[gate.metric]
        gain_met = mlflow_accepts(
            gate.metric,
            value,
            before,
            MetricThreshold(min_absolute_change=gate.min_delta, greater_is_better=True),
        )
        parts.append(
            f"its gain over the champion's {figure(before)} is {figure(value - before, True)}, "
            f"{'at least' if gain_met else 'less than'} the required {figure(gate.min_delta, True)}"
        )
    return Check("threshold", floor_met and gain_met, "; ".join(parts))


def mlflow_accepts(
    metric: str, value: float, baseline: float | None, threshold: MetricThreshold
) -> bool:
    """Whether ``mlflow.validate_evaluation_results`` accepts ``value`` (against ``baseline``)."""
    candidate = EvaluationResult(metrics={metric: value}, artifacts={})
    before = (
        None if baseline is None else EvaluationResult(metrics={metric: baseline}, artifacts={})
    )
    try:
        mlflow.validate_evaluation_results({metric: threshold}, candidate, before)
    except ModelValidationFailedException:
        return False
    return True


def guardrails(
    challenger: dict[str, float],
    champion: dict[str, float],
    gate: GateSettings,
    heads: HeadSettings | None = None,
) -> list[Check]:
    """Conditions that no gain in the gate metric may break.

    ``heads`` holds the tolerance of the further heads' guardrails (their defaults when None).
    """
    checks: list[Check] = []
    if "priority_macro_f1" in challenger and "priority_macro_f1" in champion:
        checks.append(
            drop_check(
                "priority_macro_f1",
                challenger["priority_macro_f1"],
                champion["priority_macro_f1"],
                gate.max_priority_drop,
            )
        )
    if "priority_urgent_recall" in challenger:
        value = challenger["priority_urgent_recall"]
        held = value >= gate.urgent_recall_floor
        checks.append(
            Check(
                "priority_urgent_recall",
                held,
                f"{figure(value)} is {'at or above' if held else 'below'} "
                f"the floor {figure(gate.urgent_recall_floor)}",
            )
        )
    for key, before in champion.items():
        if key.startswith("category_f1.") and key in challenger:
            checks.append(drop_check(key, challenger[key], before, gate.max_class_f1_drop))
    return checks + head_guardrails(challenger, champion, heads or HeadSettings())


def head_guardrails(
    challenger: dict[str, float], champion: dict[str, float], heads: HeadSettings
) -> list[Check]:
    """Each further head's macro-F1 may fall at most ``heads.max_macro_f1_drop``.

    Only heads both models were measured on (``<head>_macro_f1`` on both sides, the same
    rows): a head new in the challenger has nothing to fall from.
    """
    keys = [f"{head}_macro_f1" for head in HEADS]
    return [
        drop_check(key, challenger[key], champion[key], heads.max_macro_f1_drop)
        for key in keys
        if key in challenger and key in champion
    ]


def drop_check(name: str, value: float, before: float, tolerance: float) -> Check:
    """``name`` may fall from the champion's ``before`` to ``value`` by at most ``tolerance``."""
    drop = before - value
    held = drop <= tolerance
    return Check(
        name,
        held,
        f"{figure(value)} against the champion's {figure(before)}: a drop of "
        f"{figure(drop, True)}, {'within' if held else 'beyond'} the tolerance {figure(tolerance)}",
    )


def significance_check(interval: tuple[float, float] | None, gate: GateSettings) -> Check:
    """The bootstrap interval of the gain lies above 0 (``None``: no paired predictions to test)."""
    if interval is None:
        return Check(
            "bootstrap", False, "no champion predictions on the same rows to test the gain"
        )
    low, high = interval
    held = low > 0
    return Check(
        "bootstrap",
        held,
        f"the {gate.confidence:.0%} interval of the gain [{figure(low, True)}, "
        f"{figure(high, True)}] {'lies' if held else 'does not lie'} above 0",
    )


def decide(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    truth: Sequence[str],
    challenger_pred: Sequence[str],
    champion_pred: Sequence[str] | None,
    gate: GateSettings,
    seed: int = 0,
    gain_judged_live: bool = False,
    heads: HeadSettings | None = None,
) -> Decision:
    """Promote the challenger only if every check passes on the same rows.

    ``heads`` (``settings.heads``) holds the further heads' guardrail tolerance.

    With ``gain_judged_live`` (a challenger bound for the parallel run, ``gate.on_pass =
    "shadow"``) the gain over the champion is not asked for here: right after a drift the
    held-out rows are the drifted ones, which neither evaluated model learned from, so no
    gain can show offline. The floor and the guardrails still hold; the live comparison
    asks for the gain (:mod:`triage_ml.monitoring.shadow`).
    """
    checks = [mlflow_threshold_check(challenger, None if gain_judged_live else champion, gate)]
    interval = None
    if champion is not None and champion_pred is not None:
        interval = paired_bootstrap(
            truth, challenger_pred, champion_pred, gate.bootstrap_resamples, gate.confidence, seed
        )
    if champion is not None:
        if gate.require_significance and not gain_judged_live:
            checks.append(significance_check(interval, gate))
        # The guardrails need only the champion's figures, never its predictions.
        checks.extend(guardrails(challenger, champion, gate, heads))
    failed = [c for c in checks if not c.passed]
    if champion is None and not failed:
        reason = "first model: nothing to beat, floor met"
    elif failed:
        reason = "rejected: " + "; ".join(c.message for c in failed)
    elif gain_judged_live:
        reason = "floor and guardrails passed; the gain is judged on live rows"
    else:
        reason = "promoted: every check passed"
    return Decision(not failed, reason, challenger, champion, interval, checks)


def too_few_unseen(
    challenger: dict[str, float], unseen: int, rows: int, champion: str, gate: GateSettings
) -> Decision:
    """A rejection: too few test rows are unseen by champion ``champion`` to compare the two.

    Both shipped models learn from every labeled row, so only rows the
    champion never trained on can judge it fairly; without enough of them
    the champion stays, and ``triage-ml promote`` can still move it by hand.
    """
    detail = (
        f"{unseen} of {rows} test rows were never trained on by champion version {champion};"
        f" at least {gate.min_unseen_rows} are needed to compare"
    )
    check = Check("unseen rows", False, detail)
    return Decision(False, f"rejected: {check.message}", challenger, None, None, [check])
