"""Scoring: the store in partitions (``batch``), a file (``files``), MLflow's server (``serving``).

``startup`` holds what a process that loads the champion does first.
"""
