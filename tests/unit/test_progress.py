"""Progress reports: listeners hear every report made while they listen, from any thread."""

from __future__ import annotations

import threading

import pytest

from triage_ml import progress

pytestmark = pytest.mark.unit


def test_a_listener_hears_the_reports_made_while_it_listens_and_no_others() -> None:
    heard: list[tuple[str, float, float]] = []
    progress.report("before", 0, 1)
    with progress.listening(lambda *report: heard.append(report)):
        progress.report("retrain: snapshot", 0, 11)
        progress.report("retrain: split", 1, 11)
    progress.report("after", 1, 1)

    assert heard == [("retrain: snapshot", 0, 11), ("retrain: split", 1, 11)]


def test_reports_from_worker_threads_reach_the_listener() -> None:
    # Prefect runs tasks in worker threads; a context variable would not reach them.
    heard: list[str] = []
    with progress.listening(lambda description, *_: heard.append(description)):
        worker = threading.Thread(target=progress.report, args=("scoring: tickets scored", 5, 10))
        worker.start()
        worker.join()

    assert heard == ["scoring: tickets scored"]


def test_a_failing_listener_neither_stops_the_work_nor_the_other_listeners() -> None:
    def broken(description: str, completed: float, total: float) -> None:
        raise ConnectionError("the Prefect API is down")

    heard: list[float] = []
    with progress.listening(broken), progress.listening(lambda _, done, __: heard.append(done)):
        progress.report("ingest tickets", 1, 2)

    assert heard == [1]
