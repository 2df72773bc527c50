"""Scored files join back to their source: source row and id, kept columns, top3 as a list."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from triage_ml.errors import InputError
from triage_ml.ingest import ColumnMapping
from triage_ml.scoring import files
from triage_model.predictor import INPUT_COLUMNS, OUTPUT_COLUMNS

pytestmark = pytest.mark.unit

LEVELS = ("low", "medium", "high", "urgent")
UNLABELED = ColumnMapping(labeled=False)


class EchoModel:
    """Predicts from the body's first word; records the columns it was given."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.seen.append(list(frame.columns))
        words = [body.split()[0] for body in frame["body"]]
        top3 = [
            json.dumps([{"category": w, "proba": 0.9}, {"category": "x", "proba": 0.1}])
            for w in words
        ]
        return pd.DataFrame(
            {
                "category": words,
                "category_proba": 0.9,
                "top3": top3,
                "priority": "low",
                "priority_proba": 0.8,
                "sentiment": 0.0,
                "route": "general-queue",
                "needs_review": False,
            }
        )


def tickets_file(tmp_path: Path, rows: int = 5, **extra: list) -> Path:
    """A CSV of ``rows`` tickets with an ``id`` column (no ``ticket_id``) and ``extra`` columns."""
    frame = pd.DataFrame(
        {
            "id": [f"T-{i}" for i in range(rows)],
            "subject": ["help"] * rows,
            "body": [f"word{i} please help me" for i in range(rows)],
            "account": [f"acct-{i}" for i in range(rows)],
            **extra,
        }
    )
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False)
    return path


def score(tmp_path: Path, suffix: str, keep: tuple[str, ...] = (), **kwargs) -> tuple[Path, dict]:
    source = kwargs.pop("source", None) or tickets_file(tmp_path)
    output = tmp_path / f"out{suffix}"
    mapping = kwargs.pop(
        "mapping", ColumnMapping(id_column="id", explicit=frozenset({"id_column"}), labeled=False)
    )
    summary = files.score_file(
        EchoModel(), "7", source, output, mapping, LEVELS, kwargs.pop("chunk_rows", 2), keep
    )
    return output, summary


def test_parquet_carries_source_row_id_and_kept_columns_and_top3_as_a_list(tmp_path: Path) -> None:
    output, summary = score(tmp_path, ".parquet", keep=("account",))
    assert summary["scored"] == 5
    table = pq.read_table(output)
    assert table.schema.field("top3").type == pa.list_(
        pa.struct([("category", pa.string()), ("proba", pa.float64())])
    )
    scored = table.to_pandas()
    assert scored.columns[:4].tolist() == ["ticket_id", "source_row", "source_id", "account"]
    assert scored["source_row"].tolist() == [1, 2, 3, 4, 5]
    assert scored["source_id"].tolist() == [f"T-{i}" for i in range(5)]
    assert scored["account"].tolist() == [f"acct-{i}" for i in range(5)]
    first = scored["top3"].iloc[0]
    assert [dict(item) for item in first] == [
        {"category": "word0", "proba": 0.9},
        {"category": "x", "proba": 0.1},
    ]


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_json_holds_top3_as_an_array_not_a_string(tmp_path: Path, suffix: str) -> None:
    output, _ = score(tmp_path, suffix, keep=("account",))
    text = output.read_text(encoding="utf-8")
    rows = (
        json.loads(text) if suffix == ".json" else [json.loads(line) for line in text.splitlines()]
    )
    assert len(rows) == 5
    assert rows[2]["top3"] == [{"category": "word2", "proba": 0.9}, {"category": "x", "proba": 0.1}]
    assert (rows[2]["source_row"], rows[2]["source_id"], rows[2]["account"]) == (3, "T-2", "acct-2")
    assert rows[2]["scored_at"].startswith("20") and rows[2]["model_version"] == "7"


def test_json_text_is_plain_utf8_without_escaped_slashes(tmp_path: Path) -> None:
    source = tickets_file(tmp_path, desk=["billing/refunds", "café", None, "a", "b"])
    output, _ = score(tmp_path, ".jsonl", keep=("desk",), source=source)
    text = output.read_text(encoding="utf-8")
    assert '"desk": "billing/refunds"' in text and '"desk": "café"' in text
    assert '"desk": null' in text


