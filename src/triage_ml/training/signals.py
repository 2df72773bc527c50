"""The signal keys of a model's config: languages, sentiment threshold, escalation terms, blend.

Training copies them from the settings (and the escalation terms from their
file) into the config the model carries, so the served model answers as the
settings stood when it was trained; the runtime never reads the settings.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from triage_ml.errors import ConfigError
from triage_ml.ingest.contracts import contracts_dir
from triage_ml.settings import Settings, SignalSettings
from triage_model import escalation, language

ESCALATION_FILE = "escalation.yaml"
# Customer-value quantiles kept in the config: percentiles 0, 1, ..., 100.
LTV_QUANTILES = 101


def escalation_terms(path: Path | None) -> dict[str, list[str]]:
    """The escalation terms of a terms file, each signal's languages merged into one list.

    Args:
        path: A terms file (``data_contracts/escalation.yaml``'s format); None reads that file.

    Returns:
        Signal -> regex alternatives, signals in the runtime's order.

    Raises:
        ConfigError: The file cannot be read, names an unknown signal, or holds a term
            that is not a valid regular expression or matches an empty text.
    """
    path = path or contracts_dir() / ESCALATION_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"escalation terms {path}: cannot be read ({reason})") from exc
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"escalation terms {path}: expected signal -> language -> terms")
    unknown = sorted(str(signal) for signal in raw if signal not in escalation.TEXT_SIGNALS)
    if unknown:
        known = ", ".join(escalation.TEXT_SIGNALS)
        raise ConfigError(
            f"escalation terms {path}: unknown signal {unknown[0]!r} (known: {known})"
        )
    return {
        signal: _signal_terms(path, signal, raw[signal])
        for signal in escalation.TEXT_SIGNALS
        if signal in raw
    }


def _signal_terms(path: Path, signal: str, by_language: Any) -> list[str]:
    """One signal's terms, every language's in one list (duplicates dropped)."""
    if not isinstance(by_language, Mapping):
        raise ConfigError(f"escalation terms {path}: {signal} takes language -> list of terms")
    terms: list[str] = []
    for code, listed in by_language.items():
        if not isinstance(listed, list):
            raise ConfigError(f"escalation terms {path}: {signal}.{code} is not a list of terms")
        for term in listed:
            _check_term(path, f"{signal}.{code}", term)
            if term not in terms:
                terms.append(term)
    return terms


def _check_term(path: Path, where: str, term: Any) -> None:
    if not isinstance(term, str) or not term.strip():
        raise ConfigError(f"escalation terms {path}: {where} has an empty or non-text term")
    try:
        pattern = re.compile(term)
    except re.error as exc:
        raise ConfigError(
            f"escalation terms {path}: {where} term {term!r} is not a valid regular"
            f" expression ({exc})"
        ) from exc
    if pattern.fullmatch(""):
        raise ConfigError(f"escalation terms {path}: {where} term {term!r} matches an empty text")


def signal_config(settings: Settings, rows: pd.DataFrame) -> dict[str, Any]:
    """The signal keys of the config a model trained on ``rows`` carries.

    Args:
        settings: The platform's settings (``settings.signals``, ``settings.priority_levels``).
        rows: The training tickets (their ``customer_ltv`` gives the value quantiles).

    Returns:
        ``languages``, ``detect_languages``, ``language_routes``, ``unsupported_route``,
        ``negative_sentiment``, ``escalation_terms``, ``escalation_priority``,
        ``repeat_contacts``, ``priority_weights`` and ``ltv_quantiles``.

    Raises:
        ConfigError: A language the detector does not know, a supported language it
            does not choose among, an escalation rule on an unknown signal or level,
            or a bad terms file.
    """
    signals = settings.signals
    _check_languages(signals.languages, signals.detect_languages)
    _check_rule(signals.escalation_priority, settings.priority_levels)
    return {
        "languages": list(signals.languages),
        "detect_languages": list(signals.detect_languages),
        "language_routes": dict(signals.language_routes),
        "unsupported_route": signals.unsupported_route,
        "negative_sentiment": float(signals.negative_sentiment),
        "escalation_terms": escalation_terms(signals.escalation_terms),
        "escalation_priority": dict(signals.escalation_priority),
        "repeat_contacts": int(signals.repeat_contacts),
        "priority_weights": {part: float(w) for part, w in signals.priority_weights.items()},
        "ltv_quantiles": ltv_quantiles(rows),
    }


def with_trained_languages(
    config: Mapping[str, Any], detected: Iterable[str], settings: SignalSettings
) -> dict[str, Any]:
    """``config`` supporting only the configured languages the training rows hold enough of.

    A language counts as supported when the fit rows hold at least
    ``settings.min_language_rows`` tickets in it, or ``settings.min_language_share`` of them
    (small data sets): on 45 German tickets in 1,500 the model's German answers were right
    half as often as its English ones, so they go to review as an unsupported language's do.

    Args:
        config: The signal config (:func:`signal_config`).
        detected: The detected language of each fit row.
        settings: The signal settings.

    Returns:
        The config with ``languages`` narrowed and ``language_rows`` (fit rows per language).
    """
    counts = Counter(detected)
    total = sum(counts.values())
    enough = min(settings.min_language_rows, settings.min_language_share * total)
    kept = [code for code in config["languages"] if counts.get(code, 0) >= max(enough, 1)]
    rows = {code: int(n) for code, n in sorted(counts.items())}
    return {**config, "languages": kept, "language_rows": rows}


def ltv_quantiles(rows: pd.DataFrame) -> list[float]:
    """Percentiles 0-100 of the rows' known customer values (empty where none is known)."""
    if "customer_ltv" not in rows.columns:
        return []
    values = pd.to_numeric(rows["customer_ltv"], errors="coerce").to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return []
    return np.quantile(values, np.linspace(0.0, 1.0, LTV_QUANTILES)).tolist()


def _check_languages(supported: tuple[str, ...], candidates: tuple[str, ...]) -> None:
    missing = [code for code in supported if code not in candidates]
    if missing:
        raise ConfigError(
            f"signals.detect_languages must include every supported language (missing: {missing})"
        )
    try:
        # The identifier training's inputs read next: loading it here costs nothing extra.
        language.identifier(tuple(sorted(set(candidates))))
    except ValueError as exc:
        raise ConfigError(f"signals.detect_languages: {exc}") from exc


def _check_rule(rule: Mapping[str, str], levels: tuple[str, ...]) -> None:
    for signal, level in rule.items():
        if signal not in escalation.SIGNALS:
            raise ConfigError(
                f"signals.escalation_priority: unknown signal {signal!r}"
                f" (known: {', '.join(escalation.SIGNALS)})"
            )
        if level not in levels:
            raise ConfigError(
                f"signals.escalation_priority: {signal} -> {level!r} is not a configured"
                f" priority level ({', '.join(levels)})"
            )
