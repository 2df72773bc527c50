"""The loop closed in production: three replayed months, a drift in month two, the real flows.

history -> ingest -> retrain (version 1 champion) -> each month: ingest its tickets -> score ->
ingest the agents' answers -> monitor (trigger "inline", gate.on_pass "shadow",
promote_on_live). The drift (a new product line, Returns renamed Shipping) starts in month 2:
the monitor must see it, retrain once, run the new version in shadow in month 3 and promote it
on live evidence, while the tiers keep their precision targets on the labeled rows.

The months end at today's midnight, because the monitor reads the clock: its lookback, and
its "recent tickets" (``monitor.drift_days``), end now. Each month's run sets ``drift_days``
to reach back to its own month's first day only: the later months are not ingested yet, so
"recent" is exactly that month, as a monitor run at the end of it would see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from scipy.stats import binomtest

from triage_ml import ingest, registry, store
from triage_ml.monitoring import actions, live, tiers
from triage_ml.settings import Settings
from triage_ml.store import live as live_queries
from triage_ml.store.tables import AUTO, SUGGEST, shadow_predictions
from triage_ml.synth import replay

pytestmark = [pytest.mark.flows, pytest.mark.slow]

SEED = 25
HISTORY_ROWS, MONTH_ROWS = 1500, 600
UNLABELED = ingest.ColumnMapping(labeled=False)
# Month 1 starts three calendar months before today's midnight (UTC).
MONTH_ONE = (pd.Timestamp.now(tz="UTC").floor("D") - pd.DateOffset(months=3)).to_pydatetime()


def replay_settings(home: Path, drift_days: int = 7) -> Settings:
    """The replay's workspace: a fast retraining, weekly windows, an inline shadow loop.

    The lookback reaches back to month 1's first day, not into the history (which the
    scoring flow scores too, with the model that learned from it).
    """
    return Settings(
        home=home,
        train={
            "candidates": ("logreg",),
            "search": False,
            "cv_folds": 2,
            "cv_rows": 800,
            "priority_model": "baseline",
        },
        # A priority macro-F1 measured on ~600 live rows moves by about 0.02 between two
        # equally good models, so the replay's priority guardrail allows that much; the
        # default (0.01) is for held-out sets of thousands.
        gate={"on_pass": "shadow", "max_priority_drop": 0.03},
        monitor={
            "window": "week",
            "min_labels": 40,
            "lookback_days": days_back_to(pd.Timestamp(MONTH_ONE)),
            "drift_days": drift_days,
            "trigger": "inline",
            "promote_on_live": True,
            "shadow_min_labels": 60,
        },
    )


def days_back_to(moment: pd.Timestamp) -> int:
    """Whole days from ``moment`` to now: a drift window that starts at or after it."""
    return max(int((pd.Timestamp.now(tz="UTC") - moment) / pd.Timedelta(days=1)), 1)


def write_csv(frame: pd.DataFrame, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return str(path)


def start_workspace(settings: Settings, data: Path) -> dict[str, Any]:
    """Ingest the labeled history and its corrections; retrain: version 1 is champion."""
    from triage_ml.flows.ingest import ingest_feedback, ingest_tickets
    from triage_ml.flows.retrain import monthly_retrain

    past = replay.history(HISTORY_ROWS, SEED, start=MONTH_ONE)
    ingest_tickets(path=write_csv(past.tickets, data / "history.csv"), settings=settings)
    ingest_feedback(path=write_csv(past.feedback, data / "history-fb.csv"), settings=settings)
    return monthly_retrain(settings=settings)


def served_answers(settings: Settings, month: replay.Month) -> pd.DataFrame:
    """The champion's answers to the month's tickets, as the help desk received them."""
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        served = live_queries.served_predictions(conn, month.start)
    return served[served["ticket_id"].str.startswith(f"R{month.k}-")]


def play_month(home: Path, data: Path, k: int) -> dict[str, Any]:
    """Month ``k``: its tickets arrive, are scored, answered by agents; then the monitor runs."""
    from triage_ml.flows.ingest import ingest_feedback, ingest_tickets
    from triage_ml.flows.monitor import monitor
    from triage_ml.flows.score import score

    month = replay.month(k, MONTH_ROWS, SEED, start=MONTH_ONE)
    settings = replay_settings(home, days_back_to(month.start))
    path = write_csv(month.tickets, data / f"m{k}.csv")
    ingested = ingest_tickets(path=path, mapping=UNLABELED, settings=settings)
    assert ingested["stored"] == MONTH_ROWS
    scored = score(settings)
    served = served_answers(settings, month)
    answers = replay.agent_answers(served, month.truth, SEED + k)
    fed = ingest_feedback(path=write_csv(answers, data / f"m{k}-fb.csv"), settings=settings)
    assert fed["stored"] == len(answers) == MONTH_ROWS, fed
    return {"month": month, "scored": scored, "monitor": monitor(settings=settings)}


def audit_actions(settings: Settings) -> list[str]:
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        return [row["action"] for row in store.recent_decisions(conn, limit=1_000)]


def mean_live_f1(result: dict[str, Any], version: str, month: replay.Month) -> float:
    """The mean live macro-F1 of ``version``'s weekly windows that start inside ``month``."""
    start, end = month.start.date().isoformat(), month.end.date().isoformat()
    figures = [
        row["macro_f1"]
        for row in result["live"]
        if row["version"] == version
        and start <= row["window"] < end
        and row["macro_f1"] is not None
    ]
    assert figures, f"no live macro-F1 of version {version} in month {month.k}"
    return sum(figures) / len(figures)


