"""The inbox: every dropped file ends in processed/ or failed/ (with why); none is taken twice."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa

from triage_ml import synth
from triage_ml.ingest import inbox
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    inbox.ensure_layout(folder)
    return folder


def drop(root: Path, kind: str, name: str, text: str) -> Path:
    path = root / kind / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_and_bad_files_are_sorted_and_nothing_is_taken_twice(
    root: Path, engine: sa.Engine, workspace: Settings, small_data: synth.SyntheticData
) -> None:
    small_data.tickets.head(200).to_csv(root / "tickets" / "history.csv", index=False)
    small_data.tickets.iloc[200:250].drop(columns=["category", "priority"]).to_csv(
        root / "new-tickets" / "new.csv", index=False
    )
    drop(root, "tickets", "wrong-columns.csv", "foo,bar\n1,2\n")
    drop(root, "feedback", "empty.csv", "")
    drop(root, "tickets", ".half-written.csv", "subject,body\n")
    drop(root, "tickets", "upload.csv.part", "subject,body\n")

    report = inbox.drain(root, partial(inbox.ingest_file, engine, workspace)).as_dict()

    assert sorted(Path(p["file"]).name.split("-", 1)[1] for p in report["processed"]) == [
        "history.csv",
        "new.csv",
    ]
    assert report["stored"] == 250
    failed = {Path(f["file"]).name.split("-", 1)[1]: f for f in report["failed"]}
    assert set(failed) == {"wrong-columns.csv", "empty.csv"}
    assert "not found" in failed["wrong-columns.csv"]["reason"]
    assert Path(failed["empty.csv"]["reason_file"]).read_text().startswith("input file is empty")
    assert Path(failed["empty.csv"]["file"]).parent == root / "failed" / "feedback"
    assert sorted(p.name for p in (root / "tickets").iterdir()) == [
        ".half-written.csv",
        "upload.csv.part",
    ]
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from tickets")).scalar_one() == 250

    again = inbox.drain(root, partial(inbox.ingest_file, engine, workspace)).as_dict()
    assert again == {"files": 0, "processed": [], "failed": [], "stored": 0}


def test_a_redropped_file_is_skipped_as_duplicate_rows(
    root: Path, engine: sa.Engine, workspace: Settings, small_data: synth.SyntheticData
) -> None:
    for _ in range(2):
        small_data.tickets.head(100).to_csv(root / "tickets" / "export.csv", index=False)
        report = inbox.drain(root, partial(inbox.ingest_file, engine, workspace)).as_dict()
    assert report["processed"][0]["stored"] == 0 and report["processed"][0]["skipped"] == 100
    assert (
        len(list((root / "processed" / "tickets").iterdir())) == 2
    )  # both copies kept, neither overwritten


def test_a_failure_that_is_not_the_files_fault_leaves_it_in_the_inbox(root: Path) -> None:
    path = drop(root, "surveys", "s.csv", "ticket_id,csat\n1,5\n")

    def database_down(item: inbox.InboxFile) -> None:
        raise sa.exc.OperationalError("insert", {}, Exception("connection refused"))

    with pytest.raises(sa.exc.OperationalError):
        inbox.drain(root, database_down)  # type: ignore[arg-type]
    assert path.is_file()
    assert not (root / "failed").exists()


def test_inbox_root_defaults_under_home_and_is_configurable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    assert inbox.inbox_root(Settings()) == (tmp_path / "home" / "inbox").resolve()
    monkeypatch.setenv("TRIAGE_SCHEDULES__INBOX_DIR", str(tmp_path / "drop"))
    assert inbox.inbox_root(Settings()) == (tmp_path / "drop").resolve()
