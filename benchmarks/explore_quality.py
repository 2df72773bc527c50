"""Classical leads of issue 23, measured on the development sets (prints figures; not a test).

Targets: the tickets sample's queue, type and priority (the README's split,
text = subject + newline + body) and CLINC150's intents (in-scope rows of
train.csv to train, of test.csv to report). For each target it measures, on
the same features and in the same run:

A. the plain baseline: TF-IDF word 1-2 + char_wb 2-5 (sublinear, min_df=2),
   LogisticRegression(C=10, class_weight="balanced");
B. NBSVM-style logistic regression (:class:`NBLogisticRegression`), C chosen by CV;
C. the baseline's logistic regression with C chosen by CV;
D. calibrated LinearSVC and SGD with the modified Huber loss, fixed settings;
E. (CLINC150) out-of-scope detection scores, thresholds from out-of-fold scores;
F. (priority) the platform's stacked priority model.

Everything tuned is tuned by 3-fold stratified CV (shuffled, seed 0) inside
the training rows. The vectorizer is fitted once on all training rows (no
labels) and shared by the folds, as the platform's stacking does; the
test rows never reach a fit or a choice. Usage:
    python benchmarks/explore_quality.py [--only tickets|clinc|priority]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import logsumexp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import normalize
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TICKETS = DATA / "tickets-sample" / "tickets.csv"
CLINC = DATA / "clinc150"
SEED = 0
LR_GRID = (1.0, 3.0, 10.0, 30.0)
NB_GRID = (3.0, 10.0, 30.0, 100.0)
ABSTAIN = 0.05  # share of in-scope rows the out-of-scope threshold may abstain on
PRIORITY_LEVELS = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True)
class Target:
    """One classification task: texts and labels of the training and test rows."""

    name: str
    train_text: list[str]
    y_train: np.ndarray
    test_text: list[str]
    y_test: np.ndarray


@dataclass(frozen=True)
class Scores:
    """A fitted model's test scores, its fit seconds and, when tuned, its CV figures."""

    decision: np.ndarray
    proba: np.ndarray
    classes: np.ndarray
    seconds: float
    note: str = ""


def baseline_lr(C: float = 10.0) -> LogisticRegression:  # noqa: N803 (scikit-learn's name)
    """The plain baseline's classifier."""
    return LogisticRegression(C=C, class_weight="balanced", max_iter=3000)


class NBLogisticRegression:
    """NBSVM-style logistic regression (Wang & Manning 2012), one-vs-rest.

    Per class, the features are scaled by its log-count ratio
    r = log((p/|p|₁)/(q/|q|₁)) (p, q: feature sums of the class's rows and the
    others', smoothed by 1) and a binary logistic regression, classes
    balanced, learns on them; r folds into its weights after the fit. It
    lives here, not in the runtime, because it did not pay (docs/benchmarks.md).
    """

    def __init__(self, C: float) -> None:  # noqa: N803
        self.C = C

    def fit(self, x: Any, y: np.ndarray) -> NBLogisticRegression:
        """One weighted binary logistic regression per class."""
        self.classes_, codes = np.unique(y, return_inverse=True)
        coefs, intercepts = [], []
        for c in range(len(self.classes_)):
            positive = codes == c
            p = 1.0 + np.asarray(x[positive].sum(axis=0)).ravel()
            q = 1.0 + np.asarray(x[~positive].sum(axis=0)).ravel()
            ratio = np.log(p / p.sum()) - np.log(q / q.sum())
            binary = LogisticRegression(C=self.C, class_weight="balanced", max_iter=1000)
            binary.fit(sp.csr_matrix(x.multiply(ratio)), positive)
            coefs.append(ratio * binary.coef_[0])
            intercepts.append(binary.intercept_[0])
        self.coef_, self.intercept_ = np.vstack(coefs), np.array(intercepts)
        return self

    def decision_function(self, x: Any) -> np.ndarray:
        """Per-class scores."""
        return np.asarray(x @ self.coef_.T) + self.intercept_

    def predict_proba(self, x: Any) -> np.ndarray:
        """Per-class sigmoids normalised to sum to one (one-vs-rest)."""
        return ovr_proba(self.decision_function(x))


def nb_lr(C: float) -> NBLogisticRegression:  # noqa: N803
    """NBSVM-style logistic regression with inverse regularisation C."""
    return NBLogisticRegression(C)


