"""The production loop on a three-month replay: time to detect a drift, live figures, automation.

A temporary workspace is trained on a synthetic history (``--history`` tickets); then three
months of new tickets (``--month`` each, ``triage_ml.synth.replay``) arrive week by week. Each
week is ingested, scored, answered by the agents and followed by a run of the ``monitor``
flow (trigger "inline", gate.on_pass "shadow", promote_on_live), as a weekly monitor would
run. From month 2 the tickets drift: a new product line (~20%, a new category ``Devices``)
and every true ``Returns`` ticket relabeled ``Shipping``.

Prints:
- time to detect: days from the drift's first day to the first monitor run that flags it
  (drift, and live quality), and that run's wall seconds;
- live figures per window of every version (the last monitor run's table);
- automation coverage per class at 0.95 and 0.80 precision on the labeled live rows of
  month 1 (before the drift) and month 3 (after it; served by whichever champion answered).

Each weekly monitor run is given its week's end as ``as_of``: its lookback, its recent
tickets (the last ``monitor.drift_days``, 7) and its ended windows count back from there, as
a run on that day would. The cool-down reads the clock, so it is 0 here.

    python benchmarks/bench_monitor.py [--history 4000] [--month 2000] [--seed 25]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

THRESHOLD_PRECISIONS = (0.95, 0.80)


def replay_settings(
    home: Path, drift_days: int = 7, month_one: Any = None, as_of: Any = None
) -> Any:
    """A workspace with a fast retraining (logreg, no search) and the inline shadow loop.

    The lookback reaches back to month 1's first day (``month_one``), not into the history,
    which the scoring flow scores too with the model that learned from it.
    """
    from triage_ml.settings import Settings

    lookback = 100
    if month_one is not None:
        end = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp.now(tz="UTC")
        lookback = max(int((end - pd.Timestamp(month_one)) / pd.Timedelta(days=1)), 1)

    return Settings(
        home=home,
        train={"candidates": ("logreg",), "search": False, "priority_model": "baseline"},
        gate={"on_pass": "shadow"},
        monitor={
            "window": "week",
            "lookback_days": lookback,
            "drift_days": drift_days,
            "trigger": "inline",
            "promote_on_live": True,
            # Runs are a replayed week apart, longer than the 72-hour cool-down, but the clock
            # moves minutes between them: 0 lets the cool-down expire as it would by then.
            "cooldown_hours": 0,
        },
    )


def weeks(month: Any) -> list[tuple[pd.Timestamp, pd.DataFrame]]:
    """The month's tickets in replayed weeks: (the week's end, its tickets); the last is longer."""
    created = month.tickets["created_at"]
    ends = [month.start + pd.Timedelta(days=7 * i) for i in (1, 2, 3)] + [month.end]
    starts = [month.start, *ends[:-1]]
    return [(end, month.tickets[(created >= a) & (created < end)]) for a, end in zip(starts, ends)]


def write_csv(frame: pd.DataFrame, path: Path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def train_champion(home: Path, data: Path, rows: int, seed: int, start: Any) -> float:
    """Ingest the history and its corrections, retrain; returns the wall seconds."""
    from triage_ml.flows.ingest import ingest_feedback, ingest_tickets
    from triage_ml.flows.retrain import monthly_retrain
    from triage_ml.synth import replay

    started, settings = time.perf_counter(), replay_settings(home)
    past = replay.history(rows, seed, start=start)
    ingest_tickets(path=write_csv(past.tickets, data / "history.csv"), settings=settings)
    ingest_feedback(path=write_csv(past.feedback, data / "history-fb.csv"), settings=settings)
    monthly_retrain(settings=settings)
    return time.perf_counter() - started


def play_week(
    home: Path, data: Path, month: Any, end: pd.Timestamp, tickets: pd.DataFrame, seed: int
) -> dict[str, Any]:
    """One replayed week: ingest, score, the agents' answers, then a monitor run (timed)."""
    from triage_ml import ingest, store
    from triage_ml.flows.ingest import ingest_feedback, ingest_tickets
    from triage_ml.flows.monitor import monitor
    from triage_ml.flows.score import score
    from triage_ml.store import live as live_queries
    from triage_ml.synth import replay

    first = month.start - pd.DateOffset(months=month.k - 1)
    settings = replay_settings(home, 7, first, end)
    name = f"m{month.k}-{end:%Y%m%d}"
    unlabeled = ingest.ColumnMapping(labeled=False)
    ingest_tickets(
        path=write_csv(tickets, data / f"{name}.csv"), mapping=unlabeled, settings=settings
    )
    score(settings)
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        served = live_queries.served_predictions(conn, month.start)
    served = served[served["ticket_id"].isin(tickets["ticket_id"])]
    answers = replay.agent_answers(served, month.truth, seed)
    ingest_feedback(path=write_csv(answers, data / f"{name}-fb.csv"), settings=settings)
    started = time.perf_counter()
    result = monitor(settings=settings, as_of=end.to_pydatetime())
    return {"end": end, "month": month.k, "seconds": time.perf_counter() - started, **result}


def first_flag(runs: list[dict[str, Any]], drift_start: pd.Timestamp, kind: str) -> str:
    """``days after the drift's start (run seconds)`` of the first run raising ``kind``,
    and how many runs before the drift raised it (false alarms)."""
    raised = [run for run in runs if kind in {a["kind"] for a in run["alerts"]}]
    early = sum(run["end"] <= drift_start for run in raised)
    before = sum(run["end"] <= drift_start for run in runs)
    alarms = f"; false alarms before the drift: {early} of {before} runs"
    for run in raised:
        if run["end"] > drift_start:
            days = (run["end"] - drift_start) / pd.Timedelta(days=1)
            return f"{days:.0f} days (monitor run {run['seconds']:.1f} s){alarms}"
    return f"not detected{alarms}"


