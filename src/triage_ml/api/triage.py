"""The API's model runtime: the champion (and a shadow challenger) answering one ticket at a time.

A :class:`Triager` holds the models it answers with in one immutable snapshot.
Answers read the snapshot without a lock; a refresh builds a new one off to the
side and swaps it in whole, so a request sees one champion from start to end.
Every ``settings.api.model_refresh_seconds`` the first request past the
deadline re-reads the aliases (loading a newly promoted version if there is
one) while the other requests keep answering with the current snapshot.

Models are loaded only through the registry's verified path (files checked
against the digests recorded at registration), as batch scoring loads them,
and a ticket is predicted by :func:`triage_ml.scoring.batch.predictions_frame`,
so the API and batch scoring give the same rows for the same stored ticket.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from sqlalchemy.engine import Connection

from triage_ml import registry
from triage_ml.scoring import batch
from triage_ml.settings import Settings
from triage_ml.store import queries
from triage_ml.store import thresholds as threshold_queries
from triage_ml.training.evaluation import known_categories
from triage_model import features

logger = logging.getLogger(__name__)

Thresholds = dict[str, dict[str, float | None]]


@dataclass(frozen=True)
class Answer:
    """The triage of one ticket, in the rows the store keeps.

    Attributes:
        champion: one row in the predictions table's columns (what the caller is answered).
        shadow: the challenger's row for ``shadow_predictions``, or None (no challenger, or it
            failed on this ticket); never shown to a caller.
    """

    champion: pd.DataFrame
    shadow: pd.DataFrame | None


@dataclass(frozen=True)
class LoadedVersion:
    """A registered version's verified, loaded model."""

    version: str
    model: Any


@dataclass(frozen=True)
class Snapshot:
    """The models one answer uses, swapped whole on a refresh.

    ``thresholds`` caches each version's live tier thresholds on first use; a
    refresh starts a new snapshot with an empty cache, so the monitor's newer
    estimates are read at most ``model_refresh_seconds`` after they are stored.
    """

    champion: LoadedVersion
    challenger: LoadedVersion | None
    categories: frozenset[str]
    thresholds: dict[str, Thresholds | None] = field(default_factory=dict)

    def live_thresholds(self, conn: Connection, version: str) -> Thresholds | None:
        """``version``'s live tier thresholds, read from the store once per snapshot."""
        if version not in self.thresholds:
            # One dict item assignment is atomic: racing threads at worst read the same rows twice.
            self.thresholds[version] = threshold_queries.latest_thresholds(
                conn, version, threshold_queries.LIVE
            )
        return self.thresholds[version]


