"""The API's model runtime on a real trained workspace: same answers as batch scoring, refreshes.

Tests that move aliases or write thresholds work on a copy of the session's trained
workspace, where a second registered version shares version 1's (verified) files.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from mlflow import MlflowClient

from triage_ml import registry, store
from triage_ml.api import triage
from triage_ml.api.triage import Triager
from triage_ml.errors import RegistryError
from triage_ml.flows.score import find_champion
from triage_ml.scoring import batch
from triage_ml.settings import Settings
from triage_ml.store import queries
from triage_ml.store import shadow as shadow_queries
from triage_ml.store import thresholds as threshold_queries
from triage_model import features
from triage_model.predictor import UNKNOWN

pytestmark = pytest.mark.flows

# Columns batch scoring fills the same way for every call but the time of the call.
TIMELESS = ["scored_at"]


def quick(settings: Settings, seconds: float = 0.3) -> Settings:
    """``settings`` with the aliases re-read every ``seconds``."""
    api = settings.api.model_copy(update={"model_refresh_seconds": seconds})
    return settings.model_copy(update={"api": api})


@pytest.fixture
def own_home(trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A private copy of the trained workspace, with version 2 registered on version 1's files."""
    home = shutil.copytree(trained_home, tmp_path / "home")
    monkeypatch.setenv("TRIAGE_HOME", str(home))
    settings = Settings()
    client = registry.client(settings)
    first = client.get_model_version(settings.model_name, "1")
    second = client.create_model_version(
        settings.model_name, first.source, run_id=first.run_id, tags=dict(first.tags)
    )
    assert str(second.version) == "2"
    return settings


@pytest.fixture
def shared_store(trained_workspace: Settings) -> Iterator[sa.Engine]:
    """The shared workspace's store (read only here)."""
    with store.opened(trained_workspace.store_url) as opened:
        yield opened


def stored_tickets(conn: sa.Connection) -> pd.DataFrame:
    """Every stored ticket as batch scoring reads it (with the store's repeat_contacts)."""
    return store.unscored_tickets(
        conn, "no-such-version", 100_000, repeat_window_days=features.REPEAT_WINDOW_DAYS
    )


def one_ticket(chunk: pd.DataFrame, position: int) -> pd.DataFrame:
    """One row of a batch chunk in store columns, without the count batch scoring adds."""
    return chunk.iloc[[position]].drop(columns="repeat_contacts").reset_index(drop=True)


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    # As objects: a text answer that is null on every row of a one-ticket frame comes as object,
    # where a chunk with some values has it as pandas' string dtype (the values are compared).
    out = frame.drop(columns=TIMELESS).reset_index(drop=True).astype(object)
    return out.where(out.notna(), None)


def test_answers_equal_batch_scoring_of_the_same_tickets(
    trained_workspace: Settings, shared_store: sa.Engine
) -> None:
    triager = Triager(trained_workspace)
    triager.load()
    version = triager.champion_version
    assert version == "1"
    with shared_store.connect() as conn:
        chunk = stored_tickets(conn)
        # Tickets whose customers came back: their answers depend on the store's count.
        repeat = np.flatnonzero(chunk["repeat_contacts"].fillna(0).to_numpy() > 0)[:5]
        assert len(repeat) == 5
        model = registry.process_model(
            trained_workspace,
            registry.version_files(registry.client(trained_workspace), "ticket-triage", version),
        )
        expected = batch.predictions_frame(
            model, chunk, version, batch.live_thresholds(shared_store, version)
        )
        # The same duplicate suggestions too: one ticket alone as a chunk of all of them.
        expected = batch.with_duplicates(conn, expected, chunk, trained_workspace.duplicates)
        for position in [*repeat, 0]:
            answer = triager.answer(conn, one_ticket(chunk, position))
            assert answer.shadow is None
            assert len(answer.champion) == 1
            pd.testing.assert_frame_equal(
                comparable(answer.champion), comparable(expected.iloc[[position]])
            )


def test_repeat_contacts_are_counted_from_the_store_as_features_count_them(
    trained_workspace: Settings, shared_store: sa.Engine
) -> None:
    with shared_store.connect() as conn:
        chunk = stored_tickets(conn).head(300)
        counted = triage.with_repeat_contacts(conn, chunk.drop(columns="repeat_contacts"))
        in_memory = features.repeat_contacts(chunk, queries.customer_contacts(conn))
        unknown = queries.repeat_contacts_of(conn, "no-such-ticket", features.REPEAT_WINDOW_DAYS)
    np.testing.assert_array_equal(counted["repeat_contacts"].to_numpy(dtype=float), in_memory)
    assert (in_memory > 0).any()
    assert unknown is None


