"""MLflow: workspace setup, model logging, registration and aliases.

Scoring jobs serve ``models:/<name>@champion``; no run id or version is
ever hard-coded. The alias moves here are plain MLflow calls; the guard
around them (lock, compare-and-set, audit) is in ``promotion``.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import threading
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema

import triage_model
from triage_ml.errors import RegistryError
from triage_ml.settings import Settings
from triage_model.predictor import TriagePredictor, input_frame, save_predictor

# The model runtime: the only code a registered model ships (its code_paths).
RUNTIME_DIR = Path(triage_model.__file__).resolve().parent
MODEL_REQUIREMENTS: tuple[str, ...] = (
    "mlflow",
    "scikit-learn",
    "lightgbm",
    "skops",
    "vadersentiment",
    "pandas",
    "numpy",
    "scipy",
)


@dataclass(frozen=True)
class RegisteredModel:
    """A logged and registered model version."""

    name: str
    version: str
    model_uri: str
    run_id: str


def use_workspace(settings: Settings) -> MlflowClient:
    """Point MLflow at the workspace's stores and make sure the experiment exists.

    Called at the start of a job, never at import time.
    """
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    mlflow_client = client(settings)
    if mlflow_client.get_experiment_by_name(settings.experiment_name) is None:
        location = (
            None if settings.tracking_uri.startswith("http") else settings.artifact_root.as_uri()
        )
        mlflow_client.create_experiment(settings.experiment_name, artifact_location=location)
    mlflow.set_experiment(settings.experiment_name)
    return mlflow_client


def client(settings: Settings) -> MlflowClient:
    """A client on the workspace's tracking and registry stores."""
    return MlflowClient(settings.tracking_uri, settings.registry_uri)


def pinned_requirements() -> list[str]:
    """The model's pip requirements at the versions installed here."""
    return [f"{name}=={version(name)}" for name in MODEL_REQUIREMENTS]