class Triager:
    """The champion (and shadow challenger) of the workspace, answering tickets on many threads.

    Args:
        settings: the workspace (model name, aliases, refresh interval, categories).
        client: the MLflow client on the workspace's registry; None opens one from ``settings``.
    """

    def __init__(self, settings: Settings, client: MlflowClient | None = None) -> None:
        self._settings = settings
        self._client = client or registry.client(settings)
        self._snapshot: Snapshot | None = None
        # Held only while a snapshot is built: answers never wait on it once one is loaded.
        self._building = threading.Lock()
        self._next_check = 0.0

    def load(self) -> None:
        """Load the champion (and the challenger, if another version has the alias), verified.

        Raises:
            RegistryError: no champion yet, or its files fail their integrity check.
        """
        with self._building:
            self._install(self._read_registry(None))

    @property
    def champion_version(self) -> str:
        """The version answering now (loading it first if nothing is loaded yet)."""
        return self._current().champion.version

    @property
    def challenger_version(self) -> str | None:
        """The shadow challenger's version, or None when none runs."""
        challenger = self._current().challenger
        return None if challenger is None else challenger.version

    def categories(self) -> frozenset[str]:
        """Labels a correction may use: the champion's classes and ``settings.categories``."""
        return self._current().categories

    def answer(self, conn: Connection, ticket: pd.DataFrame) -> Answer:
        """Triage a stored ticket with the champion, and with the shadow challenger if one runs.

        Args:
            conn: a connection inside the caller's transaction, which has stored ``ticket``.
            ticket: one row in the store's ticket columns.

        Returns:
            The champion's prediction row with its ``possible_duplicates``, and the
            challenger's (None when it failed: the champion's answer never depends on it).
        """
        self.refresh_if_due()
        snapshot = self._current()
        frame = with_repeat_contacts(conn, ticket)
        champion = predict(conn, snapshot, snapshot.champion, frame)
        # As batch scoring: the champion's answer carries the duplicate suggestions, the
        # shadow's (never shown) does not.
        champion = batch.with_duplicates(conn, champion, frame, self._settings.duplicates)
        shadow = None if snapshot.challenger is None else shadow_answer(conn, snapshot, frame)
        return Answer(champion, shadow)

    def refresh_if_due(self) -> None:
        """Re-read the aliases when ``settings.api.model_refresh_seconds`` have passed.

        One thread does it; the others find the lock taken and go on answering with
        the current snapshot while a newly promoted version loads. A failed refresh
        is logged (its error type only) and the current models keep answering.
        """
        if self._snapshot is None or time.monotonic() < self._next_check:
            return
        if not self._building.acquire(blocking=False):
            return
        try:
            if time.monotonic() >= self._next_check:
                self._install(self._read_registry(self._snapshot))
        except Exception as exc:
            logger.warning(
                "model refresh failed (%s); version %s keeps answering",
                type(exc).__name__,
                self._snapshot.champion.version,
            )
            self._next_check = time.monotonic() + self._settings.api.model_refresh_seconds
        finally:
            self._building.release()

    def _current(self) -> Snapshot:
        snapshot = self._snapshot
        if snapshot is None:
            with self._building:
                if self._snapshot is None:
                    self._install(self._read_registry(None))
            snapshot = self._snapshot
        assert snapshot is not None  # installed above, or RegistryError raised
        return snapshot

    def _install(self, snapshot: Snapshot) -> None:
        previous, self._snapshot = self._snapshot, snapshot
        self._next_check = time.monotonic() + self._settings.api.model_refresh_seconds
        if previous is None or versions(previous) != versions(snapshot):
            logger.info(
                "api answering with %s version %s (shadow challenger: %s)",
                self._settings.model_name,
                snapshot.champion.version,
                versions(snapshot)[1] or "none",
            )

    def _read_registry(self, current: Snapshot | None) -> Snapshot:
        """A new snapshot of where the aliases point, reusing ``current``'s models that stay."""
        settings = self._settings
        champion = registry.alias_version(
            self._client, settings.model_name, settings.champion_alias
        )
        if champion is None:
            if current is None:
                raise registry.no_champion_error(settings)
            logger.warning(
                "the '%s' alias is unset; version %s keeps answering",
                settings.champion_alias,
                current.champion.version,
            )
            return dataclasses.replace(current, thresholds={})
        challenger = registry.alias_version(
            self._client, settings.model_name, settings.challenger_alias
        )
        loaded = self._reuse_or_load(current, champion)
        shadow = None if challenger in (None, champion) else self._challenger(current, challenger)
        return Snapshot(loaded, shadow, self._categories(loaded.model))

    def _reuse_or_load(self, current: Snapshot | None, version: str) -> LoadedVersion:
        """``version``'s model: the one ``current`` holds already, else loaded and verified."""
        held = [] if current is None else [current.champion, current.challenger]
        for candidate in held:
            if candidate is not None and candidate.version == version:
                return candidate
        model_uri = registry.version_files(self._client, self._settings.model_name, version)
        return LoadedVersion(version, registry.process_model(self._settings, model_uri))

    def _challenger(self, current: Snapshot | None, version: str) -> LoadedVersion | None:
        """The shadow challenger, or None (logged) when it cannot load (the champion answers)."""
        try:
            return self._reuse_or_load(current, version)
        except Exception as exc:
            logger.warning(
                "shadow challenger version %s not loaded (%s): answering with the champion alone",
                version,
                type(exc).__name__,
            )
            return None

    def _categories(self, model: Any) -> frozenset[str]:
        return frozenset(known_categories(model) or ()) | frozenset(self._settings.categories or ())


def versions(snapshot: Snapshot) -> tuple[str, str | None]:
    """The champion's and challenger's versions of ``snapshot``."""
    challenger = snapshot.challenger
    return snapshot.champion.version, None if challenger is None else challenger.version


def with_repeat_contacts(conn: Connection, tickets: pd.DataFrame) -> pd.DataFrame:
    """``tickets`` with ``repeat_contacts`` counted from the store, as batch scoring counts it.

    NaN (what batch scoring reads from a NULL) for a ticket with no customer or no time.
    """
    counts = [
        queries.repeat_contacts_of(conn, str(ticket_id), features.REPEAT_WINDOW_DAYS)
        for ticket_id in tickets["ticket_id"]
    ]
    return tickets.assign(repeat_contacts=[math.nan if n is None else n for n in counts])


def predict(
    conn: Connection, snapshot: Snapshot, loaded: LoadedVersion, tickets: pd.DataFrame
) -> pd.DataFrame:
    """``loaded``'s prediction rows for ``tickets``, tiered by its live thresholds if any."""
    live = snapshot.live_thresholds(conn, loaded.version)
    return batch.predictions_frame(loaded.model, tickets, loaded.version, live)


def shadow_answer(
    conn: Connection, snapshot: Snapshot, tickets: pd.DataFrame
) -> pd.DataFrame | None:
    """The challenger's rows for ``tickets``, or None (logged) when it fails on them.

    The thresholds are read outside the ``try``: a failed read is the store's
    problem and dooms the caller's transaction, which must not pass for a
    challenger's failure. Only the error's type is logged, as its message may
    quote the ticket.
    """
    challenger = snapshot.challenger
    assert challenger is not None  # callers check
    live = snapshot.live_thresholds(conn, challenger.version)
    try:
        return batch.predictions_frame(challenger.model, tickets, challenger.version, live)
    except Exception as exc:
        logger.warning(
            "shadow challenger version %s failed on a ticket (%s); the champion's answer stands",
            challenger.version,
            type(exc).__name__,
        )
        return None
