"""Whole-batch validation of ingested tickets with Great Expectations.

Row contracts (pandera, :mod:`triage_ml.contracts`) judge one ticket at a
time; these checks judge a batch as a whole: its volume against recent
batches, how many bodies are empty, how many ids repeat, how far its labels
drift from the training data, how many labels are unknown, and whether text
lengths moved. The rules live in ``data_contracts/tickets_batch.json``, a GX
expectation suite; the numbers (limits and baseline) are passed as GX suite
parameters at validation time. Every run writes Data Docs under ``gx_root``.

GX is imported inside the functions that use it: importing it takes several
seconds, which the CLI and every module importing this one should not pay.
"""

from __future__ import annotations

import copy
import json
import numbers
import statistics as stats
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd

from triage_ml.ingest import contracts

if TYPE_CHECKING:
    from great_expectations.checkpoint import Checkpoint
    from great_expectations.core import ExpectationSuite, ExpectationValidationResult
    from great_expectations.data_context import FileDataContext

SUITE_FILE = "tickets_batch.json"
# Suite parameters that come from the store and are absent until there is a baseline.
BASELINE_PARAMETERS = (
    "baseline_volume_median",
    "baseline_body_length_mean",
    "baseline_known_categories",
    "baseline_label_partition",
)
_SOURCE, _ASSET, _BATCH = "tickets", "ticket_batch_profile", "whole_batch"
_DOCS_DIR = "uncommitted/data_docs/local_site/"
_DOCS_SITE = {
    "class_name": "SiteBuilder",
    "show_how_to_buttons": False,
    "store_backend": {
        "class_name": "TupleFilesystemStoreBackend",
        "base_directory": _DOCS_DIR,
    },
    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    # Suite pages render the raw {"$PARAMETER": ...} kwargs, and GX's KL-divergence
    # renderer crashes on a parameterised partition_object; each validation page
    # shows the resolved values, so the suite pages are left out.
    "site_section_builders": {"expectations": "0"},
}


@dataclass(frozen=True)
class Baseline:
    """What a new batch is compared with; built by the caller from the store."""

    recent_volumes: tuple[int, ...] = ()
    label_distribution: dict[str, float] = field(default_factory=dict)
    known_categories: tuple[str, ...] = ()
    body_length_mean: float | None = None


@dataclass(frozen=True)
class BatchThresholds:
    """Configurable limits of the batch checks.

    ``max_label_kl`` is KL(batch || training) in nats. 0.25 fails only a gross
    shift: with the synthetic mix (Billing 22%) Billing must grow past about
    55% of a batch to fail, while sampling noise alone, about
    (categories - 1) / (2 * rows), stays near 0.03 for a 100-row batch. It is
    roughly a PSI of 0.5, twice the usual "significant shift" PSI of 0.25,
    because a month's label mix legitimately moves.
    """

    max_null_share: float = 0.1
    max_duplicate_rate: float = 0.2
    max_unknown_label_share: float = 0.2
    max_label_kl: float = 0.25
    min_volume_ratio: float = 0.1
    max_volume_ratio: float = 10.0
    min_length_ratio: float = 0.33
    max_length_ratio: float = 3.0


@dataclass(frozen=True)
class BatchReport:
    """Outcome of validating one batch.

    Attributes:
        passed: every expectation that ran succeeded.
        failures: one human-readable line per failed expectation.
        docs_path: the Data Docs page of this validation (``index.html`` lists them all).
        statistics: observed values (``rows``, ``body_null_share``, ``ticket_id_unique_share``,
            ``body_length_mean``, ``unknown_label_share``, ``label_kl_divergence``); a check
            that did not run reports nothing.
    """

    passed: bool
    failures: tuple[str, ...]
    docs_path: Path | None
    statistics: dict[str, float]


def profile(canonical: pd.DataFrame) -> pd.DataFrame:
    """Small per-row profile of a canonical ticket chunk.

    Keeps ticket_id, category (if present) and priority, and replaces the texts
    with their lengths (NaN when empty or missing), so a 1M-row batch profile
    stays small in memory. Profiles of a batch's chunks are concatenated.
    """
    out = pd.DataFrame(
        {"ticket_id": canonical["ticket_id"].astype("string")}, index=canonical.index
    )
    for column in ("category", "priority"):
        if column in canonical.columns:
            out[column] = canonical[column].astype("string")
    for column in ("body", "subject"):
        text = (
            canonical[column]
            if column in canonical.columns
            else pd.Series(pd.NA, index=canonical.index)
        )
        length = text.astype("string").str.len().astype("Float64")
        out[f"{column}_length"] = length.where(length > 0).astype("float64")
    return out.reset_index(drop=True)