def vectorize(train: Sequence[str], test: Sequence[str]) -> tuple[Any, Any, float]:
    """The baseline's features of the training and test texts, fitted on the training texts."""
    started = time.perf_counter()
    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
    x_train = sp.hstack([word.fit_transform(train), char.fit_transform(train)], format="csr")
    x_test = sp.hstack([word.transform(test), char.transform(test)], format="csr")
    return x_train, x_test, time.perf_counter() - started


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> float:
    """Macro-F1 over ``classes`` by counting (fast enough to bootstrap)."""
    k = len(classes)
    t, p = np.searchsorted(classes, y_true), np.searchsorted(classes, y_pred)
    tp = np.bincount(t[t == p], minlength=k)
    denominator = np.bincount(t, minlength=k) + np.bincount(p, minlength=k)
    return float(np.mean(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)))


def paired_gain(y: np.ndarray, ours: np.ndarray, base: np.ndarray, classes: np.ndarray) -> str:
    """Test macro-F1 gain over the baseline with a 95% paired-bootstrap interval (500 draws)."""
    rng = np.random.default_rng(SEED)
    gains = []
    for _ in range(500):
        rows = rng.integers(0, len(y), len(y))
        gains.append(
            macro_f1(y[rows], ours[rows], classes) - macro_f1(y[rows], base[rows], classes)
        )
    low, high = np.percentile(gains, [2.5, 97.5])
    gain = macro_f1(y, ours, classes) - macro_f1(y, base, classes)
    return f"{gain:+.3f} [{low:+.3f},{high:+.3f}]"


