"""The MLflow pyfunc wrapper of :class:`~triage_model.predictor.TriagePredictor`."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from triage_model.predictor import load_predictor


class TriageModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper around :class:`TriagePredictor`."""

    def load_context(self, context: Any) -> None:
        """Load the skops pipelines and config shipped as model artifacts."""
        self.predictor = load_predictor(dict(context.artifacts))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Triage a DataFrame of tickets (see ``OUTPUT_COLUMNS``)."""
        return self.predictor.predict(pd.DataFrame(model_input))
