"""Choose the category model by cross-validation inside the fit part, simplest when in doubt.

Every configured candidate (the plain baseline always among them) and each
setting of its small grid is scored by its macro-F1 on ``k`` folds of at
most ``cv_rows`` rows of the fit part, the budget that bounds a retraining
whatever the data's size. Folds are time-ordered (scikit-learn's
``TimeSeriesSplit``: each fold validates on rows newer than those it fits)
when the fit part is in time order, stratified otherwise. The soft-vote
ensemble of the best candidates is scored from their out-of-fold
probabilities, with no fit of its own.

The one-standard-error rule then picks, among the candidates whose mean
is within one standard error of the best mean, the simplest
(``candidates.COMPLEXITY``): a gain smaller than the folds' noise does not
buy a heavier model.

A choice made on a budget of rows favours models that learn fast from few
rows: on 41,000 synthetic tickets, naive Bayes beat the baseline by 0.015
in CV on 8,000 rows and lost to it by 0.004 on test. So a winner other than
the baseline then meets it once at full size (:func:`duel`): both fitted on
the older part of the fit part, scored on its newest fifth; the winner
stays only if it is at least as good. The test part is never seen here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import ParameterGrid, StratifiedKFold, TimeSeriesSplit

from triage_ml.training import candidates


@dataclass(frozen=True)
class Folds:
    """The rows cross-validation uses and how they are cut.

    ``rows`` are positions in the fit part (sorted, so time order is kept);
    each split holds positions into ``rows``.
    """

    rows: np.ndarray
    y: np.ndarray
    classes: np.ndarray
    splits: list[tuple[np.ndarray, np.ndarray]]
    time_ordered: bool

    @property
    def validated(self) -> np.ndarray:
        """Positions into ``rows`` that some fold validates (all of them unless time-ordered)."""
        return np.unique(np.concatenate([valid for _, valid in self.splits]))


@dataclass(frozen=True)
class Scored:
    """A candidate's chosen setting, its fold scores and its out-of-fold probabilities.

    ``blueprint`` is the unfitted estimator with that setting; ``oof_proba``
    has one row per CV row (NaN where no fold validated it) and one column
    per class of ``Folds.classes``.
    """

    name: str
    params: dict[str, Any]
    blueprint: Any
    fold_scores: tuple[float, ...]
    settings_tried: int
    oof_proba: np.ndarray = field(repr=False)

    @property
    def mean(self) -> float:
        """Mean macro-F1 over the folds."""
        return float(np.mean(self.fold_scores))

    @property
    def standard_error(self) -> float:
        """Standard error of that mean (see :func:`standard_error`)."""
        return standard_error(self.fold_scores)

    @property
    def complexity(self) -> int:
        """Rank for the one-standard-error rule (lower is simpler)."""
        return candidates.COMPLEXITY.get(self.name, max(candidates.COMPLEXITY.values()))

    def figures(self) -> dict[str, float]:
        """What a candidate's child run logs (names in ``triage_ml.registry.runs``).

        The parent logs the chosen candidate's ``cv_category_...`` figures under
        the same names; ``cv_macro_f1_mean`` and ``cv_macro_f1_std_error`` stay
        for readers of earlier runs.
        """
        return {
            "cv_category_macro_f1": self.mean,
            "cv_category_macro_f1_se": self.standard_error,
            **{f"cv_category_macro_f1_fold_{i}": s for i, s in enumerate(self.fold_scores)},
            "cv_settings_tried": float(self.settings_tried),
            "cv_macro_f1_mean": self.mean,
            "cv_macro_f1_std_error": self.standard_error,
        }


def standard_error(scores: tuple[float, ...]) -> float:
    """Standard error of the mean of fold scores: their spread over the root of their count."""
    if len(scores) < 2:
        return 0.0
    return float(np.std(scores, ddof=1) / math.sqrt(len(scores)))


def budget_rows(y: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Sorted positions of about ``limit`` rows, each class kept in proportion.

    Every class keeps at least one row, so a sample may exceed ``limit`` by
    a few rows of rare classes; all rows when there are at most ``limit``.
    """
    if len(y) <= limit:
        return np.arange(len(y))
    order = np.random.default_rng(seed).permutation(len(y))
    keep: list[np.ndarray] = []
    for label in np.unique(y):
        members = order[y[order] == label]
        keep.append(members[: max(1, round(len(members) * limit / len(y)))])
    return np.sort(np.concatenate(keep))


def make_folds(y: np.ndarray, k: int, limit: int, seed: int, time_ordered: bool) -> Folds:
    """``k`` folds of at most ``limit`` rows of the fit part (labels ``y``, in its row order)."""
    rows = budget_rows(y, limit, seed)
    sample = y[rows]
    if time_ordered:
        splitter: Any = TimeSeriesSplit(n_splits=k)
    else:
        smallest = int(np.unique(sample, return_counts=True)[1].min())
        folds = max(2, min(k, smallest))
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(np.zeros(len(sample)), sample))
    return Folds(rows, sample, np.unique(y), splits, time_ordered)


def fold_proba(model: Any, matrix: Any, classes: np.ndarray) -> np.ndarray:
    """``model``'s probabilities in the columns of ``classes`` (zero for a class it never saw)."""
    proba = model.predict_proba(matrix)
    if len(model.classes_) == len(classes) and np.array_equal(model.classes_, classes):
        return proba
    out = np.zeros((proba.shape[0], len(classes)))
    out[:, np.searchsorted(classes, model.classes_)] = proba
    return out


