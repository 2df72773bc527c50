"""Screenshots of what a user opens after two retrains: MLflow's runs table, a model version's
card, and the Prefect flow run of a retrain with its artifacts.

Each test waits for its page to load, checks the page's text for what issue 24
promised there, and writes a PNG (``make screenshots`` writes them to docs/screenshots).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.ui, pytest.mark.flows]

# A first page load fetches MLflow's whole UI bundle: 12 s on a busy 2-core machine.
LOAD_MS = 60_000
# Once the page shows its run or version, the text checked is rendered too or missing.
TEXT_MS = 5_000
# Tall enough for each page's point: the runs with their children, the card's tables, the
# flow run's artifacts under its graph.
RUNS_VIEWPORT = {"width": 1600, "height": 800}
CARD_VIEWPORT = {"width": 1440, "height": 1500}
FLOW_RUN_VIEWPORT = {"width": 1440, "height": 1100}
# Columns the runs table lines up (when the runs have them), and the defaults it drops for room.
COMPARED_METRICS = ("cv_category_macro_f1", "test_category_macro_f1", "fit_seconds")
DROPPED_COLUMNS = ("Dataset", "Source")
# MLflow 3.17 opens its assistant panel over a third of every page on a first visit.
ASSISTANT_CLOSED = """
localStorage.setItem("mlflow.assistant.fab.autoOpenedOnFirstLoad_v1", "true");
localStorage.setItem("mlflow.assistant.panelOpen_v1", "false");
"""
# A parent run's name starts with "retrain " (not the old "monthly-retrain").
RETRAIN_RUN_NAME = re.compile(r"(^|\s)retrain \S")


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    """A fresh browser context and page (MLflow's assistant panel closed)."""
    context = browser.new_context(viewport=RUNS_VIEWPORT)
    context.add_init_script(ASSISTANT_CLOSED)
    yield context.new_page()
    context.close()


def mlflow_api(base: str, path: str, **params: Any) -> dict[str, Any]:
    """One GET on the MLflow server's REST API."""
    response = httpx.get(f"{base}/api/2.0/mlflow/{path}", params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def run_names(base: str, experiment_id: str) -> tuple[list[str], list[str]]:
    """Names of the experiment's parent runs, and of their child runs."""
    found = httpx.post(
        f"{base}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [experiment_id], "max_results": 100},
        timeout=30,
    ).json()
    parents, children = [], []
    for run in found["runs"]:
        tags = {t["key"] for t in run["data"].get("tags", [])}
        (children if "mlflow.parentRunId" in tags else parents).append(run["info"]["run_name"])
    return parents, children


def show_comparison(page: Page) -> None:
    """Put the compared metrics in the runs table, as a user would, and unfold the children."""
    page.get_by_role("button", name="Columns").click()
    menu = page.locator("[data-radix-popper-content-wrapper]")
    expect(menu.get_by_text(DROPPED_COLUMNS[0], exact=True)).to_be_visible()
    for column in (*DROPPED_COLUMNS, *COMPARED_METRICS):
        item = menu.get_by_text(column, exact=True)
        if item.count():
            item.first.click()
    page.keyboard.press("Escape")
    # The "+" beside a parent run's name unfolds its candidates' child runs.
    unfold = page.locator("[role=row] button[data-component-id*=runnamecellrenderer]")
    for index in range(unfold.count()):
        unfold.nth(index).click()


def missing_texts(page: Page, expected: list[str | re.Pattern[str]]) -> list[str]:
    """The expected texts the page does not show (as rendered, ``innerText``)."""
    body, missing = page.locator("body"), []
    for text in expected:
        try:
            expect(body).to_contain_text(text, use_inner_text=True, timeout=TEXT_MS)
        except AssertionError:
            missing.append(text.pattern if isinstance(text, re.Pattern) else text)
    return missing


def screenshot(page: Page, directory: Path, name: str) -> Path:
    """Save the visible page as ``<directory>/<name>.png``."""
    path = directory / f"{name}.png"
    page.mouse.move(0, 0)  # no hover highlight on the last row clicked
    page.screenshot(path=path)
    assert path.stat().st_size > 20_000, f"{path} is nearly empty"
    return path


def test_mlflow_runs_table_shows_both_retrains(
    page: Page, two_retrains: Any, mlflow_ui: str, screenshots_dir: Path
) -> None:
    name = two_retrains.settings.experiment_name
    experiment = mlflow_api(mlflow_ui, "experiments/get-by-name", experiment_name=name)
    experiment_id = experiment["experiment"]["experiment_id"]
    parents, children = run_names(mlflow_ui, experiment_id)
    assert len(parents) == 2 and children, (parents, children)

    page.goto(f"{mlflow_ui}/#/experiments/{experiment_id}/runs")
    for parent in set(parents):
        expect(page.get_by_text(parent, exact=True).first).to_be_visible(timeout=LOAD_MS)
    show_comparison(page)
    expect(page.get_by_text(children[0], exact=True).first).to_be_visible()
    missing = missing_texts(page, [RETRAIN_RUN_NAME])
    screenshot(page, screenshots_dir, "mlflow-runs")
    assert not missing, f"runs table lacks {missing}; parent runs are named {parents}"


def test_model_version_page_shows_its_card(
    page: Page, two_retrains: Any, mlflow_ui: str, screenshots_dir: Path
) -> None:
    model = two_retrains.settings.model_name
    version = two_retrains.second["challenger_version"]
    page.set_viewport_size(CARD_VIEWPORT)
    page.goto(f"{mlflow_ui}/#/models/{model}/versions/{version}")
    expect(page.get_by_text(f"Version {version}", exact=True).first).to_be_visible(timeout=LOAD_MS)
    missing = missing_texts(page, ["Model card", "Held-out metrics"])
    screenshot(page, screenshots_dir, "mlflow-model-version")
    assert not missing, f"version {version}'s page lacks {missing}"


def test_prefect_flow_run_shows_the_retrain_artifacts(
    page: Page, two_retrains: Any, prefect_ui_server: Any, screenshots_dir: Path
) -> None:
    run = two_retrains.flow_run
    base = prefect_ui_server.api_url.removesuffix("/api")
    page.set_viewport_size(FLOW_RUN_VIEWPORT)
    page.goto(f"{base}/runs/flow-run/{run['id']}")
    expect(page.get_by_text(run["name"]).first).to_be_visible(timeout=LOAD_MS)
    page.get_by_text("Artifacts", exact=True).first.click()
    expect(page).to_have_url(re.compile(r"tab=Artifacts"))
    missing = missing_texts(page, ["promotion-decision", "mlflow-run"])
    screenshot(page, screenshots_dir, "prefect-flow-run")
    assert not missing, f"flow run {run['name']}'s Artifacts tab lacks {missing}"
