"""Start-up of the worker processes a scoring run's process pool spawns."""

from __future__ import annotations


def prepare_worker() -> None:
    """Import skops before anything else loads in a fresh worker process.

    A worker loads the champion's skops files. skops' import looks for each of
    scikit-learn's public functions that lack ``__module__`` (about 1,100) in
    every loaded module; once Prefect, MLflow and their dependencies are
    loaded (some 3,500 modules) that took 3.2 s per worker, against 1.4 s
    when skops comes first (measured here). Nothing in skops or Prefect
    changes the order, so the pool's initializer does.
    """
    import skops.io  # noqa: F401
