"""A realistic predictor, trained once per session through the real training code."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from triage_ml import synth
from triage_ml.settings import Settings
from triage_ml.training import candidates, dataset, fit, inputs, priority, retrain, selection
from triage_model.predictor import TriagePredictor

# The category candidate the behavioural tests exercise; linear_svc is the
# fastest of the production candidates to fit here.
CANDIDATE = "linear_svc"


@pytest.fixture(scope="session", autouse=True)
def one_blas_thread() -> Iterator[None]:
    """Fit and predict with one BLAS thread.

    On the shared 2-core machine threaded OpenBLAS makes the small logistic
    fits much slower.
    """
    with threadpool_limits(1):
        yield


def labeled_history(n_tickets: int, months: int, seed: int) -> pd.DataFrame:
    """Synthetic tickets with agent corrections applied, as a snapshot holds them."""
    data = synth.generate(n_tickets, months=months, seed=seed)
    # The store numbers feedback rows; resolve_labels breaks ties on that number.
    feedback = data.feedback.assign(feedback_id=np.arange(len(data.feedback)))
    return dataset.resolve_labels(data.tickets, feedback)


@pytest.fixture(scope="session")
def history() -> pd.DataFrame:
    """Four months of labeled tickets."""
    return labeled_history(3000, months=4, seed=3)


@pytest.fixture(scope="session")
def split(history: pd.DataFrame) -> dataset.Split:
    cfg = Settings().train
    return dataset.split_snapshot(history, cfg.test_days, cfg.test_fraction, cfg.seed)


@pytest.fixture(scope="session")
def trained(split: dataset.Split) -> TriagePredictor:
    """Category candidate, stacked priority model and review thresholds, as a retraining has it.

    Fitted on the fit part; thresholds from its cross-validated predictions.
    """
    settings = Settings()
    train = settings.train
    rows = inputs.prepare(split.train)
    features = candidates.text_features({})
    matrix = features.fit_transform(rows)
    y = inputs.labels(rows)
    folds = selection.make_folds(y, train.cv_folds, train.cv_rows, train.seed, split.time_ordered)
    spec = candidates.category_specs((CANDIDATE,))[-1]
    scored = selection.cross_validate(spec, matrix, folds, train.seed)
    config = retrain.serving_config(settings, scored, folds)
    category = fit.refit(scored.blueprint, matrix, y)
    stacked = priority.fit_stage(rows, matrix, features, train)
    return fit.assemble_predictor(features, category, stacked, config)
