"""One typed, frozen settings object for the whole platform.

Sources, strongest first:

1. the environment (prefix ``TRIAGE_``, nested keys with ``__``), for example
   ``TRIAGE_HOME=/srv/triage`` or ``TRIAGE_GATE__MIN_DELTA=0.01``;
2. a secrets directory (``TRIAGE_SECRETS_DIR``): one file per setting, named
   like its environment variable (``TRIAGE_DATABASE_URL``), holding the value;
3. a TOML config file (``TRIAGE_CONFIG``), with the same keys as the
   environment variables without the prefix (``[gate]`` tables for nested ones);
4. the defaults below.

Credentials belong in 1 or 2 only: a config file that puts a password in a URL
is refused, so a checked-in config can never carry one. Nothing here touches
the file system at import: paths are computed, never created, and the files
are read only when a Settings object is built.
"""

from __future__ import annotations

import os
import tomllib
import zoneinfo
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from triage_ml.errors import ConfigError
from triage_ml.redact import mask_url, url_has_password

CONFIG_ENV = "TRIAGE_CONFIG"
SECRETS_ENV = "TRIAGE_SECRETS_DIR"
# Settings whose values may carry credentials: never from the config file, masked by `config show`.
URL_FIELDS: tuple[str, ...] = (
    "database_url",
    "mlflow_tracking_uri",
    "mlflow_registry_uri",
    "prefect_api_url",
    "dask_address",
)

# The config file that Settings.load is reading; unset, $TRIAGE_CONFIG names it.
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("triage_config_file", default=None)

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


# Gate metrics: scores in [0, 1] where higher is better (MLflow's MetricThreshold is told so).
GATE_METRICS = (
    "category_macro_f1",
    "category_accuracy",
    "category_top2_accuracy",
    "priority_macro_f1",
    "priority_accuracy",
)


class GateSettings(_Frozen):
    """Thresholds of the champion/challenger gate.

    Each is checked here, when the settings are read: MLflow refuses a zero
    ``min_delta`` only after the challenger is registered, which left a
    half-finished retrain behind.
    """

    metric: Literal[GATE_METRICS] = "category_macro_f1"  # type: ignore[valid-type]
    min_delta: float = Field(default=0.005, gt=0, lt=1)
    absolute_floor: float = Field(default=0.3, ge=0, le=1)
    bootstrap_resamples: int = Field(default=1000, ge=100)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    require_significance: bool = True
    max_priority_drop: float = Field(default=0.01, ge=0, le=1)
    urgent_recall_floor: float = Field(default=0.3, ge=0, le=1)
    max_class_f1_drop: float = Field(default=0.05, ge=0, le=1)
    # The shipped models learn from every labeled row, so champion and
    # challenger are compared only on test rows the champion never trained on.
    min_unseen_rows: int = Field(default=30, ge=1)
    # "shadow": a challenger that passes the gate takes the ``challenger`` alias and scores
    # beside the champion (a parallel run) until live evidence promotes it; "promote": it
    # becomes champion at once. A first model always becomes champion.
    on_pass: Literal["promote", "shadow"] = "promote"


