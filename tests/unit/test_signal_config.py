"""The signal keys a model's config carries, from the settings and the escalation terms file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from triage_ml.errors import ConfigError
from triage_ml.settings import Settings, SignalSettings
from triage_ml.training import signals
from triage_model import escalation, features

pytestmark = pytest.mark.unit

ROWS = pd.DataFrame({"customer_ltv": [10.0, None, 30.0, "n/a", 20.0]})


def test_the_config_holds_every_signal_key() -> None:
    config = signals.signal_config(Settings(), ROWS)
    assert set(config) == set(features.SIGNAL_DEFAULTS)
    assert config["ltv_quantiles"][0] == 10.0 and config["ltv_quantiles"][-1] == 30.0
    assert len(config["ltv_quantiles"]) == signals.LTV_QUANTILES
    assert set(config["escalation_terms"]) == set(escalation.TEXT_SIGNALS)
    assert "anwalt" in config["escalation_terms"]["legal"]


def test_the_runtime_defaults_equal_the_settings_defaults() -> None:
    # A model logged without the keys must answer as a default-trained one (but for the terms).
    config = signals.signal_config(Settings(), pd.DataFrame())
    for key, value in config.items():
        if key != "escalation_terms":
            assert features.SIGNAL_DEFAULTS[key] == value, key


def test_no_known_customer_value_gives_no_quantiles() -> None:
    assert signals.ltv_quantiles(pd.DataFrame({"customer_ltv": [None, None]})) == []
    assert signals.ltv_quantiles(pd.DataFrame({"body": ["x"]})) == []


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "escalation.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("legal:\n  en: ['(unclosed']\n", "legal.en term '(unclosed' is not a valid regular"),
        ("lawsuits:\n  en: [sue]\n", "unknown signal 'lawsuits'"),
        ("legal:\n  de: ['a?']\n", "matches an empty text"),
        ("legal: [sue]\n", "legal takes language -> list of terms"),
        ("legal:\n  en: sue\n", "legal.en is not a list of terms"),
        ("legal:\n  en: ['']\n", "empty or non-text term"),
        ("- just\n- a list\n", "expected signal -> language -> terms"),
        ("legal: {en: [sue]\n", "cannot be read"),
    ],
)
def test_a_bad_terms_file_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        signals.escalation_terms(write(tmp_path, text))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_terms_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        signals.escalation_terms(tmp_path / "absent.yaml")


def test_a_terms_file_merges_its_languages(tmp_path: Path) -> None:
    path = write(tmp_path, "outage:\n  en: [down, outage]\n  de: [ausfall, down]\n")
    assert signals.escalation_terms(path) == {"outage": ["down", "outage", "ausfall"]}
    settings = Settings(signals=SignalSettings(escalation_terms=path))
    assert signals.signal_config(settings, ROWS)["escalation_terms"] == {
        "outage": ["down", "outage", "ausfall"]
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"languages": ("en", "de", "fr"), "detect_languages": ("en", "de")}, "must include"),
        ({"detect_languages": ("en", "de", "xx")}, "Unknown language code(s): {'xx'}"),
        ({"escalation_priority": {"lawsuit": "high"}}, "unknown signal 'lawsuit'"),
        ({"escalation_priority": {"legal": "asap"}}, "'asap' is not a configured priority"),
    ],
)
def test_bad_signal_settings_are_one_clear_line(changes: dict, message: str) -> None:
    settings = Settings(signals=SignalSettings(**changes))
    with pytest.raises(ConfigError) as caught:
        signals.signal_config(settings, ROWS)
    assert message in str(caught.value)


def test_a_language_the_fit_rows_hold_too_little_of_is_not_supported() -> None:
    config = {"languages": ["en", "de"]}
    few = signals.with_trained_languages(
        config, ["en"] * 1455 + ["de"] * 45, SignalSettings(min_language_rows=100)
    )
    assert few["languages"] == ["en"] and few["language_rows"] == {"de": 45, "en": 1455}
    enough = signals.with_trained_languages(
        config, ["en"] * 5800 + ["de"] * 180, SignalSettings(min_language_rows=100)
    )
    assert enough["languages"] == ["en", "de"]
    # Small sets: a tenth of the rows is enough; a language with none is never supported.
    small = signals.with_trained_languages(config, ["en"] * 60, SignalSettings())
    assert small["languages"] == ["en"]
