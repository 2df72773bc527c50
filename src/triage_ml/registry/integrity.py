"""Integrity of a registered model's files: digests recorded at registration, checked on load.

A registered version carries two tags, written in the same call that creates it:

- ``triage.manifest``: canonical JSON naming every file of the model (its
  relative POSIX path) with the file's SHA-256;
- ``triage.manifest_sha256``: the SHA-256 of that JSON.

A loader copies a version's files from the artifact store into a private
directory, recomputes the manifest there and refuses the version unless its
digest is the recorded one, before MLflow reads ``MLmodel``, runs
``pyfunc_entry.py`` or imports any shipped code. The model is then loaded from
that directory, never from the store again. The tags live in the registry
database, so whoever can only write to the artifact store cannot make a
changed file pass (see docs/security.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from triage_ml.errors import RegistryError

logger = logging.getLogger(__name__)

MANIFEST_TAG = "triage.manifest"
MANIFEST_DIGEST_TAG = "triage.manifest_sha256"
# Appended to a files URI handed to scoring workers: they check the files
# against this digest without a registry query (see ``pinned_uri``).
PIN_MARK = "#" + MANIFEST_DIGEST_TAG + "="
# How many differing paths a refusal names.
SHOWN_PATHS = 3
# Files MLflow itself writes into a model's directory after registration: loading
# ``models:/<name>/<version>`` from a local artifact store writes the name and
# version (YAML) into the store's own directory. MLflow never reads it back, so
# it is left out of the manifest and removed from the checked copy.
WRITTEN_BY_MLFLOW: frozenset[str] = frozenset({"registered_model_meta"})

# Directories the verified models were loaded from: MLflow keeps their code
# directory on sys.path, so they live as long as the process (removed at exit).
_VERIFIED_DIRS: list[tempfile.TemporaryDirectory] = []
_DIRS_LOCK = threading.Lock()


def file_digests(directory: Path) -> dict[str, str]:
    """The SHA-256 of every file under ``directory``, by relative POSIX path.

    All but the top-level files MLflow writes itself (``WRITTEN_BY_MLFLOW``).

    Raises:
        RegistryError: a symbolic link or other non-regular file is present (a
            registered model has none, and a link could point anywhere).
    """
    digests: dict[str, str] = {}
    for root, dirs, files in os.walk(directory):
        for name in [*dirs, *files]:
            path = Path(root, name)
            relative = path.relative_to(directory).as_posix()
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise RegistryError(f"model file '{relative}' is not a regular file")
            if path.is_file() and relative not in WRITTEN_BY_MLFLOW:
                with path.open("rb") as handle:
                    digests[relative] = hashlib.file_digest(handle, "sha256").hexdigest()
    return dict(sorted(digests.items()))


def manifest_json(digests: Mapping[str, str]) -> str:
    """Canonical JSON of a manifest: sorted keys, no spaces, so equal manifests are equal text."""
    return json.dumps({"files": dict(digests)}, sort_keys=True, separators=(",", ":"))


def text_digest(text: str) -> str:
    """SHA-256 (hex) of ``text`` in UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_tags(directory: Path) -> dict[str, str]:
    """The two tags that record the files under ``directory``."""
    manifest = manifest_json(file_digests(directory))
    return {MANIFEST_TAG: manifest, MANIFEST_DIGEST_TAG: text_digest(manifest)}


def recorded_digest(tags: Mapping[str, str], label: str) -> str:
    """The manifest digest a version's tags record, checked against the manifest tag.

    Raises:
        RegistryError: the version records no digest (registered before these
            checks, or not by this project), or its two tags disagree.
    """
    digest, manifest = tags.get(MANIFEST_DIGEST_TAG), tags.get(MANIFEST_TAG)
    if not digest or manifest is None:
        raise RegistryError(
            f"{label} has no recorded file digests ({MANIFEST_DIGEST_TAG}); "
            "refusing to load it: register it again with this version of triage-ml"
        )
    if text_digest(manifest) != digest:
        raise RegistryError(f"{label}: its tags {MANIFEST_TAG} and {MANIFEST_DIGEST_TAG} disagree")
    return digest


def differing_paths(found: Mapping[str, str], manifest: str | None) -> list[str]:
    """Paths that are new, missing or changed compared with ``manifest`` (JSON), sorted."""
    if manifest is None:
        return []
    expected = json.loads(manifest)["files"]
    paths = set(found) | set(expected)
    return sorted(p for p in paths if found.get(p) != expected.get(p))


def check_files(directory: Path, digest: str, label: str, manifest: str | None = None) -> None:
    """Refuse ``directory`` unless its manifest's digest is ``digest``.

    Args:
        directory: The downloaded files of a model.
        digest: The recorded ``triage.manifest_sha256``.
        label: Names the model in the error, e.g. "version 3 of model 'ticket-triage'".
        manifest: The recorded manifest, when known: the error then names the differing files.

    Raises:
        RegistryError: the files differ from the recorded ones.
    """
    found = file_digests(directory)
    if text_digest(manifest_json(found)) == digest:
        return
    paths = differing_paths(found, manifest)
    named = f": {', '.join(paths[:SHOWN_PATHS])}" if paths else ""
    more = f" and {len(paths) - SHOWN_PATHS} more" if len(paths) > SHOWN_PATHS else ""
    raise RegistryError(
        f"{label}: its files do not match the digests recorded at registration{named}{more};"
        " refusing to load it"
    )


def private_directory() -> Path:
    """A new directory only this user can read, kept until the process exits."""
    directory = tempfile.TemporaryDirectory(prefix="triage-model-")
    with _DIRS_LOCK:
        _VERIFIED_DIRS.append(directory)
    return Path(directory.name)


def download_verified(
    files_uri: str,
    digest: str,
    label: str,
    manifest: str | None = None,
    tracking_uri: str | None = None,
) -> Path:
    """Copy a model's files from ``files_uri`` into a private directory and check them there.

    Nothing is read from the store after the check: the caller loads the
    returned directory.

    Raises:
        RegistryError: the files cannot be copied, or differ from the recorded ones.
    """
    directory = private_directory()
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=files_uri, dst_path=str(directory), tracking_uri=tracking_uri
            )
        )
    except (MlflowException, OSError) as exc:
        reason = exc.message if isinstance(exc, MlflowException) else str(exc)
        raise RegistryError(f"cannot copy the files of {label}: {last_line(reason)}") from exc
    for name in WRITTEN_BY_MLFLOW:
        written = local / name
        if written.is_symlink() or written.is_file():
            written.unlink()
    check_files(local, digest, label, manifest)
    logger.info("%s: %s matches its recorded digest", label, files_uri)
    return local


def last_line(message: str) -> str:
    """The last non-blank line of a library's message (MLflow's run over several)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else message


def pinned_uri(files_uri: str, digest: str) -> str:
    """``files_uri`` with the manifest digest its files must have, for a worker to check."""
    return f"{files_uri}{PIN_MARK}{digest}"


def split_pinned(uri: str) -> tuple[str, str | None]:
    """The files URI and the pinned digest of a :func:`pinned_uri` (None when not pinned)."""
    base, mark, digest = uri.rpartition(PIN_MARK)
    return (base, digest) if mark else (uri, None)
