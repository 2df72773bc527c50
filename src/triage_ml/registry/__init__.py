"""MLflow: the workspace, model versions and aliases (``versions``).

The gate, promotion and status are modules of their own.
"""

from __future__ import annotations

from triage_ml.registry.versions import (
    MODEL_REQUIREMENTS,
    REPLACED_TAG,
    RUNTIME_DIR,
    Aliases,
    RegisteredModel,
    alias_version,
    aliases,
    champion_uri,
    client,
    input_example,
    load_champion,
    load_version,
    log_triage_model,
    model_signature,
    pinned_requirements,
    process_model,
    promote_version,
    register,
    restore_aliases,
    roll_back,
    use_workspace,
    version_files,
)

__all__ = [
    "MODEL_REQUIREMENTS",
    "REPLACED_TAG",
    "RUNTIME_DIR",
    "Aliases",
    "RegisteredModel",
    "alias_version",
    "aliases",
    "champion_uri",
    "client",
    "input_example",
    "load_champion",
    "load_version",
    "log_triage_model",
    "model_signature",
    "pinned_requirements",
    "process_model",
    "promote_version",
    "register",
    "restore_aliases",
    "roll_back",
    "use_workspace",
    "version_files",
]