def fold_scores(proba: np.ndarray, folds: Folds) -> tuple[float, ...]:
    """Macro-F1 of out-of-fold probabilities on each fold's validation rows."""
    return tuple(
        float(
            f1_score(
                folds.y[valid],
                folds.classes[proba[valid].argmax(axis=1)],
                average="macro",
                zero_division=0,
            )
        )
        for _, valid in folds.splits
    )


def out_of_fold(estimator: Any, matrix: Any, folds: Folds) -> np.ndarray:
    """Out-of-fold probabilities of ``estimator`` for the CV rows of ``matrix`` (the fit part)."""
    x = matrix[folds.rows]
    proba = np.full((len(folds.rows), len(folds.classes)), np.nan)
    for train, valid in folds.splits:
        model = clone(estimator).fit(x[train], folds.y[train])
        proba[valid] = fold_proba(model, x[valid], folds.classes)
    return proba


def cross_validate(spec: candidates.CandidateSpec, matrix: Any, folds: Folds, seed: int) -> Scored:
    """Score each setting of ``spec``'s grid on the folds; keep the best by mean macro-F1.

    Fits with one BLAS thread (see ``candidates.single_blas_thread``).
    """
    best: Scored | None = None
    settings = list(ParameterGrid(dict(spec.grid) or [{}]))
    with candidates.single_blas_thread():
        for setting in settings:
            params = {**spec.params, **setting}
            blueprint = spec.build(params, seed)
            proba = out_of_fold(blueprint, matrix, folds)
            scored = Scored(
                spec.name, params, blueprint, fold_scores(proba, folds), len(settings), proba
            )
            if best is None or scored.mean > best.mean:
                best = scored
    assert best is not None  # ParameterGrid yields at least one setting
    return best


def ensemble(scored: list[Scored], folds: Folds, members: int) -> Scored | None:
    """The soft vote of the ``members`` best candidates, scored from their out-of-fold figures.

    None with fewer than two candidates to vote.
    """
    chosen = sorted(scored, key=lambda s: (-s.mean, s.name))[:members]
    if len(chosen) < 2:
        return None
    proba = np.mean([s.oof_proba for s in chosen], axis=0)
    blueprint = candidates.soft_vote([(s.name, clone(s.blueprint)) for s in chosen], frozen=False)
    params = {"members": ",".join(s.name for s in chosen)}
    return Scored(candidates.ENSEMBLE, params, blueprint, fold_scores(proba, folds), 1, proba)


def choose(scored: list[Scored], one_standard_error: bool = True) -> Scored:
    """The best candidate by mean CV macro-F1, or with the rule the simplest within one SE of it.

    Ties go to the simpler, then to the name, so the choice never depends on order.
    """
    best = max(scored, key=lambda s: (s.mean, -s.complexity, s.name))
    if not one_standard_error:
        return best
    bar = best.mean - best.standard_error
    near = [s for s in scored if s.mean >= bar]
    return min(near, key=lambda s: (s.complexity, -s.mean, s.name))


def validated_predictions(
    chosen: Scored, folds: Folds
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, predicted classes and top probabilities of the rows some fold validated."""
    rows = folds.validated
    proba = chosen.oof_proba[rows]
    return folds.y[rows], folds.classes[proba.argmax(axis=1)], proba.max(axis=1)


@dataclass(frozen=True)
class Duel:
    """The chosen candidate against the baseline on a holdout of the fit part, at full size."""

    winner: Scored
    figures: dict[str, float]


def duel_rows(
    y: np.ndarray, time_ordered: bool, limit: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions to fit on and to score on: the newest fifth held out when in time order.

    At most ``limit`` rows are fitted on (the newest of them in time order).
    """
    n = len(y)
    if time_ordered:
        cut = n - max(1, n // 5)
        return np.arange(max(0, cut - limit), cut), np.arange(cut, n)
    order = np.random.default_rng(seed).permutation(n)
    held = np.sort(order[: max(1, n // 5)])
    kept = np.sort(order[max(1, n // 5) :][:limit])
    return kept, held


def duel(
    chosen: Scored,
    baseline: Scored,
    matrix: Any,
    y: np.ndarray,
    time_ordered: bool,
    limit: int,
    seed: int,
) -> Duel:
    """Keep ``chosen`` only if, fitted on up to ``limit`` rows, it is not below the baseline.

    Both score macro-F1 on the same held-out fifth of the fit part (never the test part).
    """
    if chosen.name == baseline.name:
        return Duel(chosen, {})
    fit_on, held = duel_rows(y, time_ordered, limit, seed)
    scores = {}
    with candidates.single_blas_thread():
        for scored in (baseline, chosen):
            model = clone(scored.blueprint).fit(matrix[fit_on], y[fit_on])
            predicted = model.predict(matrix[held])
            scores[scored.name] = float(
                f1_score(y[held], predicted, average="macro", zero_division=0)
            )
    winner = chosen if scores[chosen.name] >= scores[baseline.name] else baseline
    figures = {f"duel_macro_f1.{name}": value for name, value in scores.items()}
    return Duel(winner, {**figures, "duel_rows_fitted": float(len(fit_on))})
