"""`triage-ml score --input` with the real champion: output that joins back, top3 as a list."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from triage_ml import cli
from triage_ml.settings import Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def source_file(settings: Settings, tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """The workspace's new tickets, their id in ``external_id`` (so ``ticket_id`` is hashed)."""
    tickets = pd.read_csv(settings.home.parent / "data" / "new_tickets.csv", dtype=str).head(60)
    tickets = tickets.rename(columns={"ticket_id": "external_id"})
    tickets["region"] = [f"r{i % 3}" for i in range(len(tickets))]
    path = tmp_path / "in.csv"
    tickets.to_csv(path, index=False)
    return path, tickets


def run_score(source: Path, output: Path, *extra: str) -> int:
    return cli.main(["score", "--input", str(source), "--output", str(output), "--json", *extra])


def test_a_scored_parquet_and_json_join_back_with_top3_lists(
    trained_workspace: Settings, tmp_path: Path, capsys, caplog
) -> None:
    source, tickets = source_file(trained_workspace, tmp_path)
    keep = ["--keep-columns", "region,customer_id", "--id-column", "external_id"]
    with caplog.at_level(logging.WARNING):
        assert run_score(source, tmp_path / "out.parquet", *keep) == 0
        assert run_score(source, tmp_path / "out.json", *keep) == 0
    assert "Found extra inputs" not in caplog.text + capsys.readouterr().err

    table = pq.read_table(tmp_path / "out.parquet")
    assert str(table.schema.field("top3").type).startswith("list<")
    scored = table.to_pandas()
    joined = scored.merge(tickets, left_on="source_id", right_on="external_id")
    assert len(joined) == len(tickets) == len(scored)
    assert (joined["region_x"] == joined["region_y"]).all()
    assert (joined["customer_id_x"] == joined["customer_id_y"]).all()
    assert scored["source_row"].tolist() == list(range(1, len(tickets) + 1))
    top = [dict(item) for item in scored["top3"].iloc[0]]
    assert top[0]["category"] == scored["category"].iloc[0] and 0 < top[0]["proba"] <= 1

    rows = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert [r["source_id"] for r in rows] == tickets["external_id"].tolist()
    assert isinstance(rows[0]["top3"], list) and rows[0]["top3"][0]["category"]
    assert [r["category"] for r in rows] == scored["category"].tolist()


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        ("region,regoin", "--keep-columns: column(s) 'regoin' not found in"),
        ("region,category", "--keep-columns: 'category' would clash with the scored file's"),
    ],
)
def test_bad_keep_columns_are_one_line_errors(
    trained_workspace: Settings, tmp_path: Path, capsys, keep: str, message: str
) -> None:
    source, _ = source_file(trained_workspace, tmp_path)
    assert run_score(source, tmp_path / "out.csv", "--keep-columns", keep) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and message in err[-1]
    assert not list(tmp_path.glob("*out*"))


def test_keep_columns_without_an_input_file_is_refused(trained_workspace: Settings, capsys) -> None:
    assert cli.main(["score", "--keep-columns", "region"]) == 2
    assert "--keep-columns goes with --input" in capsys.readouterr().err
