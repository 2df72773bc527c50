"""Campaigns: a source's campaign_id or utm_campaign column lands in tickets.campaign_id."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from triage_ml import ingest, store
from triage_ml.settings import Settings

pytestmark = pytest.mark.data


def tickets_file(tmp_path: Path, campaign: str | None, values: list[str]) -> Path:
    frame = pd.DataFrame(
        {
            "ticket_id": [f"T{i}" for i in range(len(values))],
            "created_at": "2026-03-01T09:00:00Z",
            "body": "my order never arrived",
            "category": ["Shipping", "Billing"] * (len(values) // 2)
            + ["Shipping"] * (len(values) % 2),
        }
    )
    if campaign is not None:
        frame[campaign] = values
    path = tmp_path / f"tickets-{campaign}.csv"
    frame.to_csv(path, index=False)
    return path


def ingested(tmp_path: Path, path: Path) -> tuple[ingest.IngestSummary, pd.DataFrame]:
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir(exist_ok=True)
    with store.opened(settings.store_url) as engine:
        summary = ingest.ingest_configured(engine, settings, "tickets", path)
        with engine.connect() as conn:
            stored = pd.read_sql_table("tickets", conn).set_index("ticket_id")
    return summary, stored


@pytest.mark.parametrize("column", ["campaign_id", "utm_campaign"])
def test_either_campaign_column_is_stored_as_campaign_id(tmp_path: Path, column: str) -> None:
    summary, stored = ingested(tmp_path, tickets_file(tmp_path, column, ["spring-sale", "", "x"]))
    assert summary.stored == 3
    assert stored.at["T0", "campaign_id"] == "spring-sale"
    assert pd.isna(stored.at["T1", "campaign_id"])  # blank is no campaign


def test_without_a_campaign_column_the_campaign_is_null(tmp_path: Path) -> None:
    summary, stored = ingested(tmp_path, tickets_file(tmp_path, None, ["", ""]))
    assert summary.stored == 2 and stored["campaign_id"].isna().all()


def test_campaign_id_wins_over_utm_campaign(tmp_path: Path) -> None:
    path = tickets_file(tmp_path, "campaign_id", ["c1", "c2"])
    frame = pd.read_csv(path).assign(utm_campaign=["u1", "u2"])
    frame.to_csv(path, index=False)
    _, stored = ingested(tmp_path, path)
    assert stored["campaign_id"].tolist() == ["c1", "c2"]


def test_a_campaign_over_128_characters_is_quarantined(tmp_path: Path) -> None:
    summary, stored = ingested(
        tmp_path, tickets_file(tmp_path, "utm_campaign", ["ok", "x" * 129, "a", "b"])
    )
    assert (summary.stored, summary.quarantined) == (3, 1)
    assert list(stored.index) == ["T0", "T2", "T3"]


def test_a_file_without_a_campaign_never_wipes_a_stored_one(tmp_path: Path) -> None:
    ingested(tmp_path, tickets_file(tmp_path, "campaign_id", ["c1", "c2"]))
    relabeled = pd.read_csv(tickets_file(tmp_path, None, ["", ""])).assign(
        category=["Billing", "Shipping"]
    )
    path = tmp_path / "relabeled.csv"
    relabeled.to_csv(path, index=False)
    summary, stored = ingested(tmp_path, path)
    assert summary.updated == 2
    assert stored["campaign_id"].tolist() == ["c1", "c2"]