def suite_parameters(
    baseline: Baseline, thresholds: BatchThresholds, labeled: bool
) -> dict[str, Any]:
    """Values for the suite's ``$PARAMETER`` references; what the baseline lacks is left out."""
    params: dict[str, Any] = asdict(thresholds)
    if baseline.recent_volumes:
        params["baseline_volume_median"] = float(stats.median(baseline.recent_volumes))
    if baseline.body_length_mean is not None:
        params["baseline_body_length_mean"] = float(baseline.body_length_mean)
    if labeled and baseline.known_categories:
        params["baseline_known_categories"] = sorted(baseline.known_categories)
    shares = {str(k): float(v) for k, v in baseline.label_distribution.items() if v > 0}
    if labeled and shares:
        total = sum(shares.values())
        # GX's categorical partition object; weights must sum to one.
        params["baseline_label_partition"] = {
            "values": list(shares),
            "weights": [v / total for v in shares.values()],
        }
    return params


def load_suite(params: dict[str, Any], path: Path | None = None) -> ExpectationSuite:
    """Load the suite file, keeping the expectations whose parameters ``params`` can resolve.

    Raises:
        ValueError: the file holds an expectation GX cannot read (GX would only log it),
            or a ``$PARAMETER`` that is neither a threshold nor a baseline value.
    """
    import great_expectations as gx

    config = json.loads(
        (path or contracts.contracts_dir() / SUITE_FILE).read_text(encoding="utf-8")
    )
    wanted = [e for e in config["expectations"] if _resolvable(e["kwargs"], params)]
    suite = gx.ExpectationSuite(**{**config, "expectations": wanted})
    if len(suite.expectations) != len(wanted):
        raise ValueError(
            f"{path or SUITE_FILE}: an expectation is not valid GX configuration "
            "(see the log above)"
        )
    return suite


def _resolvable(kwargs: dict[str, Any], params: dict[str, Any]) -> bool:
    """Whether ``params`` resolves every ``$PARAMETER`` in ``kwargs``.

    Raises:
        ValueError: a reference no run could resolve, even with a full baseline (a typo in the
            suite file), which must not pass for a check skipped for lack of a baseline.
    """
    if not _resolves(kwargs, {**dict.fromkeys(BASELINE_PARAMETERS, 1.0), **params}):
        raise ValueError(
            f"{SUITE_FILE}: cannot resolve {kwargs}; known parameters: {sorted(params)}"
        )
    return _resolves(kwargs, params)


def _resolves(kwargs: dict[str, Any], params: dict[str, Any]) -> bool:
    from great_expectations.core.suite_parameters import is_suite_parameter, parse_suite_parameter
    from great_expectations.exceptions import SuiteParameterError

    try:
        for value in kwargs.values():
            if is_suite_parameter(value):
                parse_suite_parameter(value["$PARAMETER"], params)
    except SuiteParameterError:
        return False
    return True


def docs_index(gx_root: Path) -> Path:
    """The index page of the Data Docs that :func:`validate_batch` writes under ``gx_root``."""
    return gx_root / _DOCS_DIR / "index.html"


def open_context(gx_root: Path) -> FileDataContext:
    """Get or create the file-backed GX project in ``gx_root``, quiet and offline."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # mode="file" with an explicit root: GX neither searches cwd/parents/GX_HOME
    # nor looks for cloud config. ``context_root_dir`` is the project folder
    # itself; ``project_root_dir`` would put a second ``gx/`` inside it
    # (``gx/gx/uncommitted``), since GX names its folder ``gx`` under a project root.
    context = gx.get_context(mode="file", context_root_dir=gx_root)
    # Configured once, when the project is new (analytics_enabled is then unset).
    if context.variables.analytics_enabled is not False:
        # GX 1.24 ships no analytics client; the documented switch is still set
        # so a later version honours it.
        context.variables.analytics_enabled = False
        # tqdm bars on stderr would clutter ingestion logs.
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.variables.data_docs_sites = {"local_site": copy.deepcopy(_DOCS_SITE)}
        context.variables.save()
    return context  # type: ignore[return-value]


def _checkpoint(context: FileDataContext, suite: ExpectationSuite) -> Checkpoint:
    """Get or create the data source, asset and batch; save suite, validation and checkpoint."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    sources = context.data_sources.all()
    source = sources[_SOURCE] if _SOURCE in sources else context.data_sources.add_pandas(_SOURCE)
    asset = (
        source.get_asset(_ASSET)
        if _ASSET in source.get_asset_names()
        else source.add_dataframe_asset(_ASSET)
    )
    batch = next((b for b in asset.batch_definitions if b.name == _BATCH), None)
    batch = batch or asset.add_batch_definition_whole_dataframe(_BATCH)
    # The suite changes with the baseline (checks without one are left out), so it is saved
    # each run.
    suite = context.suites.add_or_update(suite)
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=suite)
    )
    checkpoint = gx.Checkpoint(
        name=suite.name,
        validation_definitions=[validation],
        actions=[UpdateDataDocsAction(name="update_data_docs")],
        result_format="SUMMARY",
    )
    return context.checkpoints.add_or_update(checkpoint)


