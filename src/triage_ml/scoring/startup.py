"""Start-up of processes that load the champion: the scoring CLI and a process pool's workers."""

from __future__ import annotations


def import_skops_first() -> None:
    """Import skops before Prefect and MLflow, in a process that will load the champion.

    The champion's parts are skops files. skops' import looks for each of
    scikit-learn's public functions that lack ``__module__`` in every loaded
    module, so it takes far longer once Prefect, MLflow and their
    dependencies are loaded (docs/benchmarks.md). Nothing in skops, Prefect
    or MLflow changes the order, so the scoring command and the process
    pool's initializer do. In a pool worker Prefect's own initializer runs
    before this one, so there skops comes after Prefect but still before
    MLflow and the flow's modules; moving it before Prefect too would mean
    replacing Prefect's pool, for too little gain.
    """
    import skops.io  # noqa: F401