def model_signature() -> ModelSignature:
    """Input and output schema of the triage model; only the body is required."""
    inputs = Schema(
        [
            ColSpec("string", "subject", required=False),
            ColSpec("string", "body"),
            ColSpec("string", "channel", required=False),
            ColSpec("string", "customer_tier", required=False),
            ColSpec("double", "customer_ltv", required=False),
            ColSpec("string", "language", required=False),
            ColSpec("double", "repeat_contacts", required=False),
        ]
    )
    outputs = Schema(
        [
            ColSpec("string", "category"),
            ColSpec("double", "category_proba"),
            ColSpec("string", "top3"),
            ColSpec("string", "priority", required=False),
            ColSpec("double", "priority_proba", required=False),
            ColSpec("double", "sentiment"),
            ColSpec("string", "route"),
            ColSpec("boolean", "needs_review"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(frame: pd.DataFrame, rows: int = 2) -> pd.DataFrame:
    """A few raw tickets in the model's input columns."""
    example = input_frame(frame).head(rows).copy()
    numeric = [c for c in ("customer_ltv", "repeat_contacts") if c in example.columns]
    example[numeric] = example[numeric].astype(float)
    return example.astype({c: object for c in example.columns if c not in numeric})


def log_triage_model(predictor: TriagePredictor, example: pd.DataFrame) -> str:
    """Log the predictor as a models-from-code pyfunc in the active run; returns its URI."""
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = save_predictor(predictor, Path(tmp))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(RUNTIME_DIR / "pyfunc_entry.py"),
            artifacts=artifacts,
            code_paths=[str(RUNTIME_DIR)],
            pip_requirements=pinned_requirements(),
            signature=model_signature(),
            input_example=example,
        )
    return info.model_uri


def register(
    model_uri: str, name: str, run_id: str, tags: dict[str, str] | None = None
) -> RegisteredModel:
    """Register a logged model as a new version of ``name``."""
    registered = mlflow.register_model(model_uri, name, tags=tags)
    return RegisteredModel(name, str(registered.version), model_uri, run_id)


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """Version an alias points at, or None when the alias (or model) is unset."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


@dataclass(frozen=True)
class Aliases:
    """Where the champion and previous-champion aliases point (None: unset)."""

    champion: str | None
    previous: str | None


# Tag on a version that became champion: the version it replaced, so a
# rollback can restore the previous-champion alias one step further back.
REPLACED_TAG = "champion.replaced"


def aliases(client: MlflowClient, settings: Settings) -> Aliases:
    """The current champion and previous-champion versions."""
    return Aliases(
        alias_version(client, settings.model_name, settings.champion_alias),
        alias_version(client, settings.model_name, settings.previous_alias),
    )


def _point(client: MlflowClient, name: str, alias: str, version: str | None) -> None:
    if version is None:
        with contextlib.suppress(MlflowException):
            client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, version)


def promote_version(
    client: MlflowClient, settings: Settings, version: str, before: Aliases
) -> Aliases:
    """Point champion at ``version``; the replaced champion becomes previous-champion.

    Callers hold the alias lock and have checked ``before`` (see ``promotion``).

    Returns:
        The aliases after the move.
    """
    name = settings.model_name
    client.get_model_version(name, version)  # raises for an unknown version before anything moves
    client.set_model_version_tag(name, version, REPLACED_TAG, before.champion or "")
    if before.champion is not None:
        client.set_registered_model_alias(name, settings.previous_alias, before.champion)
    client.set_registered_model_alias(name, settings.champion_alias, version)
    return Aliases(version, before.champion if before.champion is not None else before.previous)


def roll_back(client: MlflowClient, settings: Settings, before: Aliases) -> Aliases:
    """Point champion back at previous-champion, and previous-champion one step further back.

    Raises:
        RegistryError: there is no previous champion.
    """
    name = settings.model_name
    if before.previous is None:
        raise RegistryError(
            f"model '{name}' has no '{settings.previous_alias}' version to roll back to"
        )
    earlier = client.get_model_version(name, before.previous).tags.get(REPLACED_TAG) or None
    if earlier == before.champion:
        earlier = None  # never offer the version just rolled back from as the way back
    client.set_registered_model_alias(name, settings.champion_alias, before.previous)
    _point(client, name, settings.previous_alias, earlier)
    return Aliases(before.previous, earlier)


def restore_aliases(client: MlflowClient, settings: Settings, before: Aliases) -> None:
    """Put both aliases back where ``before`` says (undo of a move)."""
    _point(client, settings.model_name, settings.champion_alias, before.champion)
    _point(client, settings.model_name, settings.previous_alias, before.previous)


def champion_uri(settings: Settings) -> str:
    """``models:/<name>@champion`` for the configured model."""
    return f"models:/{settings.model_name}@{settings.champion_alias}"


def load_champion(client: MlflowClient, settings: Settings) -> tuple[Any, str] | None:
    """The champion pyfunc model and its version, or None when there is none."""
    current = alias_version(client, settings.model_name, settings.champion_alias)
    if current is None:
        return None
    return mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{current}"), current


def version_files(client: MlflowClient, name: str, version: str) -> str:
    """Where version ``version`` of model ``name`` keeps its files.

    That is the URI ``models:/<name>/<version>`` resolves to.

    Loading from there needs no registry query: a scoring worker that loads
    ``models:/...`` first opens a tracking-store client of its own, which is
    slow, so the flow resolves this once.
    """
    return client.get_model_version_download_uri(name, version)


@functools.lru_cache(maxsize=2)
def _cached_model(tracking_uri: str, registry_uri: str, model_uri: str) -> Any:
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    return mlflow.pyfunc.load_model(model_uri)


# Partitions scored on threads would otherwise load the model concurrently:
# twice the work, and MLflow's models-from-code loader swaps a stand-in
# ``dbutils`` module in and out of sys.modules without a lock, so two
# overlapping loads leave the stand-in behind (it broke hypothesis later on).
_LOADING = threading.Lock()


def process_model(settings: Settings, model_uri: str) -> Any:
    """The pyfunc model at ``model_uri`` (``models:/...`` or :func:`version_files`), loaded once.

    Scoring partitions on the same worker share it.
    """
    with _LOADING:
        return _cached_model(settings.tracking_uri, settings.registry_uri, model_uri)


def load_version(settings: Settings, which: str) -> tuple[Any, str]:
    """Load ``champion`` (alias) or a version number of the configured model.

    Raises:
        RegistryError: no such alias or version.
    """
    resolved = (
        alias_version(client(settings), settings.model_name, which)
        if not which.isdigit()
        else which
    )
    if resolved is None:
        raise RegistryError(
            f"model '{settings.model_name}' has no '{which}' alias yet;"
            " run `triage-ml retrain` first"
        )
    try:
        return mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{resolved}"), resolved
    except MlflowException as exc:
        raise RegistryError(
            f"cannot load version {resolved} of model '{settings.model_name}': {exc.message}"
        ) from exc