class TrainSettings(_Frozen):
    """What a retraining run fits, how it chooses, and how it splits the data.

    The snapshot is split once into a fit part and a test part. Candidates
    and their settings are chosen by ``cv_folds``-fold cross-validation
    inside the fit part, on at most ``cv_rows`` of its rows (the budget);
    the winner is then fitted on the fit part and measured on the test part,
    and the shipped model is refitted on every labeled row.
    """

    candidates: tuple[str, ...] = (
        "baseline",
        "logreg",
        "linear_svc",
        "complement_nb",
        "lightgbm",
        "ensemble",
    )
    candidate_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    search: bool = True
    ensemble_members: int = Field(default=3, ge=1)
    cv_folds: int = Field(default=3, ge=2, le=10)
    cv_rows: int = Field(default=8_000, ge=100)
    one_standard_error: bool = True
    duel_rows: int = Field(default=40_000, ge=100)
    abstain_rate: float = Field(default=0.0, ge=0, lt=0.5)
    # "auto": the stacked priority model or the plain baseline, by CV; or pinned.
    priority_model: Literal["auto", "stacked", "baseline"] = "auto"
    # The pretrained multilingual sentence encoder as a feature block beside
    # the n-grams: off by default, it costs fit time and most of predict speed
    # and paid only on short intent texts (docs/benchmarks.md). The weight 2
    # won a 3-fold CV on CLINC150's training rows (benchmarks/bench_encoder.py).
    encoder: bool = False
    encoder_weight: float = Field(default=2.0, gt=0)
    encoder_max_chars: int = Field(default=512, ge=16)
    test_days: int = Field(default=30, ge=1)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    min_rows: int = Field(default=50, ge=1)
    # Labels nobody looked at (the model's own ``auto`` answers) teach the model its own
    # mistakes: left out of training unless this is set.
    use_auto_applied_labels: bool = False
    seed: int = 0