def test_csv_keeps_top3_as_a_json_string(tmp_path: Path) -> None:
    output, _ = score(tmp_path, ".csv")
    scored = pd.read_csv(output)
    assert json.loads(scored["top3"].iloc[1])[0] == {"category": "word1", "proba": 0.9}
    assert scored["source_id"].tolist() == [f"T-{i}" for i in range(5)]


def test_source_rows_skip_rejected_rows_and_match_the_rejected_file(tmp_path: Path) -> None:
    source = tickets_file(tmp_path)
    frame = pd.read_csv(source)
    frame.loc[2, ["subject", "body"]] = None  # no text: breaks the ticket contract
    frame.to_csv(source, index=False)
    output, summary = score(tmp_path, ".jsonl", source=source)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["source_row"] for r in rows] == [1, 2, 4, 5]
    assert [r["source_id"] for r in rows] == ["T-0", "T-1", "T-3", "T-4"]
    assert pd.read_csv(summary["rejected_file"])["row_number"].tolist() == [3]


def test_without_an_id_column_rows_still_join_back_by_source_row(tmp_path: Path) -> None:
    source = tickets_file(tmp_path)
    pd.read_csv(source).drop(columns="id").to_csv(source, index=False)
    output, _ = score(tmp_path, ".csv", source=source, mapping=UNLABELED)
    scored = pd.read_csv(output)
    assert "source_id" not in scored.columns and scored["source_row"].tolist() == [1, 2, 3, 4, 5]
    assert scored["ticket_id"].str.startswith("h-").all()


def test_empty_kept_values_in_a_first_chunk_stay_strings_in_parquet(tmp_path: Path) -> None:
    source = tickets_file(tmp_path, region=[None, None, "north", "south", None])
    output, _ = score(tmp_path, ".parquet", keep=("region",), source=source)
    table = pq.read_table(output)
    assert table.schema.field("region").type == pa.string()
    assert table.column("region").to_pylist() == [None, None, "north", "south", None]


def test_the_model_sees_only_its_input_columns(tmp_path: Path) -> None:
    model = EchoModel()
    files.score_file(
        model, "7", tickets_file(tmp_path), tmp_path / "out.csv", UNLABELED, LEVELS, 2, ("account",)
    )
    assert model.seen and all(set(columns) <= set(INPUT_COLUMNS) for columns in model.seen)


def test_an_unknown_kept_column_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError) as error:
        score(tmp_path, ".csv", keep=("account", "regoin"))
    message = str(error.value)
    assert "'regoin' not found" in message and "'account'" not in message
    assert "its columns are: id, subject, body, account" in message and "\n" not in message
    assert not list(tmp_path.glob("*out*"))


@pytest.mark.parametrize("name", ["category", "ticket_id", "source_row", "top3", "model_version"])
def test_a_kept_column_that_clashes_with_an_output_column_is_an_error(
    tmp_path: Path, name: str
) -> None:
    source = tickets_file(tmp_path, **{name: ["v"] * 5}) if name != "ticket_id" else None
    with pytest.raises(InputError, match=f"'{name}' would clash with the scored file's column"):
        score(tmp_path, ".parquet", keep=(name,), source=source)
    assert not list(tmp_path.glob("*out*"))


def test_every_output_column_is_one_a_kept_column_may_not_take() -> None:
    assert set(OUTPUT_COLUMNS) <= set(files.SCORED_COLUMNS)


@pytest.mark.parametrize("name", ["out.txt", "out"])
def test_an_unknown_output_format_names_the_formats(tmp_path: Path, name: str) -> None:
    with pytest.raises(
        InputError, match=r"--output must end in \.csv, \.parquet, \.json or \.jsonl"
    ):
        files.check_output(tmp_path / name, ())


def test_scoring_a_file_reports_its_progress_chunk_by_chunk(tmp_path: Path) -> None:
    from triage_ml import progress

    reports: list[tuple[str, float, float]] = []
    with progress.listening(lambda *report: reports.append(report)):
        score(tmp_path, ".csv", chunk_rows=2)
    assert [completed for _, completed, _ in reports] == [2, 4, 5]
    assert reports[-1][0] == "scoring: 5 rows read, 0 rejected"
