"""Start-up of processes that load the champion: the scoring CLI and a process pool's workers."""

from __future__ import annotations


def import_skops_first() -> None:
    """Import skops before Prefect and MLflow, in a process that will load the champion.

    The champion's parts are skops files. skops' import looks for each of
    scikit-learn's public functions that lack ``__module__`` (about 1,100) in
    every loaded module; once Prefect, MLflow and their dependencies are
    loaded (some 3,500 modules) that took 3.2 s, against 1.4 s when skops
    came first (measured here in an earlier session). Nothing in skops,
    Prefect or MLflow changes the order, so the scoring command and the
    process pool's initializer do. In a pool worker Prefect's own initializer
    runs before this one and imports Prefect (about 1,100 modules), so there
    skops comes after Prefect but still before MLflow and the flow's modules.
    Re-measured on 2026-11-23 (a fresh process importing as a worker does,
    three alternating rounds): skops took 2.7-3.3 s first and 3.1-4.2 s after
    Prefect, and the whole way to a loaded model 6.5-8.1 against 7.1-9.2 s;
    so making skops come before Prefect in a worker too (which means
    replacing Prefect's pool) would save about half a second, and was not kept.
    """
    import skops.io  # noqa: F401
