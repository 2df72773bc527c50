"""Loading a model file runs nothing the project did not put there.

Part one, the skops allow-list: crafted files whose nodes call functions from
numpy, scipy, scikit-learn and builtins are refused before anything in them
runs, and the allow-list is exactly the set of types the project's own
pipelines need. Part two, the integrity manifest's plain functions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import skops.io as sio
from threadpoolctl import threadpool_limits

from skops_payloads import CALLED, PAYLOADS, crafted_file, payloads
from triage_ml import synth
from triage_ml.errors import RegistryError
from triage_ml.registry import integrity, versions
from triage_ml.training import candidates, fit, priority
from triage_ml.training.inputs import featurize, prepare
from triage_model import predictor as model

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", PAYLOADS)
def test_each_crafted_file_runs_its_payload_when_loaded_without_the_allow_list(
    name: str, tmp_path: Path
) -> None:
    # The crafted files are live: skops trusting everything creates the marker.
    marker = tmp_path / "ran"
    path = crafted_file(tmp_path / f"{name}.skops", payloads(marker)[name])
    sio.load(path, trusted=[CALLED[name]])
    assert marker.exists()


@pytest.mark.parametrize("name", PAYLOADS)
def test_the_allow_list_refuses_crafted_files_and_nothing_runs(name: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = crafted_file(tmp_path / f"{name}.skops", payloads(marker)[name])
    with pytest.raises(model.UntrustedModelError, match="outside the allow-list") as refused:
        model.trusted_types(path)
    assert CALLED[name] in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(model.UntrustedModelError, match="outside the allow-list"):
        model.load_pipeline(path)
    with pytest.raises(model.UntrustedModelError, match="outside the allow-list"):
        model.load_predictor({"category": str(path), "features": str(path), "config": "-"})
    assert not marker.exists()


def test_a_numpy_function_outside_the_list_is_refused_though_numpy_types_load(
    tmp_path: Path,
) -> None:
    # The old rule trusted every name under "numpy."; the list names exact types.
    marker = tmp_path / "ran"
    path = crafted_file(tmp_path / "np.skops", payloads(marker)["numpy-runstring"])
    assert not any(t.startswith("numpy.") for t in model.TRUSTED_TYPES)
    with pytest.raises(model.UntrustedModelError):
        model.load_pipeline(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"not a zip", b"PK\x05\x06" + b"\0" * 18])
def test_a_file_that_is_not_skops_is_refused_in_one_line(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "broken.skops"
    path.write_bytes(content)
    with pytest.raises(model.UntrustedModelError, match="not a readable skops file") as refused:
        model.load_pipeline(path)
    assert "\n" not in str(refused.value)


def test_the_allow_list_is_sorted_and_has_no_prefixes() -> None:
    assert list(model.TRUSTED_TYPES) == sorted(set(model.TRUSTED_TYPES))
    assert all(not t.endswith(".") and t.count(".") >= 1 for t in model.TRUSTED_TYPES)


@pytest.mark.slow
def test_the_allow_list_is_exactly_what_the_project_s_pipelines_need(tmp_path: Path) -> None:
    """Fit every candidate, both ensembles and the priority stack; save each; list their types.

    Fails when a pipeline the project builds needs a type outside the list (add
    it, after reading what it is), or when the list trusts a type none needs.
    """
    prepared = prepare(synth.generate(400, months=2, seed=7).tickets)
    names = tuple(candidates.CATEGORY_CANDIDATES)
    with threadpool_limits(1):
        matrices = featurize(prepared, prepared)
        specs = candidates.category_specs(names, grids={})
        fitted = {
            s.name: fit.refit(s.build(s.params, 0), matrices.train, matrices.y_train) for s in specs
        }
        members = [(s.name, s.build(s.params, 0)) for s in specs]
        ensemble = fit.refit(
            candidates.soft_vote(members, frozen=False), matrices.train, matrices.y_train
        )
        stacked = priority.fit_priority(
            matrices.train, prepared, 0, priority.word_columns(matrices.features)
        )
    parts = fitted | {"ensemble": ensemble}
    parts |= {"priority": stacked.model, "text": stacked.text, "category": stacked.category}
    needed: set[str] = set()
    for name, part in parts.items():
        model.save_pipeline(part, tmp_path / f"{name}.skops")
        needed |= set(sio.get_untrusted_types(file=tmp_path / f"{name}.skops"))
        model.load_pipeline(tmp_path / f"{name}.skops")
    assert sorted(needed) == list(model.TRUSTED_TYPES)


# --- the integrity manifest's plain functions -------------------------------------------------


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    (directory / "code" / "triage_model").mkdir(parents=True)
    (directory / "MLmodel").write_text("flavors: {}\n")
    (directory / "code" / "triage_model" / "pyfunc_entry.py").write_text("x = 1\n")
    return directory


def test_the_manifest_names_every_file_with_its_sha256(model_dir: Path) -> None:
    tags = integrity.manifest_tags(model_dir)
    files = json.loads(tags[integrity.MANIFEST_TAG])["files"]
    assert sorted(files) == ["MLmodel", "code/triage_model/pyfunc_entry.py"]
    assert files["MLmodel"] == integrity.text_digest("flavors: {}\n")
    assert tags[integrity.MANIFEST_DIGEST_TAG] == integrity.text_digest(
        tags[integrity.MANIFEST_TAG]
    )
    integrity.check_files(model_dir, tags[integrity.MANIFEST_DIGEST_TAG], "m")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: (d / "code/triage_model/pyfunc_entry.py").write_text("x = 2\n"), "pyfunc_entry"),
        (lambda d: (d / "code/triage_model/evil.py").write_text("\n"), "evil.py"),
        (lambda d: (d / "MLmodel").unlink(), "MLmodel"),
    ],
    ids=["changed", "added", "missing"],
)
def test_changed_added_or_missing_files_are_refused_by_name(
    model_dir: Path, change: Any, named: str
) -> None:
    tags = integrity.manifest_tags(model_dir)
    change(model_dir)
    with pytest.raises(RegistryError, match=named) as refused:
        integrity.check_files(
            model_dir,
            tags[integrity.MANIFEST_DIGEST_TAG],
            "version 1",
            tags[integrity.MANIFEST_TAG],
        )
    assert "do not match the digests" in str(refused.value) and "\n" not in str(refused.value)


def test_the_file_mlflow_writes_after_registration_is_left_out(model_dir: Path) -> None:
    before = integrity.manifest_tags(model_dir)
    (model_dir / "registered_model_meta").write_text("model_name: m\nmodel_version: '1'\n")
    assert integrity.manifest_tags(model_dir) == before
    (model_dir / "code" / "registered_model_meta").write_text("elsewhere it counts\n")
    assert integrity.manifest_tags(model_dir) != before


def test_a_symbolic_link_among_the_files_is_refused(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere.py").write_text("\n")
    os.symlink(tmp_path / "elsewhere.py", model_dir / "code" / "triage_model" / "linked.py")
    with pytest.raises(RegistryError, match="not a regular file"):
        integrity.manifest_tags(model_dir)


def test_missing_or_inconsistent_tags_are_refused() -> None:
    with pytest.raises(RegistryError, match="no recorded file digests"):
        integrity.recorded_digest({}, "version 1 of model 'm'")
    manifest = integrity.manifest_json({"MLmodel": "0" * 64})
    with pytest.raises(RegistryError, match="disagree"):
        integrity.recorded_digest(
            {integrity.MANIFEST_TAG: manifest, integrity.MANIFEST_DIGEST_TAG: "f" * 64}, "v"
        )
    good = {integrity.MANIFEST_TAG: manifest, integrity.MANIFEST_DIGEST_TAG: ""}
    good[integrity.MANIFEST_DIGEST_TAG] = integrity.text_digest(manifest)
    assert integrity.recorded_digest(good, "v") == integrity.text_digest(manifest)


def test_a_pinned_uri_carries_its_digest() -> None:
    uri = integrity.pinned_uri("file:///store/models/m-1/artifacts", "ab" * 32)
    assert integrity.split_pinned(uri) == ("file:///store/models/m-1/artifacts", "ab" * 32)
    assert integrity.split_pinned("models:/m/1") == ("models:/m/1", None)


@pytest.mark.parametrize("uri", ["runs:/abc/model", "/tmp/model", "file:///store/artifacts"])
def test_a_uri_that_names_no_registered_version_is_refused(uri: str) -> None:
    # Nothing would say which digests its files must have.
    with pytest.raises(RegistryError, match="cannot check the files"):
        versions.load_checked(uri)