class ScheduleSettings(_Frozen):
    """When the deployed flows run, where, and where scheduled ingestion looks for files.

    Read like the rest, e.g. ``TRIAGE_SCHEDULES__TIMEZONE=Europe/Berlin`` or
    ``TRIAGE_SCHEDULES__RETRAIN_CRON="0 2 * * 1"``.
    """

    retrain_cron: str = "0 3 1 * *"
    monitor_cron: str = "0 6 * * *"
    timezone: str = "UTC"
    score_interval_minutes: int = Field(default=15, ge=1)
    ingest_interval_minutes: int = Field(default=5, ge=1)
    work_pool: str = Field(default="triage-ml", min_length=1)
    work_pool_concurrency: int | None = Field(default=None, ge=1)
    inbox_dir: Path | None = None

    @field_validator("retrain_cron", "monitor_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        # cronsim (already installed with Prefect) rather than Prefect's own
        # croniter: importing prefect here would freeze Prefect's settings
        # before cli.runner.prepare_environment points PREFECT_HOME at the workspace.
        from cronsim import CronSim, CronSimError

        if len(value.split()) != 5:
            raise ValueError(
                f"'{value}' is not a cron expression of five fields (minute hour day month weekday)"
            )
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


class AutomationSettings(_Frozen):
    """Per-class tiers: the precision a tier must keep, and how sure that estimate must be.

    For each class the ``auto`` threshold is the lowest confidence at which the
    lower ``confidence`` bound of the precision of that class's predictions
    (from that confidence up) still reaches ``auto_precision``; likewise
    ``suggest``. A class that cannot show it, for instance one with a few rows
    that happened to be right, gets no ``auto`` tier.
    """

    auto_precision: float = Field(default=0.95, gt=0, le=1)
    suggest_precision: float = Field(default=0.80, gt=0, le=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    # Live re-estimation needs at least this many labeled predictions of a class.
    min_live_rows: int = Field(default=30, ge=1)


class MonitorSettings(_Frozen):
    """The production monitor: live quality windows, drift, when to act and whom to tell."""

    window: Literal["day", "week"] = "week"
    # A window with fewer labeled predictions reports "not enough labels", never a figure.
    min_labels: int = Field(default=30, ge=1)
    lookback_days: int = Field(default=90, ge=1)
    # Recent tickets (the last ``drift_days``) are compared with the champion's training snapshot.
    drift_days: int = Field(default=7, ge=1)
    drift_min_rows: int = Field(default=50, ge=1)
    # Population stability index above which a distribution has drifted (0.2: the usual "major").
    drift_threshold: float = Field(default=0.2, gt=0)
    # Live macro-F1 more than this below the champion's held-out figure starts a retrain.
    f1_margin: float = Field(default=0.05, ge=0, le=1)
    cooldown_hours: float = Field(default=72, ge=0)
    # How a retrain is started: the deployment (run_deployment), in this process, or never.
    trigger: Literal["deployment", "inline", "off"] = "deployment"
    webhook_url: str | None = None
    webhook_timeout_seconds: float = Field(default=5, gt=0, le=60)
    # Shadow challenger: live rows needed before the two are compared, and whether a win promotes.
    shadow_min_labels: int = Field(default=100, ge=1)
    promote_on_live: bool = False

    @field_serializer("webhook_url", when_used="json")
    def _masked_webhook(self, value: str | None) -> str | None:
        # A webhook's path is often its secret (Slack, Teams): only scheme and host travel to
        # flow parameters, the Prefect UI and `config show`.
        return mask_webhook(value) if value else value


# Where a ticket in a language the model does not cover goes: a team or a translation queue.
DEFAULT_LANGUAGE_ROUTES: dict[str, str] = {}
# A signal can raise the predicted priority to at least a level (e.g. {"legal": "high"}). None by
# default: the priority model already reads the signals and learns their weight from the labels.
DEFAULT_ESCALATION_PRIORITY: dict[str, str] = {}
# The priority score's blend: the priority model's severity, customer value and negative sentiment.
DEFAULT_PRIORITY_WEIGHTS: dict[str, float] = {"model": 0.6, "value": 0.25, "sentiment": 0.15}


class SignalSettings(_Frozen):
    """Language, sentiment, escalation and the priority score: answers beside the heads.

    They are copied into the model's config when it is trained, so the served model
    answers as the settings stood then (the runtime never reads the settings).
    """

    # Languages the model and its sentiment analyzers cover; any other is flagged for review.
    languages: tuple[str, ...] = ("en", "de")
    # Languages the detector chooses among (a narrower set is faster; keep the supported ones in).
    detect_languages: tuple[str, ...] = (
        "en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "da", "tr", "ru",
    )  # fmt: skip
    # Per language, the route that overrides the category's (e.g. {"fr": "translation-queue"});
    # an unsupported language without one goes to ``unsupported_route``.
    language_routes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_LANGUAGE_ROUTES))
    unsupported_route: str = "translation-queue"
    # A supported language the training rows hold fewer tickets of than this (and less than
    # this share of them) is treated as unsupported by the model trained on them.
    min_language_rows: int = Field(default=100, ge=0)
    min_language_share: float = Field(default=0.1, ge=0, le=1)
    # Sentiment at or below this flags the ticket for priority review.
    negative_sentiment: float = Field(default=-0.5, ge=-1, le=0)
    # The escalation signals' terms, in English and German (data_contracts/escalation.yaml).
    escalation_terms: Path | None = None
    escalation_priority: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ESCALATION_PRIORITY)
    )
    # Earlier contacts of the customer in the 30 days before that make a "repeat_contact" signal:
    # at 2, 34% of the demo's tickets and 66% of a busy replay's were "escalations" (5: 11%, 40%).
    repeat_contacts: int = Field(default=5, ge=1)
    priority_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_PRIORITY_WEIGHTS)
    )

    @field_validator("priority_weights")
    @classmethod
    def _known_parts(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(DEFAULT_PRIORITY_WEIGHTS))
        if unknown or any(w < 0 for w in value.values()) or not sum(value.values()) > 0:
            raise ValueError(
                "priority_weights takes non-negative weights of model, value and sentiment"
                f" with a positive sum (got {value})"
            )
        return value


class HeadSettings(_Frozen):
    """The heads beyond category and priority, trained where the column mapping names them.

    Below ``min_confidence`` a head's answer is withheld: the subcategory falls back to the
    category alone, and the team to the category's route.
    """

    min_confidence: dict[str, float] = Field(
        default_factory=lambda: {"subcategory": 0.4, "type": 0.0, "team": 0.4}
    )
    # The gate's guardrail per head: the challenger's macro-F1 may fall at most this far.
    max_macro_f1_drop: float = Field(default=0.02, ge=0, le=1)
    # The heads' classifier (a category candidate's factory that gives probabilities): logreg
    # won on the tickets sample's type and queue and the synthetic subcategory (docs/benchmarks.md).
    candidate: Literal["logreg", "baseline", "complement_nb"] = "logreg"