def folds(y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 3 stratified, shuffled (seed 0) folds of the training rows."""
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=SEED)
    return list(cv.split(np.zeros(len(y)), y))


def out_of_fold(
    build: Callable[[float], Any], grid: Sequence[float], x: Any, y: np.ndarray
) -> dict[float, np.ndarray]:
    """Out-of-fold decision scores of the training rows, for each setting of ``grid``."""
    classes = np.unique(y)
    oof = {c: np.zeros((len(y), len(classes))) for c in grid}
    for fit_rows, held in folds(y):
        for c in grid:
            model = build(c).fit(x[fit_rows], y[fit_rows])
            oof[c][held] = model.decision_function(x[held])
    return oof


def fold_f1(oof: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Macro-F1 of each fold's held-out rows from out-of-fold scores."""
    classes = np.unique(y)
    return np.array(
        [macro_f1(y[held], classes[oof[held].argmax(axis=1)], classes) for _, held in folds(y)]
    )


def choose(oof: dict[float, np.ndarray], y: np.ndarray) -> tuple[float, str]:
    """The setting with the best mean CV macro-F1, and a line of the CV figures."""
    means = {c: fold_f1(scores, y) for c, scores in oof.items()}
    best = max(means, key=lambda c: means[c].mean())
    line = " ".join(f"C={c:g}:{f.mean():.3f}±{f.std():.3f}" for c, f in means.items())
    return best, line


def fit_scores(model: Any, x_train: Any, y: np.ndarray, x_test: Any, extra: float) -> Scores:
    """Fit ``model`` on all training rows; its test scores and fit seconds (plus ``extra``)."""
    started = time.perf_counter()
    model.fit(x_train, y)
    seconds = time.perf_counter() - started + extra
    proba = model.predict_proba(x_test)
    # The calibrated SVM has no decision function: its log-probabilities stand in.
    decision = (
        model.decision_function(x_test)
        if hasattr(model, "decision_function")
        else np.log(np.clip(proba, 1e-12, 1.0))
    )
    return Scores(decision, proba, model.classes_, seconds)


def label_of(scores: Scores) -> np.ndarray:
    """Predicted labels from the scores (argmax of the probabilities)."""
    return scores.classes[scores.proba.argmax(axis=1)]


def report(target: Target, name: str, scores: Scores, base: Scores | None, cv: str = "") -> None:
    """One line: test macro-F1 and accuracy, the baseline's beside it, the gain, fit seconds."""
    classes = np.unique(target.y_train)
    pred = label_of(scores)
    f1, acc = macro_f1(target.y_test, pred, classes), float(np.mean(pred == target.y_test))
    line = f"{target.name:9s} {name:22s} F1 {f1:.3f} acc {acc:.3f}"
    if base is not None:
        base_pred = label_of(base)
        line += (
            f" | base F1 {macro_f1(target.y_test, base_pred, classes):.3f}"
            f" acc {np.mean(base_pred == target.y_test):.3f}"
            f" | gain {paired_gain(target.y_test, pred, base_pred, classes)}"
        )
    line += f" | fit {scores.seconds:.1f}s"
    if target.name == "priority":
        line += " | " + ordinal_figures(target.y_test, pred)
    print(line + (f" | CV {cv}" if cv else ""), flush=True)


def ordinal_figures(y: np.ndarray, pred: np.ndarray) -> str:
    """Recall of the most urgent level and the mean absolute error in levels."""
    levels = np.vectorize(PRIORITY_LEVELS.get)
    high = y == "high"
    mae = np.abs(levels(y) - levels(pred)).mean()
    return f"high recall {np.mean(pred[high] == 'high'):.3f} MAE {mae:.3f}"


def softmax_proba(decision: np.ndarray) -> np.ndarray:
    """Probabilities from scores by the softmax (for the SVM's and SGD's margins)."""
    shifted = decision - decision.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def run_target(target: Target) -> dict[str, Any]:
    """A to D on one target; returns what E needs (features, out-of-fold and test scores)."""
    x_train, x_test, feature_seconds = vectorize(target.train_text, target.test_text)
    y = target.y_train
    print(f"# {target.name}: {x_train.shape[0]} train, {x_test.shape[0]} test rows, "
          f"{x_train.shape[1]} features ({feature_seconds:.1f}s)", flush=True)  # fmt: skip
    base = fit_scores(baseline_lr(), x_train, y, x_test, feature_seconds)
    report(target, "A baseline LR C=10", base, None)
    started = time.perf_counter()
    lr_oof = out_of_fold(baseline_lr, LR_GRID, x_train, y)
    lr_c, lr_line = choose(lr_oof, y)
    lr_cv_seconds = time.perf_counter() - started
    tuned_lr = fit_scores(baseline_lr(lr_c), x_train, y, x_test, feature_seconds)
    report(target, f"C LR C={lr_c:g} (CV)", tuned_lr, base,
           f"{lr_line} ({lr_cv_seconds:.0f}s)")  # fmt: skip
    started = time.perf_counter()
    nb_oof = out_of_fold(nb_lr, NB_GRID, x_train, y)
    nb_c, nb_line = choose(nb_oof, y)
    nb_cv_seconds = time.perf_counter() - started
    nb = fit_scores(nb_lr(nb_c), x_train, y, x_test, feature_seconds)
    report(target, f"B NB-LR C={nb_c:g} (CV)", nb, base, f"{nb_line} ({nb_cv_seconds:.0f}s)")
    print(f"{target.name:9s} CV paired gain NB-LR C={nb_c:g} over LR C=10, per fold: "
          + " ".join(f"{g:+.3f}" for g in fold_f1(nb_oof[nb_c], y) - fold_f1(lr_oof[10.0], y)),
          flush=True)  # fmt: skip
    run_alternatives(target, x_train, x_test, feature_seconds, base)
    return {
        "x_train": x_train,
        "x_test": x_test,
        "base": (base, lr_oof[10.0]),
        "nb": (nb, nb_oof[nb_c], nb_c),
        "tuned_lr": (tuned_lr, lr_oof[lr_c], lr_c),
        "nb_cv": fold_f1(nb_oof[nb_c], y).mean(),
        "lr_cv": fold_f1(lr_oof[lr_c], y).mean(),
    }


def run_alternatives(
    target: Target, x_train: Any, x_test: Any, feature_seconds: float, base: Scores
) -> None:
    """D: calibrated LinearSVC (the platform's C=0.5) and SGD with the modified Huber loss."""
    svc = CalibratedClassifierCV(
        LinearSVC(C=0.5, class_weight="balanced", random_state=SEED), method="sigmoid", cv=3
    )
    report(target, "D LinearSVC cal.", fit_scores(svc, x_train, target.y_train, x_test,
                                                  feature_seconds), base)  # fmt: skip
    sgd = SGDClassifier(
        loss="modified_huber", alpha=1e-5, class_weight="balanced", max_iter=50, random_state=SEED
    )
    started = time.perf_counter()
    sgd.fit(x_train, target.y_train)
    decision = sgd.decision_function(x_test)
    seconds = time.perf_counter() - started + feature_seconds
    scores = Scores(decision, softmax_proba(decision), sgd.classes_, seconds)
    report(target, "D SGD mod-huber", scores, base)


# --- E: out-of-scope detection ------------------------------------------------------------


def centroid_cosine(x_fit: Any, y_fit: np.ndarray, x: Any) -> np.ndarray:
    """Cosine similarity of each row of ``x`` to its nearest class centroid of ``x_fit``."""
    codes = np.unique(y_fit, return_inverse=True)[1]
    members = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))))
    centroids = normalize(members @ normalize(x_fit))
    return np.asarray((normalize(x) @ centroids.T).max(axis=1).toarray()).ravel()


