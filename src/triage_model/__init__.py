"""The triage model runtime: everything a registered model needs to predict, and nothing else.

A registered model ships this package alone in its ``code_paths``; it imports
nothing from ``triage_ml``, so a scoring job needs only MLflow and the model's
declared requirements. Importing it does nothing but define names.
"""