class DuplicateSettings(_Frozen):
    """Duplicate suggestions: recent open tickets of the same customer or with the same text."""

    enabled: bool = True
    # Cosine similarity of the two texts' character n-grams at or above which a ticket is suggested.
    threshold: float = Field(default=0.8, gt=0, le=1)
    window_days: int = Field(default=14, ge=1)
    max_suggestions: int = Field(default=3, ge=1, le=20)


# Resolution targets per priority, in hours: the seed's P1 "minutes to hours" (critical, urgent),
# P2 "hours to 1 day" (high), P3 "1-3 days" (medium, normal) and P4 "1-2 weeks" (low).
DEFAULT_SLA_HOURS: dict[str, float] = {
    "critical": 4,
    "urgent": 8,
    "high": 24,
    "medium": 72,
    "normal": 72,
    "low": 336,
}


class ApiSettings(_Frozen):
    """The ticket events API (``triage-ml api serve``): where it listens and what a caller may cost.

    ``rate_limit`` is in the ``limits`` package's notation (``"100/second;3000/minute"``), counted
    per token, and per client address for requests without a valid token.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8100, ge=1, le=65535)
    max_request_bytes: int = Field(default=256 * 1024, ge=1024)
    rate_limit: str = "100/second;3000/minute"
    # Server processes: one Python process answers on one core at a time (docs/benchmarks.md).
    workers: int = Field(default=1, ge=1, le=32)
    # Answers per keep-alive connection, after which the client reconnects (to a free worker).
    keepalive_requests: int = Field(default=10, ge=1)
    # Open connections past which the server answers 503, and seconds a request may take.
    max_connections: int = Field(default=64, ge=1)
    request_timeout_seconds: float = Field(default=30, gt=0)
    page_size: int = Field(default=50, ge=1)
    max_page_size: int = Field(default=500, ge=1)
    # How long an Idempotency-Key's first answer is replayed.
    idempotency_hours: float = Field(default=24, gt=0)
    # Seconds between checks of the champion and challenger aliases (a promotion is picked up).
    model_refresh_seconds: float = Field(default=30, gt=0)
    sla_hours: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_SLA_HOURS))

    @field_validator("rate_limit")
    @classmethod
    def _parsable_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(
                f"'{value}' is not a rate limit such as '100/second' ({exc})"
            ) from None
        return value

    @field_validator("sla_hours")
    @classmethod
    def _positive_targets(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [name for name, hours in value.items() if not hours > 0]
        if bad:
            raise ValueError(f"SLA targets must be positive hours: {', '.join(bad)}")
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
    challenger_alias: str = "challenger"
    priority_levels: tuple[str, ...] = ("critical", "urgent", "high", "medium", "normal", "low")
    categories: tuple[str, ...] | None = None
    routes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ROUTES))
    default_route: str = "general-queue"
    review_threshold: float = Field(default=0.5, ge=0, le=1)
    ingest_chunk_rows: int = Field(default=20_000, ge=1)
    # A chunk's sparse n-gram matrices are held while it is predicted: smaller
    # chunks were faster and lowered the peak RSS (docs/benchmarks.md).
    score_chunk_rows: int = Field(default=5_000, ge=1)
    score_partition_rows: int = Field(default=20_000, ge=1)
    score_runner: Literal["threads", "processes", "dask"] = "threads"
    score_workers: int = Field(default=2, ge=1)
    dask_address: str | None = None
    train: TrainSettings = TrainSettings()
    gate: GateSettings = GateSettings()
    automation: AutomationSettings = AutomationSettings()
    monitor: MonitorSettings = MonitorSettings()
    schedules: ScheduleSettings = ScheduleSettings()
    api: ApiSettings = ApiSettings()
    signals: SignalSettings = SignalSettings()
    heads: HeadSettings = HeadSettings()
    duplicates: DuplicateSettings = DuplicateSettings()

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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment, then the secrets directory, then the config file (module docstring)."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if secrets := os.environ.get(SECRETS_ENV):
            sources.append(
                SecretsSettingsSource(
                    settings_cls, secrets_dir=_existing(Path(secrets), SECRETS_ENV, "directory")
                )
            )
        if config := config_file():
            sources.append(
                TomlConfigSettingsSource(settings_cls, toml_file=checked_config_file(config))
            )
        return tuple(sources)

    @classmethod
    def load(cls, config: Path | None = None) -> Settings:
        """The settings with ``config`` as the TOML config file ($TRIAGE_CONFIG when None).

        The environment still overrides the file, as documented above, and
        nothing is written to ``os.environ``: ``--config`` reaches the flows
        through the object it builds, which they take as a parameter.
        """
        token = _CONFIG_FILE.set(config)
        try:
            return cls()
        finally:
            _CONFIG_FILE.reset(token)

    @field_serializer(*URL_FIELDS, when_used="json")
    def _masked_url(self, value: str | None) -> str | None:
        # JSON is how a flow's parameters reach the Prefect API and its UI:
        # a password in a URL must not travel with them.
        return mask_url(value) if value else value

    def sla_hours_for(self, priority: str | None) -> float | None:
        """Hours from a ticket's opening to its resolution target at ``priority``; None when
        ``api.sla_hours`` names no target for it (a custom scale without targets)."""
        return None if priority is None else self.api.sla_hours.get(priority)

    def route_for(self, category: str) -> str:
        """Team a category is routed to."""
        return self.routes.get(category, self.default_route)


def mask_webhook(url: str) -> str:
    """``https://hooks.example.com/***``: the scheme and host of a webhook URL, never its path."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/***"


