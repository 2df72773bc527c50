"""A registered champion carries its runtime: it predicts where triage_ml cannot be imported."""

from __future__ import annotations

import compileall
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import mlflow
import pytest
from threadpoolctl import threadpool_limits

from triage_ml import registry, synth
from triage_ml.registry import versions
from triage_ml.settings import Settings
from triage_ml.training import candidates, fit
from triage_ml.training.inputs import prepare
from triage_model.predictor import OUTPUT_COLUMNS

pytestmark = [pytest.mark.flows, pytest.mark.slow]


def champion(settings: Settings, data: synth.SyntheticData) -> str:
    """Fit a small predictor, log it through ``registry.log_triage_model``, make it champion."""
    with threadpool_limits(1):
        inputs = prepare(data.tickets)
        spec = candidates.category_specs(("complement_nb",))[-1]
        predictor = fit.fit_predictor(inputs, spec, {"review_threshold": 0.5}, seed=0)
    client = registry.use_workspace(settings)
    with mlflow.start_run() as run:
        uri = registry.log_triage_model(predictor, registry.input_example(data.tickets))
    version = registry.register(uri, settings.model_name, run.info.run_id).version
    client.set_registered_model_alias(settings.model_name, settings.champion_alias, version)
    return f"models:/{settings.model_name}@{settings.champion_alias}"


def without_triage_ml(settings: Settings) -> dict[str, str]:
    """For ``python -S``: site-packages alone on the path, so neither the editable hook nor src/."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return {
        **env,
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MLFLOW_REGISTRY_URI": settings.registry_uri,
    }


SCRIPT = textwrap.dedent("""
    import importlib.util, json, sys
    import mlflow, pandas as pd
    triage_ml = importlib.util.find_spec("triage_ml")
    model = mlflow.pyfunc.load_model(sys.argv[1], dst_path=sys.argv[2])
    out = model.predict(pd.read_csv(sys.argv[3]))
    print(json.dumps({
        "triage_ml": None if triage_ml is None else triage_ml.origin,
        "runtime": sys.modules["triage_model"].__file__,
        "rows": len(out),
        "columns": list(out.columns),
    }))
""")


def compiled_runtime(directory: Path) -> Path:
    """A copy of the runtime as a run leaves it: with ``__pycache__`` beside its modules."""
    runtime = directory / "triage_model"
    shutil.copytree(versions.RUNTIME_DIR, runtime, ignore=shutil.ignore_patterns("__pycache__"))
    assert compileall.compile_dir(runtime, quiet=1) and (runtime / "__pycache__").is_dir()
    return runtime


def test_the_champion_predicts_with_only_the_runtime_it_carries(
    workspace: Settings,
    small_data: synth.SyntheticData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(versions, "RUNTIME_DIR", compiled_runtime(tmp_path / "src"))
    uri = champion(workspace, small_data)
    stored = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "stored")))
    assert sorted(p.name for p in (stored / "code").iterdir()) == ["triage_model"]
    assert [p.name for p in (stored / "code" / "triage_model").iterdir() if p.is_dir()] == []

    tickets = small_data.tickets.tail(20).drop(columns=["category", "priority"])
    tickets.to_csv(tmp_path / "tickets.csv", index=False)
    (tmp_path / "loaded").mkdir()
    proc = subprocess.run(
        [sys.executable, "-S", "-c", SCRIPT, uri, str(tmp_path / "loaded"), "tickets.csv"],
        cwd=tmp_path,
        env=without_triage_ml(workspace),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["triage_ml"] is None
    runtime = Path(result["runtime"]).resolve()
    assert runtime.parent.name == "triage_model" and runtime.parent.parent.name == "code"
    assert runtime.is_relative_to((tmp_path / "loaded").resolve())
    assert result["rows"] == 20 and set(OUTPUT_COLUMNS) <= set(result["columns"])
