"""A registered version's files are checked against their recorded digests before any of it runs.

Each test registers its own version of one small fitted predictor in a real
workspace (SQLite registry, file artifact store), tampers with the stored
files as an attacker with write access to the artifact store would, and loads
it through the project's loaders: the one-line refusal comes first, and the
payload (which would create a marker file) never runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import pytest
from mlflow import MlflowClient
from threadpoolctl import threadpool_limits

from skops_payloads import crafted_file, payloads
from triage_ml import registry, synth
from triage_ml.errors import RegistryError
from triage_ml.registry import integrity, versions
from triage_ml.settings import Settings
from triage_ml.training import candidates, fit
from triage_ml.training.inputs import prepare
from triage_model.predictor import TriagePredictor

pytestmark = [pytest.mark.flows, pytest.mark.slow]

REFUSED = "do not match the digests recorded at registration"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("integrity") / "home"


@pytest.fixture(scope="module")
def predictor(small_data: synth.SyntheticData) -> TriagePredictor:
    with threadpool_limits(1):
        inputs = prepare(small_data.tickets)
        spec = candidates.category_specs(("complement_nb",), grids={})[-1]
        return fit.fit_predictor(inputs, spec, {"review_threshold": 0.5}, seed=0)


@pytest.fixture
def settings(home: Path) -> Settings:
    settings = Settings(home=home)
    registry.use_workspace(settings)
    return settings


@pytest.fixture
def client(settings: Settings) -> MlflowClient:
    return registry.client(settings)


def new_version(settings: Settings, predictor: TriagePredictor, example) -> str:
    """Log and register the predictor as a new version, as the retraining does."""
    with mlflow.start_run() as run:
        uri = registry.log_triage_model(predictor, example)
    return registry.register(uri, settings.model_name, run.info.run_id).version


@pytest.fixture
def version(settings: Settings, predictor: TriagePredictor, small_data: synth.SyntheticData) -> str:
    """A fresh version of the test's own."""
    return new_version(settings, predictor, registry.input_example(small_data.tickets))


def stored(client: MlflowClient, settings: Settings, version: str) -> Path:
    """The version's directory in the (file) artifact store: what an attacker would write to."""
    uri = client.get_model_version_download_uri(settings.model_name, version)
    return Path(unquote(urlparse(uri).path))


def payload(marker: Path) -> str:
    return f"\nopen({str(marker)!r}, 'w').write('ran')\n"


def test_a_registered_version_records_the_digest_of_every_stored_file(
    client: MlflowClient, settings: Settings, version: str
) -> None:
    tags = client.get_model_version(settings.model_name, version).tags
    digest = integrity.recorded_digest(tags, "v")
    directory = stored(client, settings, version)
    on_disk = sorted(
        p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()
    )
    assert integrity.file_digests(directory) == json.loads(tags[integrity.MANIFEST_TAG])["files"]
    assert sorted(json.loads(tags[integrity.MANIFEST_TAG])["files"]) == on_disk
    assert {"pyfunc_entry.py", "code/triage_model/pyfunc_entry.py", "MLmodel"} <= set(on_disk)
    assert any(p.endswith("category.skops") for p in on_disk)
    assert digest == integrity.text_digest(
        integrity.manifest_json(integrity.file_digests(directory))
    )
    # MLflow's own load by name writes registered_model_meta into a file store: still accepted.
    mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
    assert (directory / "registered_model_meta").is_file()
    model, loaded = registry.load_version(settings, version)
    assert loaded == version and model.metadata.get_input_schema() is not None