def config_file() -> Path | None:
    """The TOML config file being read: the one :meth:`Settings.load` got, else $TRIAGE_CONFIG."""
    if (given := _CONFIG_FILE.get()) is not None:
        return given
    return Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None


def _existing(path: Path, variable: str, kind: str) -> Path:
    wanted = path.is_dir() if kind == "directory" else path.is_file()
    if not wanted:
        raise ConfigError(f"{variable}={path}: no such {kind}")
    return path


def checked_config_file(path: Path) -> Path:
    """``path`` if it is a readable TOML config without credentials; a one-line ConfigError
    otherwise."""
    _existing(path, CONFIG_ENV, "file")
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{CONFIG_ENV}={path}: not valid TOML: {exc}") from None
    for name in URL_FIELDS:
        if isinstance(values.get(name), str) and url_has_password(values[name]):
            raise ConfigError(
                f"{path} puts a password in {name}; credentials come only from the environment "
                f"(TRIAGE_{name.upper()}) or a file in {SECRETS_ENV}"
            )
    return path


def effective_config(settings: Settings, config_file: Path | None = None) -> dict[str, Any]:
    """Every setting with its effective value, the URLs the platform derives, and where they came
    from.

    Credentials are masked; this is what ``triage-ml config show`` prints.

    Args:
        settings: the settings in effect.
        config_file: the config file they were loaded from (``Settings.load``);
            None means $TRIAGE_CONFIG's, if any.
    """
    values = settings.model_dump(mode="json")
    for name in URL_FIELDS:
        if values.get(name):
            values[name] = mask_url(values[name])
    values["effective"] = {
        "store_url": mask_url(settings.store_url),
        "tracking_uri": mask_url(settings.tracking_uri),
        "registry_uri": mask_url(settings.registry_uri),
        "prefect_api": mask_url(settings.prefect_api_url)
        if settings.prefect_api_url
        else "embedded (ephemeral server)",
        "home": str(settings.home.resolve()),
    }
    values["sources"] = {
        "config_file": str(config_file) if config_file is not None else os.environ.get(CONFIG_ENV),
        "secrets_dir": os.environ.get(SECRETS_ENV),
    }
    return values
