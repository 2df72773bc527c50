"""The model runtime stands alone: no triage_ml, no library's private names, declared packages."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sklearn
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

import triage_model
from triage_ml import synth
from triage_ml.registry.versions import MODEL_REQUIREMENTS, OPTIONAL_REQUIREMENTS
from triage_ml.training import candidates, fit
from triage_ml.training.inputs import prepare
from triage_model import predictor as model

pytestmark = pytest.mark.unit

RUNTIME = Path(triage_model.__file__).resolve().parent
MODULES = sorted(RUNTIME.glob("*.py"))
# (module, name): the one read of a library's private name, behind predictor.default_containers;
# scikit-learn has no public getter for what set_output stored.
ALLOWED_PRIVATE = {("predictor.py", "_sklearn_output_config")}


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def imported_modules(tree: ast.Module) -> Iterator[str]:
    """Every module an import statement names, at any depth of the tree (lazy imports too)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_the_runtime_has_modules_to_check() -> None:
    assert {"predictor.py", "features.py", "sentiment.py", "pyfunc.py"} <= {p.name for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_runtime_module_imports_triage_ml(path: Path) -> None:
    found = [m for m in imported_modules(parsed(path)) if m.split(".")[0] == "triage_ml"]
    assert found == [], f"{path.name} imports {found}"


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_names(tree: ast.Module) -> Iterator[str]:
    """Private names read or written on objects other than ``self``/``cls``, or imported."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                yield node.attr
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("getattr", "hasattr", "setattr", "delattr") and len(node.args) > 1:
                name = node.args[1]
                if isinstance(name, ast.Constant) and is_private(str(name.value)):
                    yield str(name.value)
        elif (
            isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] != "triage_model"
        ):
            yield from (alias.name for alias in node.names if is_private(alias.name))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_runtime_module_reads_a_library_s_private_names(path: Path) -> None:
    found = {(path.name, name) for name in private_names(parsed(path))}
    assert found <= ALLOWED_PRIVATE, f"private names used: {sorted(found - ALLOWED_PRIVATE)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_runtime_class_overrides_a_private_method(path: Path) -> None:
    tree = parsed(path)
    local = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        foreign = [b for b in node.bases if not (isinstance(b, ast.Name) and b.id in local)]
        methods = [m.name for m in node.body if isinstance(m, ast.FunctionDef)]
        assert not (foreign and any(is_private(m) for m in methods)), (node.name, methods)


def test_the_runtime_imports_only_the_model_s_declared_requirements() -> None:
    distributions = packages_distributions()
    optional = [name for names in OPTIONAL_REQUIREMENTS.values() for name in names]
    declared = {name.lower().replace("_", "-") for name in (*MODEL_REQUIREMENTS, *optional)}
    third_party = {
        top
        for path in MODULES
        for top in (m.split(".")[0] for m in imported_modules(parsed(path)))
        if top not in sys.stdlib_module_names and top != "triage_model"
    }
    undeclared = {
        top: distributions.get(top)
        for top in third_party
        if not {d.lower().replace("_", "-") for d in distributions.get(top, [])} & declared
    }
    assert third_party and undeclared == {}


# --- the fast transform: equal to the library's, and the library's wherever it is configured


COLUMNS: dict[str, Any] = {
    "text": ["I was charged twice!", "server down since 3am", "Danke, alles gut", ""],
    "channel": ["email", "fax", None, "chat"],
    "tier": ["gold", "gold", "free", "new"],
    "sentiment": [0.5, -0.25, 0.0, 1.0],
}
FIT_ROWS = pd.DataFrame(
    {
        "text": ["charged twice refund", "the server is down", "refund please", "all good"],
        "channel": ["email", "chat", "email", "web"],
        "tier": ["gold", "free", "gold", "free"],
        "sentiment": [0.1, -0.5, 0.2, 0.9],
    }
)


def shapes(**one_hot: Any) -> ColumnTransformer:
    """The fitted shapes the runtime reads directly: char and word n-grams, one-hot, passthrough."""
    return ColumnTransformer(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)), "text"),
            ("words", TfidfVectorizer(ngram_range=(1, 2)), "text"),
            ("meta", OneHotEncoder(handle_unknown="ignore", **one_hot), ["channel", "tier"]),
            ("numbers", "passthrough", ["sentiment"]),
        ]
    ).fit(FIT_ROWS)


def dense_shapes() -> ColumnTransformer:
    """Shapes without text, so the library can return a frame of them."""
    return ColumnTransformer(
        [
            ("meta", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["channel"]),
            ("numbers", "passthrough", ["sentiment"]),
        ]
    ).fit(FIT_ROWS)


def library(transformer: Any) -> Any:
    return transformer.transform(pd.DataFrame(COLUMNS))


def without_the_library(transformer: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``transform_columns``, failing if it hands the frame to the transformer's ``transform``."""
    expected = library(transformer)

    def refuse(_: Any) -> None:
        raise AssertionError("the fast path called the library")

    monkeypatch.setattr(transformer, "transform", refuse)
    return model.transform_columns(transformer, COLUMNS), expected


def test_the_fast_path_equals_the_library_s_transform(monkeypatch: pytest.MonkeyPatch) -> None:
    transformer = shapes()
    assert model.default_containers(transformer)
    matrix, expected = without_the_library(transformer, monkeypatch)
    assert sparse.issparse(matrix) and matrix.shape == expected.shape
    # The char n-gram block equals the library's but for its values' last bits (test_ngrams.py).
    assert ((matrix != 0) != (expected != 0)).nnz == 0
    assert abs(matrix - expected).max() <= 1e-12 * abs(expected).max()


def test_a_transformer_set_to_return_frames_is_left_to_the_library() -> None:
    # Fails if scikit-learn stops keeping set_output's choice where default_containers reads it.
    transformer = dense_shapes().set_output(transform="pandas")
    assert not model.default_containers(transformer)
    assert not model.default_containers(OneHotEncoder().set_output(transform="pandas"))
    out = model.transform_columns(transformer, COLUMNS)
    pd.testing.assert_frame_equal(out, library(transformer))


def test_the_global_output_config_is_left_to_the_library() -> None:
    transformer = dense_shapes()
    with sklearn.config_context(transform_output="pandas"):
        assert not model.default_containers(transformer)
        out = model.transform_columns(transformer, COLUMNS)
        pd.testing.assert_frame_equal(out, library(transformer))
    assert model.default_containers(transformer)


@pytest.mark.parametrize("one_hot", [{"min_frequency": 2}, {"max_categories": 2}])
def test_encoders_grouping_infrequent_categories_are_left_to_the_library(
    one_hot: dict[str, Any],
) -> None:
    transformer = shapes(**one_hot)
    calls = []
    original = transformer.transform

    def counted(frame: pd.DataFrame) -> Any:
        calls.append(len(frame))
        return original(frame)

    transformer.transform = counted  # type: ignore[method-assign]
    out = model.transform_columns(transformer, COLUMNS)
    assert calls == [len(COLUMNS["text"])]
    assert (sparse.csr_matrix(out) != sparse.csr_matrix(original(pd.DataFrame(COLUMNS)))).nnz == 0


# --- the runtime alone, in an interpreter that cannot see triage_ml


@pytest.fixture(scope="module")
def fitted(small_data: synth.SyntheticData) -> model.TriagePredictor:
    """complement_nb plus the stacked priority model, fitted on the small history."""
    with threadpool_limits(1):
        inputs = prepare(small_data.tickets)
        spec = candidates.category_specs(("complement_nb",))[-1]
        return fit.fit_predictor(inputs, spec, {"review_threshold": 0.5}, seed=0)


def site_packages_only_env(*extra: Path) -> dict[str, str]:
    """The environment of an interpreter started with ``-S``: site-packages, no ``.pth`` hooks."""
    paths = [*map(str, extra), sysconfig.get_paths()["purelib"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return {**env, "PYTHONPATH": os.pathsep.join(paths), "PYTHONNOUSERSITE": "1"}


@pytest.mark.slow
def test_the_runtime_alone_imports_its_pyfunc_and_predicts(
    fitted: model.TriagePredictor, small_data: synth.SyntheticData, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    shutil.copytree(RUNTIME, code / "triage_model", ignore=shutil.ignore_patterns("__pycache__"))
    artifacts = model.save_predictor(fitted, tmp_path / "artifacts")
    tickets = small_data.tickets.tail(25).drop(columns=["category", "priority"])
    tickets.to_parquet(tmp_path / "tickets.parquet")
    script = textwrap.dedent("""
        import importlib.util, json, sys
        assert importlib.util.find_spec("triage_ml") is None, "triage_ml is importable"
        import pandas as pd
        import triage_model, triage_model.pyfunc
        from triage_model.predictor import load_predictor
        predictor = load_predictor(json.loads(sys.argv[1]))
        predictor.predict(pd.read_parquet(sys.argv[2])).to_parquet(sys.argv[3])
        print(json.dumps({"code": triage_model.__file__, "triage_ml": "triage_ml" in sys.modules}))
    """)
    proc = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            script,
            json.dumps(artifacts),
            "tickets.parquet",
            "out.parquet",
        ],
        cwd=tmp_path,
        env=site_packages_only_env(code),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(result["code"]).resolve().is_relative_to(code) and not result["triage_ml"]
    fitted.predict(pd.read_parquet(tmp_path / "tickets.parquet")).to_parquet(tmp_path / "in.pq")
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "out.parquet"), pd.read_parquet(tmp_path / "in.pq")
    )
