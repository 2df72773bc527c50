"""A realistic predictor, trained once per session through the real training code."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from triage_ml import synth
from triage_ml.settings import Settings
from triage_ml.training import candidates, dataset, fit, inputs
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
    return dataset.split_snapshot(
        history, cfg.test_days, cfg.validation_fraction, cfg.test_fraction, cfg.seed
    )


@pytest.fixture(scope="session")
def trained(split: dataset.Split) -> TriagePredictor:
    """Category candidate, stacked priority model and review thresholds, as a retraining has it."""
    settings = Settings()
    seed = settings.train.seed
    config = {
        "routes": dict(settings.routes),
        "default_route": settings.default_route,
        "review_threshold": settings.review_threshold,
        "priority_levels": list(settings.priority_levels),
    }
    spec = candidates.category_specs((CANDIDATE,))[0]
    predictor = fit.fit_predictor(
        inputs.prepare(split.train), inputs.prepare(split.valid), spec, config, seed
    )
    predictor.config["review_thresholds"] = fit.review_thresholds(
        predictor.classes,
        predictor.predict(split.valid),
        split.valid,
        0.9,
        settings.review_threshold,
    )
    return predictor
