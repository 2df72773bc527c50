"""One typed, frozen settings object for the whole platform.

Everything is read from the environment (prefix ``TRIAGE_``, nested keys with
``__``), for example ``TRIAGE_HOME=/srv/triage`` or
``TRIAGE_GATE__MIN_DELTA=0.01``. Nothing here touches the file system: paths
are computed, never created, so importing this module has no side effects.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ROUTES: dict[str, str] = {
    "Billing": "billing-team",
    "Technical": "tech-support",
    "Account": "account-team",
    "Shipping": "logistics",
    "Returns": "logistics",
    "Sales": "sales-team",
    "Feedback": "customer-success",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GateSettings(_Frozen):
    """Thresholds of the champion/challenger gate."""

    metric: str = "category_macro_f1"
    min_delta: float = 0.005
    absolute_floor: float = 0.3
    bootstrap_resamples: int = 1000
    confidence: float = 0.95
    require_significance: bool = True
    max_priority_drop: float = 0.01
    urgent_recall_floor: float = 0.3
    max_class_f1_drop: float = 0.05


class TrainSettings(_Frozen):
    """What a retraining run fits and how it splits the data."""

    candidates: tuple[str, ...] = ("logreg", "linear_svc", "complement_nb", "lightgbm", "ensemble")
    candidate_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    search: bool = True
    ensemble_members: int = 3
    test_days: int = 30
    validation_fraction: float = 0.15
    test_fraction: float = 0.2
    refit_on_validation: bool = True
    refit_max_rows: int = 20_000
    min_rows: int = 50
    seed: int = 0


class ScheduleSettings(_Frozen):
    """When the deployed flows run, where, and where scheduled ingestion looks for files.

    Read like the rest, e.g. ``TRIAGE_SCHEDULES__TIMEZONE=Europe/Berlin`` or
    ``TRIAGE_SCHEDULES__RETRAIN_CRON="0 2 * * 1"``.
    """

    retrain_cron: str = "0 3 1 * *"
    timezone: str = "UTC"
    score_interval_minutes: int = Field(default=15, ge=1)
    ingest_interval_minutes: int = Field(default=5, ge=1)
    work_pool: str = Field(default="triage-ml", min_length=1)
    work_pool_concurrency: int | None = Field(default=None, ge=1)
    inbox_dir: Path | None = None

    @field_validator("retrain_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        # cronsim (already installed with Prefect) rather than Prefect's own
        # croniter: importing prefect here would freeze Prefect's settings
        # before cli.prepare_environment points PREFECT_HOME at the workspace.
        from cronsim import CronSim, CronSimError

        if len(value.split()) != 5:
            raise ValueError(f"'{value}' is not a cron expression of five fields (minute hour day month weekday)")
        try:
            CronSim(value, datetime(2000, 1, 1))
        except CronSimError as exc:
            raise ValueError(f"'{value}' is not a valid cron expression ({exc})") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if value not in zoneinfo.available_timezones():
            raise ValueError(f"'{value}' is not a known IANA timezone (e.g. UTC, Europe/Berlin)")
        return value


class Settings(BaseSettings):
    """Effective configuration of one triage-ml workspace.

    Every piece of state lives under ``home``; the URLs below default to files
    inside it, so two workspaces never share anything.
    """

    model_config = SettingsConfigDict(
        env_prefix="TRIAGE_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    home: Path = Path(".triage")
    database_url: str | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_registry_uri: str | None = None
    prefect_api_url: str | None = None
    experiment_name: str = "triage-ml"
    model_name: str = "ticket-triage"
    champion_alias: str = "champion"
    previous_alias: str = "previous-champion"
    priority_levels: tuple[str, ...] = ("critical", "urgent", "high", "medium", "normal", "low")
    categories: tuple[str, ...] | None = None
    routes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ROUTES))
    default_route: str = "general-queue"
    review_threshold: float = 0.5
    ingest_chunk_rows: int = 20_000
    score_chunk_rows: int = 20_000
    score_partition_rows: int = 50_000
    score_runner: Literal["threads", "dask"] = "threads"
    score_workers: int = 2
    dask_address: str | None = None
    train: TrainSettings = TrainSettings()
    gate: GateSettings = GateSettings()
    schedules: ScheduleSettings = ScheduleSettings()

    @property
    def store_url(self) -> str:
        """SQLAlchemy URL of the ticket store."""
        return self.database_url or f"sqlite:///{self.home.resolve() / 'triage.db'}"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI (a SQLite file in the workspace by default)."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.home.resolve() / 'mlflow.db'}"

    @property
    def registry_uri(self) -> str:
        """MLflow model registry URI; the tracking store unless set."""
        return self.mlflow_registry_uri or self.tracking_uri

    @property
    def artifact_root(self) -> Path:
        """Where MLflow artifacts of the workspace's experiment are written."""
        return self.home.resolve() / "mlartifacts"

    @property
    def prefect_home(self) -> Path:
        """PREFECT_HOME for the embedded default: never ``~/.prefect``."""
        return self.home.resolve() / "prefect"

    @property
    def gx_root(self) -> Path:
        """Great Expectations project (suites, validation results, Data Docs)."""
        return self.home.resolve() / "gx"

    @property
    def reports_dir(self) -> Path:
        """Where human-readable reports (data docs, summaries) are written."""
        return self.home.resolve() / "reports"

    def route_for(self, category: str) -> str:
        """Team a category is routed to."""
        return self.routes.get(category, self.default_route)
