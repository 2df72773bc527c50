"""Checks a command makes before it starts Prefect or loads MLflow, so a refusal takes a second.

Starting Prefect's temporary server and importing MLflow and scikit-learn take
several seconds; a command that cannot do its work (an empty store, no
champion) says so in one line before paying for them. The flows check the
same things again: these checks only keep the common refusals fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from triage_ml.errors import RegistryError, TrainingDataError

if TYPE_CHECKING:
    from triage_ml.settings import Settings

# SQLite databases that live in memory and have no file to look for.
IN_MEMORY = (None, "", ":memory:")
# What MLflow's registry answers for a model that does not exist, and for an unset alias.
NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def require_training_data(settings: Settings) -> dict[str, float]:
    """Refuse a store that cannot train a classifier, before Prefect starts.

    Returns:
        The share of each category among the labeled tickets (for the routes' warnings).

    Raises:
        TrainingDataError: fewer labeled tickets than ``train.min_rows``, or a single category.
    """
    from triage_ml import store

    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        labeled = store.count_labeled(conn)
        shares = store.category_shares(conn) if labeled >= settings.train.min_rows else {}
    if labeled < settings.train.min_rows:
        raise TrainingDataError(
            f"only {labeled} labeled tickets in the store; at least {settings.train.min_rows}"
            " are needed to train (ingest labeled tickets first: `triage-ml ingest tickets FILE`)"
        )
    if len(shares) < 2:
        raise TrainingDataError(
            f"the labeled tickets have {len(shares)} category ({', '.join(sorted(shares))});"
            " a classifier needs at least two (ingest tickets of other categories)"
        )
    return shares


def require_tickets(settings: Settings) -> int:
    """Refuse to monitor an empty store, before Prefect starts.

    Returns:
        How many tickets the store holds.

    Raises:
        TrainingDataError: the store holds no ticket.
    """
    from triage_ml import store
    from triage_ml.monitoring.actions import EMPTY_STORE

    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        count = store.count_rows(conn, store.tickets)
    if count == 0:
        raise TrainingDataError(EMPTY_STORE)
    return count


def sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URI, or None for any other store (or an in-memory one)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(uri) if uri.startswith("sqlite") else None
    if parsed is None or parsed.get_backend_name() != "sqlite":
        return None
    return None if parsed.database in IN_MEMORY else Path(parsed.database)


def require_champion(settings: Settings, which: str = "champion") -> None:
    """Refuse to score with an alias no version carries, before scikit-learn or Prefect load.

    A registry kept in a SQLite file that does not exist holds no model at all:
    that answer needs no import. Otherwise MLflow's client asks the registry
    (the import of MLflow is paid anyway by the scoring that follows).

    Args:
        settings: the command's settings.
        which: ``champion`` (or another alias), or a version number (not checked here).

    Raises:
        RegistryError: the alias is unset, or no model is registered at all.
    """
    if which.isdigit():
        return
    no_alias = RegistryError(
        f"model '{settings.model_name}' has no '{which}' alias yet; run `triage-ml retrain` first"
    )
    registry_file = sqlite_file(settings.registry_uri)
    if registry_file is not None and not registry_file.exists():
        raise no_alias
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    try:
        client.get_model_version_by_alias(settings.model_name, which)
    except MlflowException as exc:
        # No such model, or no such alias; anything else (a server down) is not ours to name.
        if exc.error_code in NOT_FOUND:
            raise no_alias from None
