"""Live quality per model version: the answers served, judged by the tickets' final labels.

Each served prediction is joined to its ticket's final labels (the latest of any source) and
grouped by model version and window (a UTC day, or a week from Monday) of the ticket's
``created_at``. A window reports its figures only with at least ``min_labels`` labeled
predictions; below that it says "not enough labels (n < min)" and reports counts alone,
never a figure measured on a handful of tickets.

Labels that were auto-applied are not evidence: they are the model's own answer written back
with nobody looking, so they neither count as labeled nor enter any figure.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import matplotlib

matplotlib.use("Agg")  # no display on workers; must precede pyplot

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Metric
from sklearn.metrics import accuracy_score, f1_score, precision_score
from sqlalchemy.engine import Engine

from triage_ml.registry.gate import macro_f1_resampled
from triage_ml.store import live as live_queries
from triage_ml.store.tables import (
    AUTO,
    AUTO_APPLIED,
    CORRECTED,
    REVIEW,
    SUGGEST,
    predictions,
    shadow_predictions,
)
from triage_ml.training import dataset
from triage_ml.training.metrics import metric_key
from triage_model.predictor import UNKNOWN

log = logging.getLogger(__name__)

EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
# The one-sided 95% upper bound of a window's macro-F1 (a bootstrap of its labeled rows): a
# window of a few dozen labels is noisy, and an alert needs the bound, not the point, below.
UPPER_QUANTILE, RESAMPLES, BOOTSTRAP_SEED = 0.95, 500, 0
FIELDS = ("category", "priority")
TABLES = {"predictions": predictions, "shadow_predictions": shadow_predictions}
# Figures measured against labels: absent from a window without enough of them.
LABEL_FIGURES = (
    "category_accuracy",
    "category_macro_f1",
    "priority_accuracy",
    "priority_macro_f1",
    "override_rate",
)
# What MLflow's batch endpoint accepts in one call.
MLFLOW_BATCH = 1000
PLOT_KEYS = (
    "live_category_macro_f1",
    "live_category_accuracy",
    "live_priority_macro_f1",
    "live_priority_accuracy",
)


@dataclass(frozen=True)
class Window:
    """One model version's served predictions in one day or week, and how good they were."""

    start: pd.Timestamp
    step: int
    predictions: int
    labeled: int
    enough: bool
    message: str | None
    figures: dict[str, float] = field(default_factory=dict)
    per_class: dict[str, dict[str, float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveReport:
    """Windows of live quality per model version, oldest window first."""

    versions: dict[str, list[Window]]
    window: str
    min_labels: int


def joined(
    engine: Engine, since: datetime | pd.Timestamp | None, table: str = "predictions"
) -> pd.DataFrame:
    """Served predictions since ``since`` with their tickets' final labels.

    Args:
        engine: The ticket store.
        since: Earliest ticket time (``created_at``, else ``scored_at``); None: all.
        table: ``"predictions"`` (served) or ``"shadow_predictions"`` (a shadow challenger's).

    Returns:
        :func:`triage_ml.store.live.served_predictions` columns plus ``final_category``,
        ``final_category_source``, ``final_priority`` and ``final_priority_source`` (NaN when
        the ticket has no final label for that field).
    """
    source = TABLES[table]
    with engine.connect() as conn:
        served = live_queries.served_predictions(conn, since, source)
        tickets, feedback = live_queries.served_labels(conn, since, source)
    labels = dataset.final_labels(tickets, feedback)
    for name in FIELDS:
        for column, label in ((name, f"final_{name}"), (f"{name}_source", f"final_{name}_source")):
            served[label] = served["ticket_id"].map(labels[column]) if len(labels) else np.nan
    return served


def window_starts(times: pd.Series, window: str) -> pd.Series:
    """The UTC start of each time's window: its day, or the Monday of its week."""
    day = pd.to_datetime(times, utc=True).dt.floor("D")
    if window == "week":
        return day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    return day


def closed(windows: Sequence[Window], window: str, now: pd.Timestamp) -> list[Window]:
    """The windows that have ended by ``now``: only those go to MLflow, whose series keeps
    a window's first logged value (a window still filling would stay half-measured there)."""
    length = pd.Timedelta(days=7 if window == "week" else 1)
    return [w for w in windows if w.start + length <= now]


def step_of(start: pd.Timestamp) -> int:
    """A window's MLflow step: whole days from 1970-01-01 to its start (ordered and stable)."""
    return int((start - EPOCH).days)


def live_quality(frame: pd.DataFrame, window: str, min_labels: int) -> LiveReport:
    """Live quality of every model version in ``frame``, window by window.

    Args:
        frame: Rows of :func:`joined`.
        window: ``"day"`` or ``"week"`` (weeks start on Monday, UTC).
        min_labels: Fewest labeled predictions a window needs to report figures.

    Returns:
        The report; a version's windows are the ones it served tickets in, oldest first.
    """
    if frame.empty:
        return LiveReport({}, window, min_labels)
    times = frame["created_at"].fillna(frame["scored_at"])
    starts = window_starts(times, window)
    versions: dict[str, list[Window]] = {}
    for (version, start), rows in frame.groupby([frame["model_version"], starts], sort=True):
        versions.setdefault(str(version), []).append(
            measure_window(rows, pd.Timestamp(start), min_labels)
        )
    return LiveReport(versions, window, min_labels)


def counted(frame: pd.DataFrame, name: str) -> pd.Series:
    """Rows whose final ``name`` label is known and was not auto-applied."""
    return frame[f"final_{name}"].notna() & (frame[f"final_{name}_source"] != AUTO_APPLIED)


def tiers(frame: pd.DataFrame) -> pd.Series:
    """Each row's tier; rows scored before tiers existed take review/suggest by needs_review."""
    review = _flag(frame["needs_review"])
    fallback = pd.Series(np.where(review, REVIEW, SUGGEST), index=frame.index)
    return frame["tier"].astype(object).where(frame["tier"].notna(), fallback)


def _flag(values: pd.Series) -> pd.Series:
    # SQLite hands booleans back as 0/1 and missing ones as None.
    return values.astype(object).where(values.notna(), False).astype(bool)


def measure_window(rows: pd.DataFrame, start: pd.Timestamp, min_labels: int) -> Window:
    """Figures of one version's predictions in one window (see :class:`Window`)."""
    labeled = counted(rows, "category")
    tier = tiers(rows)
    figures = {
        "review_rate": float(((tier == REVIEW) | _flag(rows["needs_review"])).mean()),
        "unlabeled_share": float(1 - labeled.mean()),
        "auto_coverage": float((tier == AUTO).mean()),
    }
    count = int(labeled.sum())
    if count < min_labels:
        message = f"not enough labels ({count} < {min_labels})"
        return Window(start, step_of(start), len(rows), count, False, message, figures)
    figures.update(_label_figures(rows, labeled, min_labels))
    classes = _per_class(rows[labeled], tier[labeled])
    return Window(start, step_of(start), len(rows), count, True, None, figures, classes)


def _label_figures(rows: pd.DataFrame, labeled: pd.Series, min_labels: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in FIELDS:
        mask = counted(rows, name) & rows[name].notna()
        if mask.sum() < min_labels:
            continue  # e.g. priority labels are scarcer than category ones: no figure on too few
        truth = rows.loc[mask, f"final_{name}"].astype(str).tolist()
        answer = rows.loc[mask, name].astype(str).tolist()
        out[f"{name}_accuracy"] = float(accuracy_score(truth, answer))
        # Averaged over the classes present in the labels, as the held-out figure is.
        out[f"{name}_macro_f1"] = float(
            f1_score(truth, answer, labels=sorted(set(truth)), average="macro", zero_division=0)
        )
        if name == "category":
            out["category_macro_f1_high"] = macro_f1_upper_bound(truth, answer)
    part = rows[labeled]
    changed = part["final_category"].astype(str) != part["category"].astype(str)
    out["override_rate"] = float(((part["final_category_source"] == CORRECTED) & changed).mean())
    return out


def macro_f1_upper_bound(truth: list[str], answer: list[str]) -> float:
    """The one-sided 95% upper bound of macro-F1 over ``truth``'s classes, by bootstrap."""
    classes = sorted(set(truth) | set(answer))
    code = {name: i for i, name in enumerate(classes)}
    t = np.array([code[x] for x in truth])
    a = np.array([code[x] for x in answer])
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    weights = rng.multinomial(len(t), np.full(len(t), 1 / len(t)), size=RESAMPLES)
    resampled = macro_f1_resampled(t, a, weights.astype(float), len(classes))
    return float(np.quantile(resampled, UPPER_QUANTILE))


def _per_class(rows: pd.DataFrame, tier: pd.Series) -> dict[str, dict[str, float | None]]:
    """Precision, coverage (share of its labeled tickets answered auto or suggest) and support."""
    truth = rows["final_category"].astype(str)
    answer = rows["category"].astype(str)
    # An abstention ("unknown") is a miss of the true class, not a class of its own.
    classes = sorted(set(truth) | (set(answer) - {UNKNOWN}))
    precision = precision_score(
        truth.tolist(), answer.tolist(), labels=classes, average=None, zero_division=np.nan
    )
    shown = tier.isin([AUTO, SUGGEST])
    out: dict[str, dict[str, float | None]] = {}
    for name, value in zip(classes, precision):
        mine = truth == name
        out[name] = {
            "precision": None if np.isnan(value) else float(value),
            "coverage": float(shown[mine].mean()) if mine.any() else None,
            "support": int(mine.sum()),
        }
    return out


def window_metrics(window: Window) -> dict[str, float]:
    """A window's MLflow metrics: ``live_<figure>``, counts, and per-class precision/coverage."""
    out = {"live_predictions": float(window.predictions), "live_labeled": float(window.labeled)}
    out.update({f"live_{name}": value for name, value in window.figures.items()})
    for name, values in window.per_class.items():
        for figure in ("precision", "coverage"):
            if values.get(figure) is not None:
                out[f"live_category_{figure}.{metric_key(name)}"] = float(values[figure])
    return out


def log_to_mlflow(client: MlflowClient, run_id: str, windows: Sequence[Window]) -> int:
    """Log one version's windows as time series on its run, and redraw its quality plot.

    Steps already logged for a metric are skipped, so the monitor can log the same windows
    every day: the first value logged for a window stands (MLflow keeps every value it is
    given, and a second one at the same step would draw a vertical jump).

    Args:
        client: The MLflow client of the workspace.
        run_id: The run of the registered model version (``ModelVersion.run_id``).
        windows: The version's windows from :func:`live_quality`.

    Returns:
        How many metric values were logged.
    """
    values = {w.step: (w, window_metrics(w)) for w in windows}
    keys = sorted({key for _, metrics in values.values() for key in metrics} | set(PLOT_KEYS))
    history = {key: _history(client, run_id, key) for key in keys}
    fresh = [
        Metric(key, value, int(w.start.timestamp() * 1000), step)
        for step, (w, metrics) in sorted(values.items())
        for key, value in metrics.items()
        if step not in history[key]
    ]
    for start in range(0, len(fresh), MLFLOW_BATCH):
        client.log_batch(run_id, metrics=fresh[start : start + MLFLOW_BATCH])
    for metric in fresh:
        history[metric.key].setdefault(metric.step, metric.value)
    if windows:
        figure = quality_figure({key: history[key] for key in PLOT_KEYS})
        client.log_figure(run_id, figure, "monitor/live_quality.png")
        plt.close(figure)
    log.info("live quality: %d metric values logged on run %s", len(fresh), run_id)
    return len(fresh)


def _history(client: MlflowClient, run_id: str, key: str) -> dict[int, float]:
    """The first value logged at each step of ``key`` on the run."""
    points = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
    out: dict[int, float] = {}
    for metric in points:
        out.setdefault(int(metric.step), float(metric.value))
    return out


def quality_figure(series: dict[str, dict[int, float]]) -> Figure:
    """Macro-F1 and accuracy per window (x: the window's start date), one line per figure."""
    fig, ax = plt.subplots(figsize=(8, 4))
    drawn = False
    for key, points in series.items():
        if not points:
            continue
        steps = sorted(points)
        dates = [(EPOCH + pd.Timedelta(days=s)).to_pydatetime() for s in steps]
        ax.plot(dates, [points[s] for s in steps], marker="o", label=key.removeprefix("live_"))
        drawn = True
    if drawn:
        ax.legend(loc="lower left")
    else:
        ax.text(0.5, 0.5, "not enough labels in any window yet", ha="center", va="center")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("live figure")
    ax.set_xlabel("window start (UTC)")
    ax.set_title("Live quality per window (labeled tickets only)")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def table(report: LiveReport) -> list[dict[str, object]]:
    """One row per version and window, for a Prefect table artifact or the CLI.

    Rows: version, window (start date), predictions, labeled, accuracy, macro_f1, override,
    review, unlabeled (category figures, rounded), and note ("not enough labels (n < min)",
    with the label figures left empty).
    """
    rows: list[dict[str, object]] = []
    for version, windows in report.versions.items():
        for w in windows:
            figures = w.figures
            rows.append(
                {
                    "version": version,
                    "window": w.start.date().isoformat(),
                    "predictions": w.predictions,
                    "labeled": w.labeled,
                    "accuracy": _rounded(figures.get("category_accuracy")),
                    "macro_f1": _rounded(figures.get("category_macro_f1")),
                    "override": _rounded(figures.get("override_rate")),
                    "review": _rounded(figures.get("review_rate")),
                    "unlabeled": _rounded(figures.get("unlabeled_share")),
                    "note": w.message or "",
                }
            )
    return rows


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
