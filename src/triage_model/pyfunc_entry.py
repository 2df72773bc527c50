"""Models-from-code entry point of the triage pyfunc model.

MLflow executes this file when it logs or loads the model; nothing in the
package imports it. ``triage_model`` itself comes from the model's code_paths.
"""

import mlflow

from triage_model.pyfunc import TriageModel

mlflow.models.set_model(TriageModel())