def test_repeat_contacts_of_one_ticket_on_each_store(engine: sa.Engine) -> None:
    # Customer c1 writes twice within 00:00:00, at 12:00 and 31 days later; T-4 has no customer.
    stamps = [
        "01-01 00:00:00",
        "01-01 00:00:00.5",
        "01-01 12:00:00",
        "02-01 12:00:00",
        "01-01 13:00",
    ]
    times = [pd.Timestamp(f"2026-{stamp}", tz="UTC") for stamp in stamps]
    frame = pd.DataFrame(
        {
            "ticket_id": [f"T-{i}" for i in range(5)],
            "created_at": times,
            "customer_id": ["c1", "c1", "c1", "c1", None],
            "body": "text",
            "content_hash": [f"h{i}" for i in range(5)],
            "batch_id": "b1",
            "ingested_at": pd.Timestamp("2026-03-01T00:00:00Z"),
        }
    )
    with engine.begin() as conn:
        store.insert_rows(conn, store.tickets, frame, ("created_at", "ingested_at"))
    with engine.connect() as conn:
        counted = [
            queries.repeat_contacts_of(conn, f"T-{i}", features.REPEAT_WINDOW_DAYS)
            for i in range(6)
        ]
    # Same second: not earlier; 31 days on: outside the window; no customer or no ticket: None.
    assert counted == [0.0, 0.0, 2.0, 0.0, None, None]


def test_concurrent_answers_agree(trained_workspace: Settings, shared_store: sa.Engine) -> None:
    triager = Triager(trained_workspace)
    with shared_store.connect() as conn:
        tickets = [one_ticket(stored_tickets(conn), i) for i in range(8)]

    def answer(ticket: pd.DataFrame) -> pd.DataFrame:
        with shared_store.connect() as conn:
            return comparable(triager.answer(conn, ticket).champion)

    alone = [answer(ticket) for ticket in tickets]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(answer, tickets * 2))
    for i, frame in enumerate(together):
        pd.testing.assert_frame_equal(frame, alone[i % len(tickets)])


def test_no_champion_is_the_scoring_error(own_home: Settings) -> None:
    client = registry.client(own_home)
    client.delete_registered_model_alias(own_home.model_name, own_home.champion_alias)
    with pytest.raises(RegistryError) as scoring:
        find_champion.fn(client, own_home)
    with pytest.raises(RegistryError) as loading:
        Triager(own_home, client).load()
    with store.opened(own_home.store_url) as engine, engine.connect() as conn:
        ticket = one_ticket(stored_tickets(conn), 0)
        with pytest.raises(RegistryError) as answering:
            Triager(own_home).answer(conn, ticket)
    assert str(loading.value) == str(scoring.value) == str(answering.value)
    assert "no 'champion' model yet for 'ticket-triage'" in str(loading.value)


def test_refresh_picks_up_a_promotion_after_the_interval(own_home: Settings) -> None:
    settings = quick(own_home, seconds=0.5)
    client = registry.client(settings)
    triager = Triager(settings, client)
    triager.load()
    assert (triager.champion_version, triager.challenger_version) == ("1", None)
    client.set_registered_model_alias(settings.model_name, settings.champion_alias, "2")
    triager.refresh_if_due()
    assert triager.champion_version == "1"  # not due yet: no registry query per request
    threading.Event().wait(0.6)
    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        answer = triager.answer(conn, one_ticket(stored_tickets(conn), 0))
    assert triager.champion_version == "2"
    assert answer.champion["model_version"].tolist() == ["2"]


def test_shadow_challenger_answers_apart(own_home: Settings) -> None:
    client = registry.client(own_home)
    client.set_registered_model_alias(own_home.model_name, own_home.challenger_alias, "2")
    triager = Triager(own_home, client)
    triager.load()
    assert (triager.champion_version, triager.challenger_version) == ("1", "2")
    with store.opened(own_home.store_url) as engine, engine.begin() as conn:
        answer = triager.answer(conn, one_ticket(stored_tickets(conn), 0))
        assert answer.shadow is not None
        # The rows the service writes, in the caller's transaction.
        assert store.write_predictions(conn, answer.champion) == 1
        assert shadow_queries.write_shadow_predictions(conn, answer.shadow) == 1
        assert shadow_queries.count_shadow_predictions(conn, "2") == 1
    assert answer.champion["model_version"].tolist() == ["1"]
    assert answer.shadow["model_version"].tolist() == ["2"]
    # Version 2 is version 1's files: the same answer, stored apart (without the duplicate
    # suggestions, which only the champion's answer carries).
    assert answer.shadow["possible_duplicates"].isna().all()
    pd.testing.assert_frame_equal(
        comparable(answer.shadow).drop(columns=["model_version", "possible_duplicates"]),
        comparable(answer.champion).drop(columns=["model_version", "possible_duplicates"]),
    )


