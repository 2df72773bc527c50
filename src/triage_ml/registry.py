"""MLflow: workspace setup, model logging, registration and aliases.

Scoring jobs serve ``models:/<name>@champion``; no run id or version is
ever hard-coded. Alias moves go through :func:`move_champion`, a guarded
compare-and-set.
"""

from __future__ import annotations

import tempfile
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

from triage_ml.errors import RegistryError
from triage_ml.model import INPUT_COLUMNS, TriagePredictor, save_predictor
from triage_ml.settings import Settings

PACKAGE_DIR = Path(__file__).resolve().parent
MODEL_REQUIREMENTS: tuple[str, ...] = ("mlflow", "scikit-learn", "lightgbm", "skops", "vadersentiment", "pandas", "numpy", "scipy")


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
    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    if client.get_experiment_by_name(settings.experiment_name) is None:
        location = None if settings.tracking_uri.startswith("http") else settings.artifact_root.as_uri()
        client.create_experiment(settings.experiment_name, artifact_location=location)
    mlflow.set_experiment(settings.experiment_name)
    return client


def pinned_requirements() -> list[str]:
    """The model's pip requirements at the versions installed here."""
    return [f"{name}=={version(name)}" for name in MODEL_REQUIREMENTS]


def model_signature() -> ModelSignature:
    """Input and output schema of the triage model; only the body is required."""
    inputs = Schema([
        ColSpec("string", "subject", required=False), ColSpec("string", "body"),
        ColSpec("string", "channel", required=False), ColSpec("string", "customer_tier", required=False),
        ColSpec("double", "customer_ltv", required=False), ColSpec("string", "language", required=False),
        ColSpec("double", "repeat_contacts", required=False),
    ])
    outputs = Schema([
        ColSpec("string", "category"), ColSpec("double", "category_proba"), ColSpec("string", "top3"),
        ColSpec("string", "priority", required=False), ColSpec("double", "priority_proba", required=False),
        ColSpec("double", "sentiment"), ColSpec("string", "route"), ColSpec("boolean", "needs_review"),
    ])
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(frame: pd.DataFrame, rows: int = 2) -> pd.DataFrame:
    """A few raw tickets in the model's input columns."""
    example = frame[[c for c in INPUT_COLUMNS if c in frame.columns]].head(rows).copy()
    numeric = [c for c in ("customer_ltv", "repeat_contacts") if c in example.columns]
    example[numeric] = example[numeric].astype(float)
    return example.astype({c: object for c in example.columns if c not in numeric})


def log_triage_model(predictor: TriagePredictor, example: pd.DataFrame) -> str:
    """Log the predictor as a models-from-code pyfunc in the active run; returns its URI."""
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = save_predictor(predictor, Path(tmp))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PACKAGE_DIR / "pyfunc_entry.py"),
            artifacts=artifacts,
            code_paths=[str(PACKAGE_DIR)],
            pip_requirements=pinned_requirements(),
            signature=model_signature(),
            input_example=example,
        )
    return info.model_uri


def register(model_uri: str, name: str, run_id: str, tags: dict[str, str] | None = None) -> RegisteredModel:
    """Register a logged model as a new version of ``name``."""
    registered = mlflow.register_model(model_uri, name, tags=tags)
    return RegisteredModel(name, str(registered.version), model_uri, run_id)


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """Version an alias points at, or None when the alias (or model) is unset."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def move_champion(client: MlflowClient, settings: Settings, version: str, expected: str | None) -> None:
    """Point the champion alias at ``version`` if it still points at ``expected``.

    The replaced version stays reachable under the previous-champion alias.

    Raises:
        RegistryError: the champion moved since the decision was taken.
    """
    current = alias_version(client, settings.model_name, settings.champion_alias)
    if current != expected:
        raise RegistryError(f"champion moved from {expected} to {current} during evaluation; not promoting {version}")
    if current is not None:
        client.set_registered_model_alias(settings.model_name, settings.previous_alias, current)
    client.set_registered_model_alias(settings.model_name, settings.champion_alias, version)


def champion_uri(settings: Settings) -> str:
    """``models:/<name>@champion`` for the configured model."""
    return f"models:/{settings.model_name}@{settings.champion_alias}"


def load_champion(client: MlflowClient, settings: Settings) -> tuple[Any, str] | None:
    """The champion pyfunc model and its version, or None when there is none."""
    current = alias_version(client, settings.model_name, settings.champion_alias)
    if current is None:
        return None
    return mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{current}"), current


def load_version(settings: Settings, which: str) -> tuple[Any, str]:
    """Load ``champion`` (alias) or a version number of the configured model.

    Raises:
        RegistryError: no such alias or version.
    """
    client = MlflowClient(settings.tracking_uri, settings.registry_uri)
    resolved = alias_version(client, settings.model_name, which) if not which.isdigit() else which
    if resolved is None:
        raise RegistryError(f"model '{settings.model_name}' has no '{which}' alias yet; run `triage-ml retrain` first")
    try:
        return mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{resolved}"), resolved
    except MlflowException as exc:
        raise RegistryError(f"cannot load version {resolved} of model '{settings.model_name}': {exc.message}") from exc