def first_promotion(runs: list[dict[str, Any]], drift_start: pd.Timestamp) -> str:
    """``version N, D days after the drift's start`` of the first live promotion, if any."""
    for run in runs:
        promoted = run["shadow"].get("promoted")
        if promoted:
            days = (run["end"] - drift_start) / pd.Timedelta(days=1)
            return f"version {promoted['champion']}, {days:.0f} days after the drift's start"
    return "none"


def coverage(home: Path, month: Any) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per serving version and class, automation coverage at each precision on the month's
    labeled live rows (a live promotion splits a month between two versions)."""
    from triage_ml import store
    from triage_ml.monitoring import live, tiers

    settings = replay_settings(home)
    with store.opened(settings.store_url) as engine:
        frame = live.joined(engine, month.start)
    frame = frame[frame["ticket_id"].str.startswith(f"R{month.k}-")]
    out = {}
    for version, rows in frame.groupby(frame["model_version"].astype(str)):
        truth, predicted, confidence = tiers.live_rows(rows)
        classes = sorted(set(truth.tolist()))
        at = {
            p: tiers.coverage_at(classes, truth, predicted, confidence, p, settings.automation)
            for p in THRESHOLD_PRECISIONS
        }
        out[version] = {c: {f"{p:g}": at[p][c] for p in THRESHOLD_PRECISIONS} for c in classes}
    return out


def drifted_figures(run: dict[str, Any]) -> str:
    """The run's drifted figures with their PSI, e.g. ``oov_share 0.21``."""
    named = [f"{f['figure']} {f['psi']:.2f}" for f in run["drift"]["figures"] if f.get("drifted")]
    return ", ".join(named)


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    print(pd.DataFrame(rows, columns=columns).to_string(index=False))


def print_coverage(home: Path, months: dict[int, Any]) -> None:
    """Coverage per class: month 1 (before the drift) and month 3 (after), per serving version."""
    columns = {}
    for k, when in ((1, "before"), (3, "after")):
        for version, figures in coverage(home, months[k]).items():
            for p in THRESHOLD_PRECISIONS:
                name = f"{when} v{version} @{p:g}"
                columns[name] = {c: shares[f"{p:g}"] for c, shares in figures.items()}
    table = pd.DataFrame(columns).sort_index()
    print("\nautomation coverage per class (labeled live rows of month 1 and month 3)")
    print(table.map(lambda v: "-" if pd.isna(v) else f"{v:.0%}").to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=4000)
    parser.add_argument("--month", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # Prefect's temporary server and MLflow keep their state in this run's folder.
        os.environ["PREFECT_HOME"] = str(root / "prefect")
        os.environ["MPLCONFIGDIR"] = str(root / "mpl")
        # No telemetry, as `make` exports for every target, when run without it.
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        os.environ.setdefault("DO_NOT_TRACK", "1")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        run(root, args)


def run(root: Path, args: argparse.Namespace) -> None:
    from triage_ml.synth import replay

    home, data = root / "home", root / "data"
    data.mkdir()
    home.mkdir()
    month_one = pd.Timestamp.now(tz="UTC").floor("D") - pd.DateOffset(months=3)
    seconds = train_champion(home, data, args.history, args.seed, month_one.to_pydatetime())
    print(f"history: {args.history} tickets, champion trained in {seconds:.0f} s")
    months = {k: replay.month(k, args.month, args.seed, start=month_one) for k in (1, 2, 3)}
    runs = []
    for k, month in months.items():
        for end, tickets in weeks(month):
            runs.append(play_week(home, data, month, end, tickets, args.seed + len(runs)))
            last = runs[-1]
            print(
                f"month {k}, week to {end:%Y-%m-%d}: {len(tickets)} tickets; monitor "
                f"{last['seconds']:.1f} s; drifted {drifted_figures(last) or '-'}; alerts "
                f"{[a['kind'] for a in last['alerts']] or '-'}; retrain "
                f"{'TRIGGERED' if last['retrain']['triggered'] else '-'}; shadow promoted "
                f"{bool(last['shadow'].get('promoted'))}"
            )
    drift_start = months[2].start
    print(f"\ntime to detect (drift from {drift_start:%Y-%m-%d}, weekly monitor runs):")
    for kind in ("drift", "live-quality"):
        print(f"  {kind}: {first_flag(runs, drift_start, kind)}")
    plain = [r["seconds"] for r in runs if not r["retrain"]["triggered"]]
    print(
        f"  monitor wall seconds: median {pd.Series(plain).median():.1f} without a retraining, "
        f"mean {sum(r['seconds'] for r in runs) / len(runs):.1f} over all {len(runs)} runs"
    )
    print(f"  retrainings triggered: {sum(bool(r['retrain']['triggered']) for r in runs)}")
    print(f"  promoted on live evidence: {first_promotion(runs, drift_start)}")
    print("\nlive figures per window (last monitor run):")
    from triage_ml.cli.monitoring import LIVE_COLUMNS

    print_table(runs[-1]["live"], list(LIVE_COLUMNS))
    print_coverage(home, months)


if __name__ == "__main__":
    main()
