"""What the models of a retraining learn from.

The model inputs of each part of the split (:class:`Prepared`), the shared
n-gram matrix every model reads (:class:`Matrices`), and the rows the final
models are fitted on (:func:`final_rows`). Both the category candidates
(``fit``) and the priority model (``priority``) start from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from triage_ml.settings import TrainSettings
from triage_ml.training import candidates, dataset
from triage_model.features import model_inputs


@dataclass(frozen=True)
class Prepared:
    """A split with model inputs computed once per part (test rows are predicted from raw rows)."""

    split: dataset.Split
    train: pd.DataFrame
    valid: pd.DataFrame


@dataclass(frozen=True)
class Matrices:
    """The shared feature matrix of the training and validation rows, with the fitted vectorizer."""

    features: Any
    train: Any
    valid: Any
    y_train: np.ndarray
    y_valid: np.ndarray


def labels(frame: pd.DataFrame, column: str = "category") -> np.ndarray:
    """Label column as a plain object array (pandas 3 strings break sklearn splits)."""
    return frame[column].to_numpy(dtype=object)


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Model inputs plus the label columns, row order kept."""
    inputs = model_inputs(frame.reset_index(drop=True))
    for column in ("category", "priority"):
        inputs[column] = frame[column].to_numpy(dtype=object) if column in frame.columns else None
    return inputs


def prepare_split(split: dataset.Split) -> Prepared:
    """Model inputs of the training and validation parts."""
    return Prepared(split, prepare(split.train), prepare(split.valid))


def featurize(
    train: pd.DataFrame, valid: pd.DataFrame, params: Mapping[str, Any] | None = None
) -> Matrices:
    """Fit the shared text features on the training rows and transform both parts."""
    features = candidates.text_features(params or {})
    x_train = features.fit_transform(train)
    x_valid = features.transform(valid)
    return Matrices(features, x_train, x_valid, labels(train), labels(valid))


def final_rows(
    prepared: Prepared, matrices: Matrices, train: TrainSettings
) -> tuple[pd.DataFrame, Any]:
    """The rows the challenger's final models learn from, and their shared matrix.

    With ``refit_on_validation`` and at most ``refit_max_rows`` training rows,
    training and validation rows together (the choice of candidate is made;
    on small data the rows are worth more as training data). Above that size
    a refit costs more than the extra rows are worth, so the training rows alone.
    """
    if train.refit_on_validation and len(prepared.train) <= train.refit_max_rows:
        rows = pd.concat([prepared.train, prepared.valid], ignore_index=True)
        return rows, sp.vstack([matrices.train, matrices.valid], format="csr")
    return prepared.train, matrices.train
