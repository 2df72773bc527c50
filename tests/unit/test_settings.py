"""Configuration: environment over secrets directory over TOML config file over defaults;
credentials masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from triage_ml import cli
from triage_ml.errors import ConfigError
from triage_ml.redact import mask_url
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit

CONFIG = """
model_name = "from-file"
review_threshold = 0.7
[gate]
min_delta = 0.02
[train]
candidates = ["logreg", "complement_nb"]
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "triage.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("TRIAGE_CONFIG", str(path))
    return path


def test_config_file_sets_top_level_and_nested_values(config_file: Path) -> None:
    settings = Settings()
    assert settings.model_name == "from-file"
    assert settings.review_threshold == 0.7
    assert settings.gate.min_delta == 0.02
    assert settings.gate.confidence == 0.95  # untouched nested values keep their defaults
    assert settings.train.candidates == ("logreg", "complement_nb")


def test_environment_overrides_config_file_field_by_field(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIAGE_MODEL_NAME", "from-env")
    monkeypatch.setenv("TRIAGE_GATE__CONFIDENCE", "0.9")
    settings = Settings()
    assert settings.model_name == "from-env"
    assert (settings.gate.min_delta, settings.gate.confidence) == (0.02, 0.9)


def test_secrets_directory_supplies_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "TRIAGE_DATABASE_URL").write_text("postgresql://triage:s3cret@db.internal/triage\n")
    monkeypatch.setenv("TRIAGE_SECRETS_DIR", str(secrets))
    assert Settings().store_url == "postgresql://triage:s3cret@db.internal/triage"
    monkeypatch.setenv("TRIAGE_DATABASE_URL", "postgresql://other@db/x")
    assert Settings().store_url == "postgresql://other@db/x"


def test_config_file_with_a_password_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "leaky.toml"
    path.write_text('mlflow_tracking_uri = "http://ds:hunter2@mlflow:5000"\n')
    monkeypatch.setenv("TRIAGE_CONFIG", str(path))
    with pytest.raises(ConfigError, match="password in mlflow_tracking_uri") as caught:
        Settings()
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "no such file"),
        ("gate = [", "not valid TOML"),
    ],
)
def test_unusable_config_file_is_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, content: str | None, needle: str
) -> None:
    path = tmp_path / "triage.toml"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(
        "TRIAGE_CONFIG", "set-by-the-flag"
    )  # so the variable --config sets is undone after the test
    assert cli.main(["--config", str(path), "config", "show"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and needle in err


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("unknown_setting = 1\n", "unknown_setting: Extra inputs are not permitted"),
        ('[gate]\nmin_delta = "lots"\n', "gate.min_delta"),
        ('score_runner = "spark"\n', "score_runner"),
        ("score_workers = 0\n", "score_workers: Input should be greater than or equal to 1"),
        ("score_partition_rows = -5\n", "score_partition_rows"),
    ],
)
def test_invalid_values_in_config_file_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, content: str, needle: str
) -> None:
    path = tmp_path / "triage.toml"
    path.write_text(content)
    monkeypatch.setenv("TRIAGE_CONFIG", str(path))
    assert cli.main(["config", "show"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: invalid configuration: ")
        and needle in err
        and len(err.splitlines()) == 1
    )


def test_config_show_prints_effective_values_with_credentials_masked(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(
        "TRIAGE_DATABASE_URL", "postgresql+psycopg://triage:pg-secret@db:5432/triage"
    )
    monkeypatch.setenv("TRIAGE_MLFLOW_TRACKING_URI", "http://ds:ml-secret@mlflow:5000")
    assert cli.main(["config", "show", "--json"]) == 0
    out = capsys.readouterr().out
    assert "pg-secret" not in out and "ml-secret" not in out
    shown = json.loads(out)
    assert shown["model_name"] == "from-file" and shown["gate"]["min_delta"] == 0.02
    assert shown["effective"]["store_url"] == "postgresql+psycopg://triage:***@db:5432/triage"
    assert shown["effective"]["registry_uri"] == "http://ds:***@mlflow:5000"
    assert shown["effective"]["prefect_api"].startswith("embedded")
    assert shown["sources"]["config_file"] == str(config_file)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:p%40ss@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://h/db?user=u&password=p", "postgresql://h/db?user=u&password=***"),
        ("https://u:tok@mlflow.example.com/", "https://u:***@mlflow.example.com/"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:////srv/triage/triage.db", "sqlite:////srv/triage/triage.db"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("TRIAGE_GATE__MIN_DELTA", "0", "gate.min_delta: Input should be greater than 0"),
        ("TRIAGE_GATE__MIN_DELTA", "-0.01", "gate.min_delta"),
        ("TRIAGE_GATE__CONFIDENCE", "1", "gate.confidence: Input should be less than 1"),
        ("TRIAGE_GATE__CONFIDENCE", "0", "gate.confidence"),
        ("TRIAGE_GATE__BOOTSTRAP_RESAMPLES", "10", "gate.bootstrap_resamples"),
        ("TRIAGE_GATE__ABSOLUTE_FLOOR", "1.5", "gate.absolute_floor"),
        ("TRIAGE_GATE__METRIC", "category_ece", "gate.metric"),
        ("TRIAGE_TRAIN__TEST_FRACTION", "1", "train.test_fraction"),
        ("TRIAGE_REVIEW_THRESHOLD", "2", "review_threshold"),
    ],
)
def test_gate_and_training_thresholds_are_checked_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, variable: str, value: str, needle: str
) -> None:
    # A zero min_delta used to pass here and crash the retrain after registering its model.
    home = tmp_path / "home"
    monkeypatch.setenv("TRIAGE_HOME", str(home))
    monkeypatch.setenv(variable, value)
    assert cli.main(["retrain"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid configuration: ") and needle in err
    assert len(err.splitlines()) == 1
    assert not home.exists()  # nothing written, nothing registered


def test_a_token_in_a_urls_user_part_is_masked_everywhere_settings_show_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # `https://TOKEN@host` carries a token where a user name would be: it was shown in clear.
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIAGE_PREFECT_API_URL", "https://pf-token-123@prefect.example.com/api")
    monkeypatch.setenv("TRIAGE_MLFLOW_TRACKING_URI", "https://ml-token-456@mlflow.example.com")
    assert cli.main(["config", "show", "--json"]) == 0
    out = capsys.readouterr().out
    assert "pf-token-123" not in out and "ml-token-456" not in out
    shown = json.loads(out)
    assert shown["effective"]["prefect_api"] == "https://***@prefect.example.com/api"
    assert shown["effective"]["tracking_uri"] == "https://***@mlflow.example.com"
    # The JSON a flow's parameters travel in (to the Prefect API and its UI) is masked too.
    assert "pf-token-123" not in Settings().model_dump_json()


def test_a_config_file_with_a_token_in_a_url_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    path = tmp_path / "triage.toml"
    path.write_text('mlflow_tracking_uri = "https://ml-token-456@mlflow.example.com"\n')
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIAGE_CONFIG", str(path))
    assert cli.main(["config", "show"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "mlflow_tracking_uri" in err and "ml-token" not in err
