"""Data tests of the contracts in data_contracts/: they load, they hold, they reject."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest

from triage_ml import synth
from triage_ml.ingest import contracts
from triage_ml.settings import Settings

pytestmark = pytest.mark.data

# The row contracts; escalation.yaml beside them holds the escalation signals' terms (issue 27).
NOT_ROW_CONTRACTS = ("escalation",)
CONTRACT_FILES = sorted(
    p for p in contracts.contracts_dir().glob("*.yaml") if p.stem not in NOT_ROW_CONTRACTS
)
NAMES = ("tickets", "feedback", "surveys")


def levels() -> tuple[str, ...]:
    return Settings().priority_levels


def tickets(**columns: object) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "ticket_id": ["A", "B"],
            "created_at": ["2026-01-01T00:00:00Z", None],
            "subject": [None, "s"],
            "body": ["text", "more"],
            "category": ["Billing", "Sales"],
            "priority": ["high", None],
        }
    )
    return frame.assign(**columns)


def test_every_contract_file_is_a_pandera_schema() -> None:
    assert {path.stem for path in CONTRACT_FILES} == set(NAMES)
    for path in CONTRACT_FILES:
        schema = pa.DataFrameSchema.from_yaml(path)
        assert schema.name == path.stem
        assert schema.coerce
        assert "ticket_id" in schema.columns and not schema.columns["ticket_id"].nullable


@pytest.mark.parametrize("name", NAMES)
def test_contracts_load_with_configured_checks(name: str) -> None:
    schema = contracts.load_schema(name, levels())
    checks = {column: [c.error for c in schema.columns[column].checks] for column in schema.columns}
    time_column = {"tickets": "created_at", "feedback": "corrected_at", "surveys": "answered_at"}[
        name
    ]
    assert "timestamp lies in the future" in checks[time_column]
    priority = {"tickets": "priority", "feedback": "corrected_priority"}.get(name)
    if priority:
        assert "priority is not on the configured scale" in checks[priority]


def test_configured_priority_scale_is_enforced() -> None:
    schema = contracts.load_schema("tickets", ("p1", "p2"))
    verdict = contracts.validate_rows(tickets(priority=["p1", "high"]), schema)
    assert verdict.valid["ticket_id"].tolist() == ["A"]
    assert verdict.rejected == {
        1: ["priority: priority is not on the configured scale (got 'high')"]
    }
    feedback = pd.DataFrame(
        {
            "ticket_id": ["A", "B"],
            "corrected_category": [None, "Sales"],
            "corrected_priority": ["p2", "p3"],
            "agent_id": ["a", None],
            "corrected_at": ["2026-01-01", "2026-01-02"],
        }
    )
    verdict = contracts.validate_rows(feedback, contracts.load_schema("feedback", ("p1", "p2")))
    assert list(verdict.rejected) == [1]


def test_checks_written_in_yaml_survive_the_configured_ones(tmp_path: Path) -> None:
    text = (contracts.contracts_dir() / "tickets.yaml").read_text()
    edited = text.replace(
        "  priority:\n    dtype: str\n",
        "  priority:\n    dtype: str\n    str_length: {max_value: 4}\n",
    )
    assert edited != text
    (tmp_path / "tickets.yaml").write_text(edited)
    schema = contracts.load_schema("tickets", ("high", "normal", "low"), directory=tmp_path)
    verdict = contracts.validate_rows(tickets(priority=["normal", "urgent"]), schema)
    assert verdict.valid.empty
    assert verdict.rejected[0] == ["priority: str_length(None, 4) (got 'normal')"]
    assert verdict.rejected[1] == [
        "priority: str_length(None, 4) (got 'urgent')",
        "priority: priority is not on the configured scale (got 'urgent')",
    ]


def test_future_timestamps_are_rejected_and_recent_ones_kept() -> None:
    now = pd.Timestamp.now(tz="UTC")
    stamps = [
        (now - pd.Timedelta(minutes=1)).isoformat(),
        (now + pd.Timedelta(hours=1)).isoformat(),
    ]
    verdict = contracts.validate_rows(
        tickets(created_at=stamps), contracts.load_schema("tickets", levels())
    )
    assert verdict.valid["ticket_id"].tolist() == ["A"]
    assert verdict.rejected[1][0].startswith("created_at: timestamp lies in the future")


def test_a_missing_required_column_concerns_the_whole_batch() -> None:
    with pytest.raises(pa.errors.SchemaErrors):
        contracts.validate_rows(
            tickets().drop(columns=["body"]), contracts.load_schema("tickets", levels())
        )


def test_synthetic_data_satisfies_every_contract() -> None:
    data = synth.generate(300, months=2, seed=5)
    for name, frame in (
        ("tickets", data.tickets),
        ("feedback", data.feedback),
        ("surveys", data.surveys),
    ):
        verdict = contracts.validate_rows(frame, contracts.load_schema(name, levels()))
        assert verdict.rejected == {}, name
        assert len(verdict.valid) == len(frame)


def test_synthetic_data_read_back_as_strings_satisfies_the_contract(tmp_path: Path) -> None:
    # Ingestion reads every value as a string; the contract must coerce them all.
    data = synth.generate(200, months=2, seed=6)
    path = synth.write(data, tmp_path)["tickets"]
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    verdict = contracts.validate_rows(raw, contracts.load_schema("tickets", levels()))
    assert verdict.rejected == {}
    assert str(verdict.valid["created_at"].dtype) == "datetime64[ns, UTC]"
    assert verdict.valid["customer_ltv"].dtype == "float64"