def tier_precision(settings: Settings) -> dict[str, tuple[int, int]]:
    """Right and all answers per tier of the served answers on the replay months' labeled rows.

    The history's tickets are left out: the scoring flow scored them too, with the model
    that learned from them.
    """
    with store.opened(settings.store_url) as engine:
        frame = live.joined(engine, None)
    frame = frame[frame["ticket_id"].str.startswith(("R1-", "R2-", "R3-"))]
    by_class = tiers.measured_precision(frame)
    totals = by_class.groupby("tier")[["correct", "predictions"]].sum()
    return {str(t): (int(r["correct"]), int(r["predictions"])) for t, r in totals.iterrows()}


@pytest.fixture(scope="module")
def replayed(prefect_harness, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("replay")
    home, data = root / "home", root / "data"
    home.mkdir()
    first = start_workspace(replay_settings(home), data)
    assert first["champion_after"] == "1"
    months = {}
    for k in (1, 2, 3):
        months[k] = play_month(home, data, k)
        client = registry.use_workspace(replay_settings(home))
        months[k]["aliases"] = {
            alias: registry.alias_version(client, "ticket-triage", alias)
            for alias in ("champion", "challenger")
        }
    return {"home": home, "months": months, "settings": replay_settings(home)}


def test_the_drift_is_detected_in_month_two_not_month_one(replayed: dict[str, Any]) -> None:
    months = replayed["months"]
    first = months[1]["monitor"]["drift"]
    assert first["drifted"] is False, first["figures"]
    second = months[2]["monitor"]["drift"]
    assert second["drifted"] is True
    assert any(figure["drifted"] for figure in second["figures"])
    assert replay.DEVICES in second["new_labels"]
    kinds = {alert["kind"] for alert in months[2]["monitor"]["alerts"]}
    assert "drift" in kinds


def test_live_macro_f1_drops_in_month_two_and_is_reported(replayed: dict[str, Any]) -> None:
    months = replayed["months"]
    result = months[2]["monitor"]
    before = mean_live_f1(result, "1", months[1]["month"])
    after = mean_live_f1(result, "1", months[2]["month"])
    assert after < before - 0.1, (before, after)
    assert "live-quality" in {alert["kind"] for alert in result["alerts"]}
    client = registry.use_workspace(replayed["settings"])
    run_id = client.get_model_version("ticket-triage", "1").run_id
    logged = client.get_metric_history(run_id, "live_category_macro_f1")
    month_two = months[2]["month"]
    steps = {int(month_two.start.timestamp() // 86_400), int(month_two.end.timestamp() // 86_400)}
    assert any(min(steps) - 7 < m.step < max(steps) and m.value < before - 0.1 for m in logged)


def test_one_retrain_is_triggered_and_the_cool_down_holds(replayed: dict[str, Any]) -> None:
    months, settings = replayed["months"], replayed["settings"]
    assert months[1]["monitor"]["retrain"]["triggered"] is False, months[1]["monitor"]["alerts"]
    assert months[2]["monitor"]["retrain"]["triggered"] is True
    third = months[3]["monitor"]
    assert third["alerts"], "month 3 still drifts from version 1's training data"
    assert third["retrain"]["triggered"] is False
    assert audit_actions(settings).count(actions.RETRAIN_TRIGGERED) == 1
    with store.opened(settings.store_url) as engine:
        assert actions.in_cooldown(engine, settings).startswith("cool-down until")


def test_the_retrained_version_shadows_then_wins_on_live_evidence(
    replayed: dict[str, Any],
) -> None:
    months, settings = replayed["months"], replayed["settings"]
    assert months[2]["aliases"] == {"champion": "1", "challenger": "2"}
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        shadowed = live_queries.served_predictions(conn, None, shadow_predictions)
    third = shadowed[shadowed["ticket_id"].str.startswith("R3-")]
    assert len(third) == MONTH_ROWS and set(third["model_version"]) == {"2"}
    assert not shadowed["ticket_id"].str.startswith(("R1-", "R2-")).any()
    parallel = months[3]["monitor"]["shadow"]
    assert parallel["challenger"] == "2" and parallel["promoted"], parallel
    assert months[3]["aliases"] == {"champion": "2", "challenger": None}
    assert audit_actions(settings).count("live-promotion") == 1


def test_tiers_keep_their_precision_on_the_replay(replayed: dict[str, Any]) -> None:
    # Each tier's live precision is consistent with its target: the 95% interval of the
    # measured share reaches it (the auto tier has a few dozen labeled answers at most).
    counts = tier_precision(replayed["settings"])
    for tier, target in ((AUTO, 0.95), (SUGGEST, 0.80)):
        right, answers = counts[tier]
        assert answers >= 10, counts
        high = binomtest(right, answers).proportion_ci(0.95).high
        assert high >= target, (tier, right, answers, counts)


def test_served_tables_stay_untouched_by_the_shadow(replayed: dict[str, Any]) -> None:
    settings = replayed["settings"]
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        served = conn.execute(sa.select(store.predictions.c.model_version).distinct()).scalars()
        assert set(served) == {"1"}
