"""Scoring: the store in partitions (``batch``), a file (``files``), and MLflow's server (``serving``)."""
