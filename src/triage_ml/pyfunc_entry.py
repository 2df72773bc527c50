"""Models-from-code entry point of the triage pyfunc model.

MLflow executes this file when it logs or loads the model; nothing in the
package imports it. ``triage_ml`` itself comes from the model's code_paths.
"""

import mlflow

from triage_ml.model import TriageModel

mlflow.models.set_model(TriageModel())