def validate_batch(
    profile: pd.DataFrame,
    baseline: Baseline,
    gx_root: Path,
    batch_id: str,
    *,
    labeled: bool = True,
    thresholds: BatchThresholds | None = None,
) -> BatchReport:
    """Run the batch suite on a batch profile and build its Data Docs.

    Args:
        profile: the batch's profile (see :func:`profile`).
        baseline: recent volumes, training label shares, known categories, mean body length.
        gx_root: folder of the GX project (created when missing); nothing is written elsewhere.
        batch_id: names the validation run in Data Docs; validating a batch again adds a run.
        labeled: whether the batch carries labels; without them the label checks are left out.
        thresholds: the limits; the defaults of :class:`BatchThresholds` otherwise.

    Raises:
        ValueError: ``labeled`` is set but the profile has no category column.
    """
    from great_expectations.core.run_identifier import RunIdentifier

    if labeled and "category" not in profile.columns:
        raise ValueError("a labeled batch profile needs a 'category' column")
    params = suite_parameters(baseline, thresholds or BatchThresholds(), labeled)
    context = open_context(gx_root)
    checkpoint = _checkpoint(context, load_suite(params))
    result = checkpoint.run(
        batch_parameters={"dataframe": profile},
        expectation_parameters=params,
        run_id=RunIdentifier(run_name=batch_id),
    )
    ((identifier, suite_result),) = result.run_results.items()
    failed = [r for r in suite_result.results if not r.success]
    return BatchReport(
        passed=bool(suite_result.success),
        failures=tuple(_failure_line(r, params) for r in failed),
        docs_path=_docs_page(context, identifier),
        statistics={"rows": float(len(profile)), **_observed_statistics(suite_result.results)},
    )


def _failure_line(result: ExpectationValidationResult, params: dict[str, Any]) -> str:
    """The expectation's ``meta.failure`` line, filled from parameters, kwargs and GX's result."""
    config = result.expectation_config
    where = config.kwargs.get("column", "batch")
    error = _exception_message(result)
    if error is not None:
        return f"{where}: {config.type} could not run: {error}"
    try:
        return str(config.meta["failure"]).format_map(
            {**params, **config.kwargs, **(result.result or {})}
        )
    except (KeyError, ValueError, TypeError, IndexError):
        # No template, or an observed value GX reports as None (an empty column): keep the facts.
        observed = {
            k: v
            for k, v in (result.result or {}).items()
            if k in ("observed_value", "unexpected_percent")
        }
        return f"{where}: {config.type} failed ({observed or 'no observed value'})"


def _exception_message(result: ExpectationValidationResult) -> str | None:
    # GX reports an error either flat or keyed by the metric that raised it, and in the
    # latter shape "raised_exception" is the string "True".
    info = result.exception_info or {}
    entries = (
        [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    )
    raised = [e for e in entries if e.get("raised_exception") in (True, "True")]
    return str(raised[0].get("exception_message")) if raised else None


def _observed_statistics(results: list[ExpectationValidationResult]) -> dict[str, float]:
    """Observed value of each expectation that names a ``meta.statistic``; shares as fractions."""
    out: dict[str, float] = {}
    for result in results:
        name, observed = result.expectation_config.meta.get("statistic"), result.result or {}
        value = observed.get("observed_value")
        if value is None and observed.get("unexpected_percent") is not None:
            value = observed["unexpected_percent"] / 100
        if name and isinstance(value, numbers.Real):
            out[name] = float(value)
    return out


def _docs_page(context: FileDataContext, identifier: Any) -> Path | None:
    urls = context.get_docs_sites_urls(resource_identifier=identifier)
    url = next((u["site_url"] for u in urls if u.get("site_url")), None)
    return Path(url2pathname(urlparse(url).path)) if url else None
