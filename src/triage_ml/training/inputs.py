"""What the models of a retraining learn from.

The model inputs of each part of the split (:class:`Prepared`), the shared
n-gram matrix every model reads (:class:`Matrices`), and every labeled row
with its matrix, which the shipped models are refitted on (:func:`everything`).
Both the category candidates (``selection``, ``fit``) and the priority model
(``priority``) start from here.
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
from triage_model.encoder import DIMENSIONS
from triage_model.features import model_inputs
from triage_model.predictor import with_encoder_block


@dataclass(frozen=True)
class Prepared:
    """A split with model inputs computed once per part."""

    split: dataset.Split
    train: pd.DataFrame
    test: pd.DataFrame


@dataclass(frozen=True)
class Matrices:
    """The shared feature matrix of the fit and test rows, with the vectorizer fitted on the first.

    The vectorizer (vocabulary and IDF, no labels) is fitted on the fit part;
    :func:`everything` fits it again on every row for the shipped models.
    ``params`` and ``encoder`` are how it was built, so it can be.
    """

    features: Any
    train: Any
    test: Any
    y_train: np.ndarray
    y_test: np.ndarray
    params: Mapping[str, Any] | None = None
    encoder: Mapping[str, Any] | None = None


def labels(frame: pd.DataFrame, column: str = "category") -> np.ndarray:
    """Label column as a plain object array (pandas 3 strings break sklearn splits)."""
    return frame[column].to_numpy(dtype=object)


# The label columns carried beside the model inputs: category, priority and the heads.
LABEL_COLUMNS: tuple[str, ...] = ("category", "priority", "subcategory", "type", "team")


def prepare(frame: pd.DataFrame, config: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Model inputs plus the label columns (None where absent), row order kept.

    ``config`` is the signal config the model will carry (escalation terms,
    languages: ``training.signals.signal_config``); None reads with the runtime's defaults.
    """
    inputs = model_inputs(frame.reset_index(drop=True), config)
    for column in LABEL_COLUMNS:
        inputs[column] = frame[column].to_numpy(dtype=object) if column in frame.columns else None
    return inputs


def prepare_split(split: dataset.Split, config: Mapping[str, Any] | None = None) -> Prepared:
    """Model inputs of the fit and test parts, read with the signal ``config``."""
    return Prepared(split, prepare(split.train, config), prepare(split.test, config))


def featurize(
    train: pd.DataFrame,
    test: pd.DataFrame,
    params: Mapping[str, Any] | None = None,
    encoder: Mapping[str, Any] | None = None,
) -> Matrices:
    """Fit the shared text features on the fit rows and transform both parts.

    With ``encoder`` settings (``weight``, ``max_chars``), the pretrained
    encoder's block follows the n-gram columns, as the served model builds it.
    """
    features = candidates.text_features(params or {})
    x_train = with_encoder_block(features.fit_transform(train), train["text"].tolist(), encoder)
    x_test = with_encoder_block(features.transform(test), test["text"].tolist(), encoder)
    return Matrices(features, x_train, x_test, labels(train), labels(test), params, encoder)


def encoder_settings(train: TrainSettings) -> dict[str, Any] | None:
    """What the served model needs to rebuild the encoder block, or None when it is off."""
    if not train.encoder:
        return None
    return {"weight": train.encoder_weight, "max_chars": train.encoder_max_chars}


def everything(prepared: Prepared, matrices: Matrices) -> tuple[pd.DataFrame, Any, Any]:
    """Every labeled row (fit part, then test part), its vectorizer fitted on them all, and matrix.

    The shipped models learn the vocabulary of every labeled row too, as a
    plain baseline trained on the same rows would. The encoder's block, a
    function of each text alone, is reused from the two parts.
    """
    rows = pd.concat([prepared.train, prepared.test], ignore_index=True)
    features = candidates.text_features(matrices.params or {})
    grams = features.fit_transform(rows)
    if not matrices.encoder:
        return rows, features, grams
    width = matrices.train.shape[1] - DIMENSIONS
    block = sp.vstack([matrices.train[:, width:], matrices.test[:, width:]], format="csr")
    return rows, features, sp.hstack([grams, block], format="csr")
