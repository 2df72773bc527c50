"""Training, one module per concern.

- ``dataset``: the snapshot of labeled tickets and its splits;
- ``inputs``: model inputs, the shared n-gram matrix, the rows final models learn from;
- ``candidates``: where a category candidate is defined (factories of unfitted estimators);
- ``priority``: the stacked priority model, whole;
- ``fit``: fitting candidates, choosing one, assembling and evaluating a predictor;
- ``retrain``: the other stages of a retraining run (split, lineage, challenger, diagnostics);
- ``metrics``, ``diagnostics``, ``evaluation``: figures, plots, and a model scored on a file.

The retraining flow that composes them is ``triage_ml.flows.retrain``.
"""
