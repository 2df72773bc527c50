"""How `score` and `demo` show a scored ticket's answers: every issue 27 field, older models too."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from triage_ml.cli import demo, render, scoring
from triage_ml.scoring.files import ScoredWriter

pytestmark = pytest.mark.unit

PARTS = {
    "model": 80.0,
    "value": 65.2,
    "sentiment": None,
    "weights": {"model": 0.6, "value": 0.25, "sentiment": 0.15},
}
DUPLICATES = [{"ticket_id": "TCK-0000012", "similarity": 0.934, "same_customer": True}]
OLDER_MODEL = ("category", "category_proba", "top3", "priority", "priority_proba", "sentiment")


def predictions() -> pd.DataFrame:
    """Three answers: every contract A column and possible_duplicates, as scoring writes them."""
    return pd.DataFrame(
        {
            "ticket_id": ["NEW-0000001", "NEW-0000002", "NEW-0000003"],
            "model_version": ["4", "4", "4"],
            "category": ["Billing", "Technical", "unknown"],
            "category_proba": [0.93, 0.71, 0.2],
            "top3": ['[{"category": "Billing", "proba": 0.93}]'] * 3,
            "subcategory": ["Duplicate charge", None, None],
            "subcategory_proba": [0.81, math.nan, math.nan],
            "type": ["Incident", "Problem", "Service request"],
            "type_proba": [0.77, 0.55, 0.4],
            "team": ["billing-escalations", None, None],
            "team_proba": [0.88, math.nan, math.nan],
            "priority": ["high", "critical", "low"],
            "priority_proba": [0.64, 0.5, 0.9],
            "priority_score": [78.4, 91.0, math.nan],
            "priority_parts": [json.dumps(PARTS), json.dumps(PARTS), None],
            "priority_review": [True, False, False],
            "sentiment": [-0.62, math.nan, 0.3],
            "sentiment_reason": [None, "no sentiment analyzer for 'fr'", None],
            "language": ["de", "fr", "en"],
            "escalation": ['["legal", "repeat_contact"]', "[]", "[]"],
            "route": ["billing-escalations", "translation-queue", "general-queue"],
            "needs_review": [False, True, True],
            "tier": ["suggest", "review", "review"],
            "possible_duplicates": [json.dumps(DUPLICATES), "[]", "[]"],
        }
    )


def shown(renderable: object, width: int = 100) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def records(frame: pd.DataFrame) -> list[dict]:
    return [scoring.answer_record(row) for row in frame.to_dict("records")]


def cells(record: dict) -> dict[str, str]:
    """Each row of the answers table for one ticket, as its cell reads before wrapping."""
    return {label: show(record) for label, show in render.ANSWER_ROWS}


def test_every_new_answer_has_its_cell() -> None:
    first, second, third = (cells(r) for r in records(predictions()))
    assert first == {
        "category": "Billing (0.93)",
        "subcategory": "Duplicate charge (0.81)",
        "type": "Incident (0.77)",
        "team": "billing-escalations (0.88)",
        "route": "billing-escalations",
        "tier": "suggest",
        "language": "de",
        "sentiment": "-0.62",
        "escalation": "legal, repeat_contact",
        "priority": "high (0.64)",
        "priority score": "78.4 (model 80, value 65, sentiment -)",
        "priority review": "yes",
        "needs review": "no",
        "duplicates": "TCK-0000012 0.93 same customer",
    }
    assert second["sentiment"] == "- (no sentiment analyzer for 'fr')"
    assert second["subcategory"] == second["team"] == "-"
    assert (third["escalation"], third["duplicates"]) == ("none", "none")
    assert third["priority score"] == "-"


def test_the_table_shows_them_within_100_columns() -> None:
    # Piped output gets a 200-column console (cli.runner): the table still keeps to 100.
    text = shown(render.answers(records(predictions())), width=200)
    for expected in ("NEW-0000001", "Duplicate charge (0.81)", "billing-escalations", "78.4"):
        assert expected in text, expected
    for label, _ in render.ANSWER_ROWS:
        assert f"│ {label}" in text, label
    assert max(len(line) for line in text.splitlines()) <= 100


def test_json_answers_are_parsed_and_missing_ones_are_none() -> None:
    first, second, third = records(predictions())
    assert first["escalation"] == ["legal", "repeat_contact"]
    assert first["possible_duplicates"] == DUPLICATES
    assert first["priority_parts"]["value"] == 65.2
    assert second["subcategory"] is None and second["sentiment"] is None
    assert third["priority_parts"] is None and third["priority_score"] is None
    assert "top3" not in first
    json.dumps([first, second, third])  # --json can print them


def test_an_older_models_answers_render_with_dashes() -> None:
    older = predictions()[["ticket_id", *OLDER_MODEL]]
    rows = records(older)
    assert "subcategory" not in rows[0]
    text = shown(render.answers(rows))
    assert "Billing (0.93)" in text and "high (0.64)" in text
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "-" in lines["subcategory"] and "-" in lines["duplicates"]


def test_score_output_shows_the_first_answers(tmp_path: Path) -> None:
    out = tmp_path / "scored.json"
    writer = ScoredWriter(out, ".json", ())
    writer.write(predictions())
    writer.close()
    rows = [scoring.answer_record(row) for row in scoring.first_rows(out, 2)]
    assert [r["ticket_id"] for r in rows] == ["NEW-0000001", "NEW-0000002"]
    result = {
        "output": str(out),
        "scored": 3,
        "model_version": "4",
        "rejected": 0,
        "tiers": {"suggest": 1, "review": 2},
        "answers": rows,
    }
    text = shown(render.score(result))
    assert "scored 3 rows with version 4" in text and "Duplicate charge (0.81)" in text
    assert "answers to the first" not in shown(render.score({**result, "answers": []}))


def test_csv_output_first_rows(tmp_path: Path) -> None:
    out = tmp_path / "scored.csv"
    predictions().to_csv(out, index=False)
    rows = [scoring.answer_record(row) for row in scoring.first_rows(out, 5)]
    assert len(rows) == 3 and rows[0]["priority_review"] is True
    assert rows[0]["possible_duplicates"] == DUPLICATES and rows[1]["subcategory"] is None


def test_demo_picks_telling_tickets_and_shows_why() -> None:
    frame = pd.concat([predictions().iloc[[2]], predictions().iloc[[1, 0]]], ignore_index=True)
    picked = demo.pick_examples(records(frame), limit=2)
    assert [(p["ticket_id"], p["shown_for"]) for p in picked] == [
        ("NEW-0000001", "a possible duplicate"),
        ("NEW-0000003", "scored"),
    ]
    result = {
        "seconds": 12.3,
        "workspace": "/tmp/w",
        "ingest": {},
        "retrain": {
            "promoted": True,
            "candidate": "tfidf_logreg",
            "challenger_version": "1",
            "reason": "first model",
            "champion_version_before": None,
            "champion_version": "1",
            "run_id": "abc",
            "challenger_metrics": {},
            "champion_metrics": None,
        },
        "score": {"scored": 3, "model_version": "1", "needs_review": 2, "tiers": {}},
        "examples": picked,
    }
    text = shown(render.demo(result), width=200)
    assert "a few new tickets and their answers" in text
    assert "│ shown for       │ a possible duplicate" in text and "Duplicate charge" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_the_answer_fields_follow_the_model_s_output_columns() -> None:
    # The CLI keeps its own copy so that its import stays light; it must not drift.
    from triage_ml.cli.scoring import ANSWER_FIELDS
    from triage_model.predictor import OUTPUT_COLUMNS

    expected = [c for c in OUTPUT_COLUMNS if c != "top3"]
    assert list(ANSWER_FIELDS) == ["ticket_id", "model_version", *expected, "possible_duplicates"]
