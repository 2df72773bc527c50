"""The review queue: what it ranks first, its bad input, its file's round trip through ingest."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from triage_ml import cli, ingest, store
from triage_ml.errors import InputError
from triage_ml.ingest.mapping import ColumnMapping
from triage_ml.monitoring import review
from triage_ml.settings import Settings
from triage_ml.store.tables import CONFIRMED, CORRECTED, shadow_predictions
from triage_ml.training import dataset

pytestmark = pytest.mark.unit

T0 = pd.Timestamp("2026-03-01T00:00:00Z")


def served(rows: list[tuple[str, str, float, str]]) -> pd.DataFrame:
    """(ticket_id, category, confidence, text) rows as :func:`review.newest` returns them."""
    return pd.DataFrame(
        {
            "ticket_id": [r[0] for r in rows],
            "model_version": "1",
            "category": [r[1] for r in rows],
            "category_proba": [r[2] for r in rows],
            "priority": "high",
            "subject": "",
            "body": [r[3] for r in rows],
        }
    ).set_index("ticket_id")


def test_each_signal_moves_a_ticket_up_the_queue() -> None:
    known = review.vocabulary(["refund my invoice", "password reset please"])
    waiting = served(
        [
            ("calm", "Billing", 0.95, "refund my invoice"),
            ("unsure", "Billing", 0.40, "refund my invoice"),
            ("novel", "Billing", 0.95, "solar panel inverter warranty"),
            ("disputed", "Billing", 0.95, "refund my invoice"),
        ]
    )
    challenger = pd.DataFrame({"category": ["Account"]}, index=pd.Index(["disputed"]))
    scored = review.signals(waiting, challenger, known)
    assert scored.loc["novel", "novelty"] == 1.0 and scored.loc["calm", "novelty"] == 0.0
    assert scored["disagreement"].tolist() == [0.0, 0.0, 0.0, 1.0]
    queue = review.choose(scored, budget=3)
    assert queue["ticket_id"].tolist()[-1] != "calm" and "calm" not in set(queue["ticket_id"])
    assert "challenger says Account" in queue.set_index("ticket_id").at["disputed", "why"]
    assert "100% of its words unseen" in queue.set_index("ticket_id").at["novel", "why"]


def test_without_a_challenger_uncertainty_and_novelty_decide() -> None:
    waiting = served([(f"T{i}", "Billing", 0.5 + i / 20, "refund my invoice") for i in range(8)])
    queue = review.choose(review.signals(waiting, pd.DataFrame(), set()), budget=3)
    assert queue["ticket_id"].tolist() == ["T0", "T1", "T2"]  # the least confident first


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(code: int, err: str, needle: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0]


def test_a_budget_below_one_is_one_error_line(workspace: Settings, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["review-queue", "--budget", "0"])
    one_error_line(stopped.value.code, capsys.readouterr().err, "0 is below the minimum of 1")
    with (
        store.opened(f"sqlite:///{workspace.home.parent / 'x.db'}") as engine,
        pytest.raises(InputError, match="budget must be at least 1 ticket"),
    ):
        review.build_queue(engine, 0)


def test_an_empty_store_is_one_error_line(workspace: Settings, capsys) -> None:
    code, _, err = run(capsys, "review-queue", "--budget", "5")
    one_error_line(code, err, "no scored ticket waits for a label")


def scored_workspace(settings: Settings, tmp_path: Path) -> None:
    """Ten labeled tickets, six unlabeled ones scored by version 1 and shadowed by version 2."""
    settings.home.mkdir(parents=True, exist_ok=True)
    rows = [
        {"ticket_id": f"L{i}", "subject": "refund", "body": "refund my invoice please"}
        for i in range(10)
    ]
    labeled = pd.DataFrame(rows).assign(category=["Billing", "Account"] * 5, priority="high")
    unlabeled = pd.DataFrame(
        {
            "ticket_id": [f"N{i}" for i in range(6)],
            "subject": "help",
            "body": ["refund my invoice"] * 4 + ["=solar inverter warranty", "refund invoice"],
        }
    )
    labeled.to_csv(tmp_path / "labeled.csv", index=False)
    unlabeled.to_csv(tmp_path / "new.csv", index=False)
    with store.opened(settings.store_url) as engine:
        ingest.ingest_configured(engine, settings, "tickets", tmp_path / "labeled.csv")
        ingest.ingest_configured(
            engine, settings, "tickets", tmp_path / "new.csv", ColumnMapping(labeled=False)
        )
        answers = pd.DataFrame(
            {
                "ticket_id": unlabeled["ticket_id"],
                "model_version": "1",
                "category": "Billing",
                "category_proba": [0.99, 0.98, 0.97, 0.45, 0.96, 0.95],
                "priority": "high",
                "scored_at": T0,
            }
        )
        with engine.begin() as conn:
            store.insert_rows(conn, store.predictions, answers, ("scored_at",))
            shadow = answers.assign(model_version="2", category=["Billing"] * 5 + ["Account"])
            store.insert_rows(conn, shadow_predictions, shadow, ("scored_at",))


def test_the_exported_queue_comes_back_through_feedback_ingest(
    workspace: Settings, tmp_path: Path, capsys
) -> None:
    scored_workspace(workspace, tmp_path)
    out = tmp_path / "queue.csv"
    code, stdout, err = run(capsys, "review-queue", "--budget", "3", "--out", str(out), "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert (result["exported"], result["waiting"], result["with_challenger"]) == (3, 6, 6)
    queue = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(queue.columns) == [*review.FEEDBACK_FILE_COLUMNS, *review.CONTEXT_COLUMNS]
    # Uncertain (N3), unlike the labeled tickets (N4), disputed by the challenger (N5).
    assert sorted(queue["ticket_id"]) == ["N3", "N4", "N5"]
    assert set(queue["model_version"]) == {"1"}
    assert (queue[["corrected_category", "agent_id", "corrected_at", "label_source"]] == "").all(
        axis=None
    )
    assert queue.set_index("ticket_id").at["N4", "body"].startswith("'=")  # never a formula
    assert "N3" not in err and "invoice" not in err  # nothing personal on the console's log side

    answered = queue.set_index("ticket_id")
    answered.loc["N3", "corrected_category"] = "Billing"  # the served answer: confirmed
    answered.loc["N5", "corrected_category"] = "Account"  # another label: corrected
    answered.loc["N4", ["corrected_category", "model_version"]] = ["Billing", "99"]
    answered["agent_id"], answered["corrected_at"] = "agent-1", "2026-03-02T09:00:00Z"
    answered.reset_index().to_csv(out, index=False)
    ingest.preflight_linked(out, "feedback")
    with store.opened(workspace.store_url) as engine:
        summary = ingest.ingest_configured(engine, workspace, "feedback", out)
        with engine.connect() as conn:
            tickets = pd.read_sql_table("tickets", conn)
            final = dataset.final_labels(tickets, store.all_feedback(conn))
    assert (summary.stored, summary.quarantined) == (2, 1)  # N4 names a version that never answered
    assert final.loc["N3", ["category", "category_source"]].tolist() == ["Billing", CONFIRMED]
    assert final.loc["N5", ["category", "category_source"]].tolist() == ["Account", CORRECTED]
    assert pd.isna(final.at["N4", "category"])