class BrokenModel:
    """A challenger that fails on every ticket with a message quoting it."""

    def predict(self, tickets: pd.DataFrame) -> Any:
        raise ValueError(f"cannot read {tickets['body'].iloc[0]}")


def test_a_failing_challenger_leaves_the_champions_answer(
    trained_workspace: Settings, shared_store: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    triager = Triager(trained_workspace)
    triager.load()
    current = triager._current()
    broken = triage.Snapshot(
        current.champion, triage.LoadedVersion("9", BrokenModel()), current.categories
    )
    with shared_store.connect() as conn:
        ticket = triage.with_repeat_contacts(conn, one_ticket(stored_tickets(conn), 0))
        champion = triage.predict(conn, broken, broken.champion, ticket)
        with caplog.at_level(logging.WARNING, logger="triage_ml.api.triage"):
            shadow = triage.shadow_answer(conn, broken, ticket)
    assert shadow is None
    assert champion["model_version"].tolist() == ["1"]
    assert "version 9 failed on a ticket (ValueError)" in caplog.text
    assert str(ticket["body"].iloc[0]) not in caplog.text


def test_categories_are_the_champions_classes_and_the_configured_ones(
    trained_workspace: Settings,
) -> None:
    configured = trained_workspace.model_copy(update={"categories": ("billing", "gdpr-request")})
    triager = Triager(configured)
    triager.load()
    categories = triager.categories()
    assert "gdpr-request" in categories
    trained = set(categories) - {"gdpr-request"}
    assert len(trained) >= 3
    assert "not-a-category" not in categories


def test_live_thresholds_are_cached_until_the_refresh(own_home: Settings) -> None:
    settings = quick(own_home, seconds=0.5)
    triager = Triager(settings)
    triager.load()
    with store.opened(settings.store_url) as engine:
        with engine.connect() as conn:
            chunk = stored_tickets(conn)
            position = next(
                i
                for i in range(len(chunk))
                if triager.answer(conn, one_ticket(chunk, i)).champion["category"].iloc[0]
                != UNKNOWN
            )
            ticket = one_ticket(chunk, position)
            before = triager.answer(conn, ticket).champion.iloc[0]
        category, tier = str(before["category"]), str(before["tier"])
        # Unreachable tiers make the class "review"; zero thresholds make it "auto".
        bound = 0.0 if tier == "review" else None
        with engine.begin() as conn:
            threshold_queries.write_thresholds(
                conn, "1", {"auto": {category: bound}, "suggest": {category: bound}}, "live"
            )
        with engine.connect() as conn:
            cached = triager.answer(conn, ticket).champion.iloc[0]
            threading.Event().wait(0.6)
            fresh = triager.answer(conn, ticket).champion.iloc[0]
    assert cached["tier"] == tier
    assert fresh["tier"] == ("auto" if bound == 0.0 else "review")
    assert bool(fresh["needs_review"]) == (fresh["tier"] == "review")


class GatedClient:
    """A real MLflow client whose alias reads wait on ``gate`` while armed (a slow registry)."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client
        self.gate, self.entered, self.armed = threading.Event(), threading.Event(), False

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        if self.armed:
            self.entered.set()
            assert self.gate.wait(20)
        return self._client.get_model_version_by_alias(name, alias)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_answers_go_on_while_one_thread_refreshes(own_home: Settings) -> None:
    settings = quick(own_home, seconds=0.2)
    client = registry.client(settings)
    gated = GatedClient(client)
    triager = Triager(settings, gated)  # type: ignore[arg-type]
    triager.load()
    gated.armed = True
    threading.Event().wait(0.3)
    refresher = threading.Thread(target=triager.refresh_if_due)
    refresher.start()
    try:
        assert gated.entered.wait(30)
        with store.opened(settings.store_url) as engine, engine.connect() as conn:
            answer = triager.answer(conn, one_ticket(stored_tickets(conn), 0))
        assert answer.champion["model_version"].tolist() == ["1"]
        client.set_registered_model_alias(settings.model_name, settings.champion_alias, "2")
    finally:
        gated.gate.set()
        refresher.join(60)
    assert not refresher.is_alive()
    assert triager.champion_version == "2"