def oof_cosine(x: Any, y: np.ndarray) -> np.ndarray:
    """Out-of-fold centroid cosine of the training rows (same folds as the models)."""
    out = np.zeros(len(y))
    for fit_rows, held in folds(y):
        out[held] = centroid_cosine(x[fit_rows], y[fit_rows], x[held])
    return out


def score_kinds(decision: np.ndarray, link: Callable[[np.ndarray], np.ndarray]) -> dict[str, Any]:
    """In-scope scores from a model's decision scores (higher: more in scope)."""
    return {
        "max probability": link(decision).max(axis=1),
        "max logit": decision.max(axis=1),
        "energy (logsumexp)": logsumexp(decision, axis=1),
    }


def ecdf(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of ``reference`` at or below each value: puts scores of any scale on one footing."""
    return np.searchsorted(np.sort(reference), values, side="right") / len(reference)


def abstention(oof: np.ndarray, test: np.ndarray, in_scope: np.ndarray) -> str:
    """Threshold at 5% of out-of-fold in-scope rows; test oos recall and in-scope abstention."""
    threshold = np.quantile(oof, ABSTAIN)
    abstain = test < threshold
    # For reference only (it looks at test rows): the recall at exactly 5% of test in-scope rows.
    exact = test[~in_scope] < np.quantile(test[in_scope], ABSTAIN)
    return (
        f"oos recall {abstain[~in_scope].mean():.3f}  in-scope abstained "
        f"{abstain[in_scope].mean():.3f}  (recall at exactly 5% on test: {exact.mean():.3f})"
    )


def out_of_scope(name: str, oof_decision: np.ndarray, test_decision: np.ndarray,
                 link: Callable[[np.ndarray], np.ndarray], cosine: tuple[np.ndarray, np.ndarray],
                 in_scope: np.ndarray) -> None:  # fmt: skip
    """E for one model: each score and two combinations, thresholds from out-of-fold rows."""
    oof, test = score_kinds(oof_decision, link), score_kinds(test_decision, link)
    oof["centroid cosine"], test["centroid cosine"] = cosine
    for pair in (("max probability", "centroid cosine"), ("max logit", "centroid cosine")):
        label = " + ".join(pair) + " (mean ECDF)"
        oof[label] = np.mean([ecdf(oof[k], oof[k]) for k in pair], axis=0)
        test[label] = np.mean([ecdf(oof[k], test[k]) for k in pair], axis=0)
    for kind in oof:
        print(f"E {name:28s} {kind:44s} {abstention(oof[kind], test[kind], in_scope)}",
              flush=True)  # fmt: skip


def run_clinc(intents: int | None) -> None:
    """Intents (in-scope) A to D, then E on the out-of-scope test rows."""
    train = pd.read_csv(CLINC / "train.csv")
    test = pd.read_csv(CLINC / "test.csv")
    train = train[train["intent"] != "oos"]
    if intents:  # a smoke run: the first intents only, and the out-of-scope rows
        kept = sorted(train["intent"].unique())[:intents]
        train = train[train["intent"].isin(kept)]
        test = test[test["intent"].isin([*kept, "oos"])].reset_index(drop=True)
    in_scope = (test["intent"] != "oos").to_numpy()
    target = Target(
        "intent",
        train["text"].tolist(),
        train["intent"].to_numpy(dtype=object),
        test["text"][in_scope].tolist(),
        test["intent"][in_scope].to_numpy(dtype=object),
    )
    found = run_target(target)
    x_all = vectorize(target.train_text, test["text"].tolist())[1]
    cosine = (oof_cosine(found["x_train"], target.y_train),
              centroid_cosine(found["x_train"], target.y_train, x_all))  # fmt: skip
    base_model = baseline_lr().fit(found["x_train"], target.y_train)
    out_of_scope("baseline LR C=10", found["base"][1], base_model.decision_function(x_all),
                 softmax_proba, cosine, in_scope)  # fmt: skip
    best = "nb" if found["nb_cv"] > found["lr_cv"] else "tuned_lr"
    _, oof, c = found[best]
    if best == "tuned_lr" and c == 10.0:
        print("E the best model by CV is the baseline itself", flush=True)
        return
    model = (nb_lr(c) if best == "nb" else baseline_lr(c)).fit(found["x_train"], target.y_train)
    decision = model.decision_function(x_all)
    out_of_scope(f"best by CV: {best} C={c:g}", oof, decision, softmax_proba, cosine, in_scope)
    if best == "nb":
        out_of_scope(f"{best} C={c:g}, ovr-normalised", oof, decision,
                     ovr_proba, cosine, in_scope)  # fmt: skip


def ovr_proba(decision: np.ndarray) -> np.ndarray:
    """One-vs-rest probabilities: per-class sigmoids normalised to sum to one."""
    sigmoids = 1.0 / (1.0 + np.exp(-decision))
    return sigmoids / sigmoids.sum(axis=1, keepdims=True)


# --- the tickets sample and F: priority -----------------------------------------------------


def tickets_split(frame: pd.DataFrame, target: str) -> tuple[np.ndarray, np.ndarray]:
    """The README's split: rows in file order, 20% test, seed 0, stratified by the target."""
    rows = np.arange(len(frame))
    y = frame[target].to_numpy(dtype=object)
    train, test = train_test_split(rows, test_size=0.2, random_state=0, stratify=y)
    return train, test


def ticket_target(frame: pd.DataFrame, target: str) -> Target:
    """One target of the tickets sample with the README's split and text."""
    text = (frame["subject"].fillna("") + "\n" + frame["body"].fillna("")).tolist()
    y = frame[target].to_numpy(dtype=object)
    train, test = tickets_split(frame, target)
    return Target(target, [text[i] for i in train], y[train], [text[i] for i in test], y[test])


def run_platform_priority(frame: pd.DataFrame, base: Scores) -> None:
    """F: the platform's stacked priority model on the priority split (queue as its category)."""
    from triage_ml.training.inputs import featurize, prepare
    from triage_ml.training.priority import fit_priority, word_columns
    from triage_model.predictor import PRIORITY_STARTS_FROM_TEXT, TriagePredictor

    train, test = tickets_split(frame, "priority")
    tickets = frame.rename(columns={"queue": "category"})
    started = time.perf_counter()
    prepared = prepare(tickets.iloc[train])
    matrices = featurize(prepared, prepare(tickets.iloc[test]))
    model = fit_priority(matrices.train, prepared, SEED, word_columns(matrices.features))
    seconds = time.perf_counter() - started
    predictor = TriagePredictor(
        features=matrices.features, category=model.category, priority=model.model,
        priority_text=model.text, priority_category=model.category,
        config={PRIORITY_STARTS_FROM_TEXT: True},
    )  # fmt: skip
    proba = predictor.priority_probabilities(tickets.iloc[test].reset_index(drop=True))
    classes = np.array(proba.columns, dtype=object)
    scores = Scores(np.log(proba.to_numpy()), proba.to_numpy(), classes, seconds)
    report(ticket_target(frame, "priority"), "F platform stacked", scores, base)


def run_tickets(only_priority: bool) -> None:
    """A to D on queue, type and priority; F on priority."""
    frame = pd.read_csv(TICKETS)
    for name in ("priority",) if only_priority else ("queue", "type", "priority"):
        found = run_target(ticket_target(frame, name))
        if name == "priority":
            run_platform_priority(frame, found["base"][0])


def main() -> None:
    """Run the chosen parts; skip cleanly when the shared data is absent."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["tickets", "clinc", "priority"])
    parser.add_argument("--clinc-intents", type=int, help="a smoke run on the first N intents")
    args = parser.parse_args()
    with threadpool_limits(1):
        if args.only != "clinc":
            if not TICKETS.exists():
                print(f"skipped: {TICKETS} is absent")
            else:
                run_tickets(args.only == "priority")
        if args.only in (None, "clinc"):
            if not (CLINC / "train.csv").exists():
                print(f"skipped: {CLINC} is absent")
            else:
                run_clinc(args.clinc_intents)


if __name__ == "__main__":
    main()