def test_a_tampered_entry_point_is_refused_before_it_runs(
    client: MlflowClient, settings: Settings, version: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    entry = stored(client, settings, version) / "pyfunc_entry.py"
    entry.write_text(entry.read_text() + payload(marker))
    with pytest.raises(RegistryError, match=REFUSED) as refused:
        registry.load_version(settings, version)
    assert "pyfunc_entry.py" in str(refused.value) and "\n" not in str(refused.value)
    assert not marker.exists()
    # What the loader did before it checked digests: MLflow runs the tampered entry point.
    mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
    assert marker.exists()


def test_tampered_shipped_code_is_refused_on_a_scoring_worker(
    client: MlflowClient, settings: Settings, version: str, tmp_path: Path
) -> None:
    uri = registry.version_files(client, settings.model_name, version)  # resolved by the flow
    marker = tmp_path / "ran"
    shipped = stored(client, settings, version) / "code" / "triage_model" / "pyfunc.py"
    shipped.write_text(shipped.read_text() + payload(marker))
    # The pinned URI carries the manifest's digest alone: the refusal cannot name the file.
    with pytest.raises(RegistryError, match=REFUSED):
        registry.process_model(settings, uri)
    with pytest.raises(RegistryError, match=rf"{REFUSED}: code/triage_model/pyfunc\.py"):
        registry.process_model(settings, f"models:/{settings.model_name}/{version}")
    assert not marker.exists()


def test_an_added_module_is_refused(
    client: MlflowClient, settings: Settings, version: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    code = stored(client, settings, version) / "code" / "triage_model"
    (code / "sitecustomize.py").write_text(payload(marker))
    with pytest.raises(RegistryError, match=r"code/triage_model/sitecustomize\.py"):
        versions.verified_version_files(settings, version)
    assert not marker.exists()


def test_a_swapped_skops_file_is_refused_when_the_champion_loads(
    client: MlflowClient, settings: Settings, version: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    directory = stored(client, settings, version)
    crafted_file(directory / "artifacts" / "category.skops", payloads(marker)["numpy-runstring"])
    client.set_registered_model_alias(settings.model_name, settings.champion_alias, version)
    with pytest.raises(RegistryError, match=rf"{REFUSED}: artifacts/category\.skops"):
        registry.load_champion(client, settings)
    assert not marker.exists()
    # With the tags rewritten too (write access to the registry database as well),
    # the allow-list still refuses the file, in one line, before anything runs.
    for name, value in integrity.manifest_tags(directory).items():
        client.set_model_version_tag(settings.model_name, version, name, value)
    with pytest.raises(RegistryError, match="outside the allow-list") as refused:
        registry.load_champion(client, settings)
    assert "numpy.testing._private.utils.runstring" in str(refused.value)
    assert "\n" not in str(refused.value) and not marker.exists()


def test_a_version_registered_without_digests_is_refused(
    client: MlflowClient, settings: Settings, version: str
) -> None:
    source = client.get_model_version(settings.model_name, version).source
    bare = mlflow.register_model(source, settings.model_name).version
    with pytest.raises(RegistryError, match="no recorded file digests"):
        registry.load_version(settings, str(bare))
    with pytest.raises(RegistryError, match="no recorded file digests"):
        registry.version_files(client, settings.model_name, str(bare))


def test_serving_gets_a_checked_copy_outside_the_store(
    client: MlflowClient, settings: Settings, version: str
) -> None:
    client.set_registered_model_alias(settings.model_name, settings.champion_alias, version)
    path, resolved = versions.verified_version_files(settings, "champion")
    assert resolved == version and not path.is_relative_to(settings.home)
    assert integrity.file_digests(path) == integrity.file_digests(stored(client, settings, version))
    assert oct(path.parent.stat().st_mode & 0o777) == oct(0o700)
    uri = f"models:/{settings.model_name}@{settings.champion_alias}"
    model = versions.load_checked(uri, settings.tracking_uri, settings.registry_uri)
    assert model.metadata.get_input_schema() is not None


def test_the_cli_refuses_a_tampered_version_in_one_error_line(
    client: MlflowClient,
    settings: Settings,
    version: str,
    small_data: synth.SyntheticData,
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    entry = stored(client, settings, version) / "pyfunc_entry.py"
    entry.write_text(entry.read_text() + payload(marker))
    small_data.tickets.head(5).drop(columns=["category", "priority"]).to_csv(
        tmp_path / "tickets.csv", index=False
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIAGE_", "MLFLOW_"))}
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("triage-ml")),
            "score",
            "--input",
            str(tmp_path / "tickets.csv"),
            "--output",
            str(tmp_path / "out.csv"),
            "--model",
            version,
        ],
        env={**env, "TRIAGE_HOME": str(settings.home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(errors) == 1 and REFUSED in errors[0] and "Traceback" not in proc.stderr
    assert not marker.exists() and not (tmp_path / "out.csv").exists()


def test_deleted_files_are_refused_in_one_line(
    client: MlflowClient, settings: Settings, version: str
) -> None:
    shutil.rmtree(stored(client, settings, version) / "code")
    with pytest.raises(RegistryError, match=REFUSED) as refused:
        registry.load_version(settings, version)
    assert "code/triage_model/" in str(refused.value) and "\n" not in str(refused.value)
    shutil.rmtree(stored(client, settings, version))
    with pytest.raises(RegistryError, match=r"cannot copy the files|do not match") as refused:
        registry.load_version(settings, version)
    assert "\n" not in str(refused.value)
