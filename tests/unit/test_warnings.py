"""Warnings instead of silence: routes, unknown labels, trained-on rows, extra inputs, rendering."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from triage_ml import cli, routing, synth
from triage_ml.cli import models, runner
from triage_ml.cli.options import column_mapping
from triage_ml.settings import Settings
from triage_ml.training import evaluation

pytestmark = pytest.mark.unit

ROUTES = {"Billing": "billing-team", "Sales": "sales-team"}


# ---- routes ---------------------------------------------------------------------


def test_routes_covering_every_category_say_nothing() -> None:
    assert routing.route_warnings(["Billing", "Sales"], ROUTES, "general-queue") == []
    assert routing.route_warnings([], ROUTES, "general-queue") == []


def test_routes_covering_some_categories_name_the_others() -> None:
    [line] = routing.route_warnings(["Sales", "Refunds", "Billing", "Bugs"], ROUTES, "general")
    assert "covers 2 of the 4 categories: Bugs, Refunds go to 'general'" in line


def test_routes_covering_no_category_say_none() -> None:
    [line] = routing.route_warnings({"refund": 0.5, "bug": 0.5}, ROUTES, "general-queue")
    assert "covers none of the 2 categories: bug, refund" in line


def test_status_warns_of_unrouted_categories_of_the_labeled_tickets(
    workspace: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_fail_fast import store_tickets  # the same rows the fail-fast tests store

    store_tickets(workspace, ["Billing", "Refunds", "Bugs"])
    monkeypatch.setenv("TRIAGE_ROUTES", json.dumps(ROUTES))
    [line] = models.status_warnings(Settings())
    assert "covers 1 of the 3 categories: Bugs, Refunds" in line


# ---- rendering ------------------------------------------------------------------


def test_text_mode_prints_each_warning_once_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.text import Text

    result = {"value": 1, "warnings": ["routes cover none", "routes cover none", "trained on 3"]}
    runner.emit(result, lambda r: Text(f"value {r['value']}"), as_json=False)
    out, err = capsys.readouterr()
    assert out.strip() == "value 1"
    assert err.splitlines() == ["warning: routes cover none", "warning: trained on 3"]


def test_json_mode_keeps_warnings_in_the_object(capsys: pytest.CaptureFixture[str]) -> None:
    runner.emit({"warnings": ["w"]}, lambda r: None, as_json=True)
    out, err = capsys.readouterr()
    assert json.loads(out) == {"warnings": ["w"]} and err == ""


# ---- evaluate -------------------------------------------------------------------


class ConstantPredictor:
    """Predicts one category for every ticket; knows ``classes``; remembers the columns it got."""

    def __init__(self, classes: list[str], answer: str) -> None:
        self.classes, self.answer, self.columns = classes, answer, []

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.columns.append(list(frame.columns))
        top3 = json.dumps([{"category": self.answer, "proba": 0.9}])
        return pd.DataFrame(
            {
                "category": [self.answer] * len(frame),
                "category_proba": 0.9,
                "top3": [top3] * len(frame),
                "priority": ["high"] * len(frame),
            }
        )


def pyfunc(predictor: ConstantPredictor) -> Any:
    """MLflow's own pyfunc model (schema enforcement included) around ``predictor``.

    Shaped like a loaded triage model: its python model holds the predictor.
    """
    from mlflow.models import Model
    from mlflow.pyfunc import PyFuncModel

    from triage_ml.registry import model_signature

    impl = SimpleNamespace(
        python_model=SimpleNamespace(predictor=predictor),
        predict=lambda data, params=None: predictor.predict(data),
    )
    return PyFuncModel(model_meta=Model(signature=model_signature()), model_impl=impl)


@pytest.fixture
def labeled_file(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    tickets = synth.generate(80, months=2, seed=1).tickets
    path = tmp_path / "labeled.csv"
    tickets.to_csv(path, index=False)
    return path, tickets


def evaluate(model: Any, path: Path, trained: frozenset[str] | None = None) -> dict[str, Any]:
    return evaluation.evaluate_file(model, path, column_mapping(), Settings(), trained)


def test_evaluate_passes_only_model_inputs_so_mlflow_never_warns(
    labeled_file, caplog: pytest.LogCaptureFixture
) -> None:
    path, tickets = labeled_file
    predictor = ConstantPredictor(sorted(tickets["category"].unique()), "Billing")
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(pyfunc(predictor), path)
    assert not [r for r in caplog.records if "extra inputs" in r.getMessage()]
    assert not [w for w in caught if "extra inputs" in str(w.message)]
    assert "category" not in predictor.columns[0] and "ticket_id" not in predictor.columns[0]
    assert "body" in predictor.columns[0]
    assert result["warnings"] == [] and result["trained_rows"] == 0


def test_mlflow_still_warns_of_extra_inputs_when_given_them(
    labeled_file, caplog: pytest.LogCaptureFixture
) -> None:
    """The test above proves something only while MLflow warns of extra columns."""
    _, tickets = labeled_file
    model = pyfunc(ConstantPredictor(["Billing"], "Billing"))
    with caplog.at_level(logging.WARNING):
        model.predict(tickets[["subject", "body", "category"]].astype(str))
    assert any("extra inputs" in r.getMessage() for r in caplog.records)


def test_evaluate_counts_labels_the_model_does_not_know(labeled_file) -> None:
    path, tickets = labeled_file
    result = evaluate(pyfunc(ConstantPredictor(["Billing", "Technical"], "Billing")), path)
    counts = tickets["category"].value_counts()
    [line] = result["warnings"]
    unknown = int(counts.drop(["Billing", "Technical"]).sum())
    assert line.startswith(f"{unknown} of {len(tickets)} rows have a category label")
    assert f"Sales ({counts['Sales']})" in line and "Billing (" not in line


def test_evaluate_explains_a_zero_macro_f1_when_no_label_is_known(labeled_file) -> None:
    path, _ = labeled_file
    result = evaluate(ConstantPredictor(["billing", "tech"], "billing"), path)
    assert result["category"]["macro_f1"] == 0.0
    [line] = result["warnings"]
    assert "none of the file's category labels is known to the model" in line
    assert "(the model knows: billing, tech)" in line


def test_evaluate_scores_only_rows_the_model_never_trained_on(labeled_file) -> None:
    path, tickets = labeled_file
    trained = frozenset(tickets["ticket_id"].astype(str).iloc[:30])
    result = evaluate(
        ConstantPredictor(sorted(tickets["category"].unique()), "Billing"), path, trained
    )
    assert result["trained_rows"] == 30 and result["n"] == len(tickets) - 30
    assert result["warnings"] == [
        f"the model trained on 30 of the file's {len(tickets)} rows: "
        f"scored only the {len(tickets) - 30} it never saw"
    ]


def test_evaluate_flags_a_file_the_model_trained_on_entirely(labeled_file) -> None:
    path, tickets = labeled_file
    trained = frozenset(tickets["ticket_id"].astype(str))
    result = evaluate(
        ConstantPredictor(sorted(tickets["category"].unique()), "Billing"), path, trained
    )
    assert result["trained_rows"] == result["n"] == len(tickets)
    assert "trained on all" in result["warnings"][0]


def test_evaluate_command_prints_warnings_after_the_metrics(
    labeled_file, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], workspace
) -> None:
    from triage_ml.cli import preflight

    path, _ = labeled_file
    monkeypatch.setattr(preflight, "require_champion", lambda settings, which: None)
    monkeypatch.setattr(
        models,
        "evaluate_file",
        lambda settings, p, model, mapping: {
            "model_version": "1",
            **evaluate(ConstantPredictor(["billing"], "billing"), p),
        },
    )
    assert cli.main(["evaluate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "model version 1 on" in out
    assert err.strip().startswith("warning: none of the file's category labels")


def test_retrain_warns_of_unrouted_categories_before_the_flow_runs(
    workspace: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_fail_fast import store_tickets

    from triage_ml.flows import retrain as retrain_flow

    store_tickets(workspace, ["refund", "bug", "refund"])
    monkeypatch.setenv("TRIAGE_TRAIN__MIN_ROWS", "3")
    seen: list[list[str]] = []

    def fake_flow(settings: Settings) -> dict[str, Any]:
        seen.append(sorted(settings.routes))
        keys = ("promote", "reason", "candidate", "challenger_version", "champion_version")
        return dict.fromkeys(keys) | {
            "champion_after": None,
            "challenger": {},
            "champion": None,
            "interval": None,
            "run_id": "r",
        }

    # Only the warning is under test here; the flow itself runs in tests/flows.
    monkeypatch.setattr(retrain_flow, "monthly_retrain", fake_flow)
    result = models.retrain(Settings())
    assert seen and result["warnings"] == [
        "the routes setting covers none of the 2 categories: bug, refund go to 'general-queue'"
        " (set `routes` in the config file)"
    ]
