"""The model card of a registered version: its MLflow description in Markdown, and searchable tags.

A card says what the version predicts and from which inputs, which
candidate it is and with what setting, how it did on the held-out test
rows (per class, with a confusion matrix; per head: category, subcategory,
type, team, priority), which signals it answers with (languages, sentiment
analyzers, escalation signals, the priority score's weights, as its config
holds them), how much of each class it can
automate at the tiers' target precisions, which data it learned from, what
the gate decided and why, its known limits, and the commit it came from.
It names classes and counts only: never ticket text or anything about a
customer.

:func:`model_card` is the Markdown of a :class:`Card`; :func:`card_facts`
gathers a Card from a retraining's objects; :func:`write_card` is the one
function here that writes to the registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow import MlflowClient
from sklearn.metrics import confusion_matrix

from triage_ml.monitoring import tiers
from triage_ml.registry import runs
from triage_ml.registry.versions import model_signature
from triage_ml.settings import Settings
from triage_ml.training.metrics import metric_key
from triage_model.heads import HEADS, HEADS_KEY

if TYPE_CHECKING:
    from triage_ml.training.dataset import Snapshot
    from triage_ml.training.retrain import Challenger
    from triage_ml.training.selection import Scored

# Classes with fewer labeled tickets than this are called out as known limits.
SMALL_CLASS_ROWS = 50
# Model version descriptions are VARCHAR(5000) in MLflow's SQL registry (PostgreSQL enforces it).
MAX_CARD_CHARS = 5000
MODEL_DESCRIPTION = (
    "triage-ml models triage customer-support tickets: from a ticket's subject, body and"
    " metadata (channel, customer tier, lifetime value, repeat contacts) each"
    " predicts the ticket's category with a confidence and its top three, the team it"
    " routes to, and its priority; where the training data had them, its subcategory,"
    " type and team; and its language, sentiment, escalation signals and a 0-100 priority"
    " score with its parts. Every version is retrained on labeled tickets, chosen by"
    " cross-validation among candidate models, measured on held-out recent tickets, and"
    " promoted to the `champion` alias only when the gate finds it better than the"
    " champion. Each version's description is its model card."
)
HEADLINE_METRICS: tuple[str, ...] = (
    "category_macro_f1",
    "category_accuracy",
    "category_top2_accuracy",
    "category_ece",
    "category_abstained",
    "priority_macro_f1",
    "priority_urgent_recall",
    "priority_level_error",
)
# Each head's held-out figures in the card's Heads table, and as version tags.
HEAD_METRICS: tuple[str, ...] = (
    *(f"{head}_{figure}" for head in HEADS for figure in ("macro_f1", "accuracy")),
    "subcategory_answered",
    "subcategory_inconsistent",
)
# The heads in the order the Heads table lists them.
CARD_HEADS: tuple[str, ...] = ("category", *HEADS, "priority")
# The model config's signal keys the Signals section reads (absent ones: "not configured").
SIGNAL_KEYS: tuple[str, ...] = (
    "languages",
    "language_rows",
    "detect_languages",
    "language_routes",
    "unsupported_route",
    "negative_sentiment",
    "escalation_terms",
    "escalation_priority",
    "repeat_contacts",
    "priority_weights",
)
# What scores sentiment per language in triage_model.sentiment (ANALYZERS); any other has none.
SENTIMENT_ANALYZERS: dict[str, str] = {
    "en": "VADER (vaderSentiment)",
    "de": "SentiWS lexicon scorer (gersent's word lists, VADER's rules)",
}


@dataclass(frozen=True)
class DataFacts:
    """What a version learned from: counts, dates and digests, never rows."""

    snapshot_digest: str
    batches: tuple[str, ...]
    first_day: str | None
    last_day: str | None
    class_counts: dict[str, int]
    languages: dict[str, int]
    test_rows: int


@dataclass(frozen=True)
class Card:
    """The facts of one registered version's model card."""

    model_name: str
    version: str
    run_id: str
    candidate: str
    params: dict[str, Any]
    cv: dict[str, float]
    inputs: tuple[str, ...]
    required_inputs: tuple[str, ...]
    priority_levels: tuple[str, ...]
    metrics: dict[str, float]
    labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    data: DataFacts
    decision: dict[str, Any]
    git_sha: str
    # Per tier: its target precision and each class's held-out coverage (automation_facts).
    automation: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per head (CARD_HEADS): its number of classes, None where the model has no such head.
    heads: dict[str, int | None] = field(default_factory=dict)
    # The model config's signal settings (SIGNAL_KEYS present in it).
    signals: dict[str, Any] = field(default_factory=dict)


def data_facts(
    frame: pd.DataFrame, digest: str, batches: Sequence[str], test_rows: int
) -> DataFacts:
    """Counts, date range and languages of a snapshot's labeled tickets (text never read)."""
    days = pd.to_datetime(frame["created_at"], utc=True).dropna() if "created_at" in frame else []
    languages = frame["language"].fillna("unknown") if "language" in frame else pd.Series()
    return DataFacts(
        snapshot_digest=digest,
        batches=tuple(batches),
        first_day=days.min().date().isoformat() if len(days) else None,
        last_day=days.max().date().isoformat() if len(days) else None,
        class_counts=_counts(frame["category"]),
        languages=_counts(languages),
        test_rows=test_rows,
    )


def _counts(values: pd.Series) -> dict[str, int]:
    counts = values.astype(str).value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def confusion(
    truth: Sequence[str], predicted: Sequence[str]
) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]:
    """Labels (true and predicted, sorted) and counts: rows are true classes, columns predicted."""
    truth, predicted = [str(t) for t in truth], [str(p) for p in predicted]
    labels = sorted(set(truth) | set(predicted))
    matrix = confusion_matrix(truth, predicted, labels=labels)
    return tuple(labels), tuple(tuple(int(n) for n in row) for row in matrix)


def automation_facts(
    settings: Settings, truth: Sequence[str], predicted: pd.DataFrame
) -> dict[str, dict[str, Any]]:
    """Per tier, its target precision and each class's automation coverage on held-out rows.

    Args:
        settings: the workspace (``settings.automation`` holds the targets).
        truth: the held-out rows' true categories.
        predicted: the model's predictions of those rows (``category``, ``category_proba``).

    Returns:
        ``{tier: {"precision": target, "coverage": {class: share or None}}}``.
    """
    labels = pd.Series(list(truth), dtype=object).astype(str).to_numpy(dtype=object)
    guessed = predicted["category"].astype(str).to_numpy(dtype=object)
    confidence = predicted["category_proba"].to_numpy(dtype=float)
    classes = sorted(set(labels.tolist()))
    return {
        tier: {
            "precision": target,
            "coverage": tiers.coverage_at(
                classes, labels, guessed, confidence, target, settings.automation
            ),
        }
        for tier, target in tiers.targets(settings.automation).items()
    }


def head_classes(
    config: Mapping[str, Any], class_counts: Mapping[str, int], priority_levels: Sequence[str]
) -> dict[str, int | None]:
    """Each head's number of classes (:data:`CARD_HEADS`), None for a head the model lacks.

    Args:
        config: the model's config (its ``heads`` facts hold each further head's classes).
        class_counts: the labeled tickets per category.
        priority_levels: the priority levels the model predicts (empty: no priority model).
    """
    trained = config.get(HEADS_KEY) or {}
    out: dict[str, int | None] = {"category": len(class_counts)}
    for head in HEADS:
        classes = (trained.get(head) or {}).get("classes")
        out[head] = len(classes) if classes else None
    out["priority"] = len(priority_levels) or None
    return out


def signal_facts(config: Mapping[str, Any]) -> dict[str, Any]:
    """The model config's signal settings (:data:`SIGNAL_KEYS`), escalation terms as counts.

    The terms themselves are configuration, but long: the card says how many each signal has.
    """
    out = {key: config[key] for key in SIGNAL_KEYS if key in config}
    if isinstance(out.get("escalation_terms"), Mapping):
        out["escalation_terms"] = {k: len(v) for k, v in out["escalation_terms"].items()}
    return out


def card_facts(
    settings: Settings,
    version: str,
    run_id: str,
    chosen: Scored,
    challenger: Challenger,
    test: pd.DataFrame,
    snapshot: Snapshot,
    decision: Mapping[str, Any],
) -> Card:
    """The card of a version a retraining registered, from the retraining's own objects."""
    predicted = challenger.predictions
    has_priority = "priority" in predicted and bool(predicted["priority"].notna().any())
    labels, matrix = confusion(test["category"].tolist(), predicted["category"].tolist())
    inputs = model_signature().inputs
    config = getattr(challenger.predictor, "config", None) or {}
    # The levels the model learned: the configured scale's levels its training labels hold.
    seen = set(snapshot.frame["priority"].dropna()) if has_priority else set()
    priority_levels = tuple(level for level in settings.priority_levels if level in seen)
    data = data_facts(snapshot.frame, snapshot.digest, snapshot.batch_ids, len(test))
    return Card(
        model_name=settings.model_name,
        version=str(version),
        run_id=run_id,
        candidate=chosen.name,
        params=dict(chosen.params),
        cv=chosen.figures(),
        inputs=tuple(inputs.input_names()),
        required_inputs=tuple(c.name for c in inputs.inputs if c.required),
        priority_levels=priority_levels,
        metrics=dict(challenger.metrics),
        labels=labels,
        confusion=matrix,
        data=data,
        decision=dict(decision),
        git_sha=runs.git_sha(),
        automation=automation_facts(settings, test["category"].tolist(), predicted),
        heads=head_classes(config, data.class_counts, priority_levels),
        signals=signal_facts(config),
    )


def card_tags(card: Card) -> dict[str, str]:
    """The card's facts as version tags, for searching versions (``tags.candidate = 'logreg'``)."""
    tags = {
        "candidate": card.candidate,
        "snapshot_digest": card.data.snapshot_digest,
        "gate_decision": "promoted" if card.decision.get("promote") else "rejected",
        "git_sha": card.git_sha,
        "training_rows": str(sum(card.data.class_counts.values())),
        "test_rows": str(card.data.test_rows),
        "data_first_day": card.data.first_day or "unknown",
        "data_last_day": card.data.last_day or "unknown",
        "languages": ",".join(card.data.languages),
    }
    shown = HEADLINE_METRICS + HEAD_METRICS
    tags.update({f"test_{k}": _fig(card.metrics[k]) for k in shown if k in card.metrics})
    return tags


def write_card(client: MlflowClient, card: Card) -> str:
    """Write the card as the version's description and tags; describe the registered model.

    Returns:
        The Markdown written.
    """
    text = model_card(card)
    client.update_registered_model(card.model_name, description=MODEL_DESCRIPTION)
    client.update_model_version(card.model_name, card.version, description=text)
    for key, value in card_tags(card).items():
        client.set_model_version_tag(card.model_name, card.version, key, value)
    return text


def model_card(card: Card, limit: int = MAX_CARD_CHARS) -> str:
    """The version's description: the full card, or a compact one when the full one is too long.

    The compact card lists the most frequent confusions instead of the whole
    matrix and the smallest classes instead of all of them (the full figures
    are the run's artifacts); a card still too long is cut with a note.
    """
    for compact in (False, True):
        text = "\n\n".join(filter(None, (section(card, compact) for section in SECTIONS))) + "\n"
        if len(text) <= limit:
            return text
    footer = f"\n\n(cut to {limit:,} characters; see run {card.run_id})\ngit SHA: {card.git_sha}\n"
    return text[: limit - len(footer)] + footer


def _title(card: Card, compact: bool) -> str:
    outcome = "promoted to champion" if card.decision.get("promote") else "not promoted"
    return (
        f"# Model card: {card.model_name} version {card.version}\n\n"
        f"Registered from MLflow run `{card.run_id}`; {outcome}."
    )


def _predicts(card: Card, compact: bool) -> str:
    classes = [c for c in card.labels if c in card.data.class_counts]
    lines = [
        "## What it predicts",
        "",
        f"- **category**: one of {len(classes)} classes ({_listed(classes, 20)}), with its"
        " confidence, the top three, and the route of the category.",
    ]
    if card.priority_levels:
        lines.append(f"- **priority**: one of {', '.join(card.priority_levels)}.")
    else:
        lines.append("- no priority: the training labels held fewer than two priority levels.")
    inputs = ", ".join(
        f"`{n}`" + (" (required)" if n in card.required_inputs else "") for n in card.inputs
    )
    lines += ["", f"Inputs: {inputs}. Other columns are ignored."]
    return "\n".join(lines)


def _candidate(card: Card, compact: bool) -> str:
    lines = ["## Candidate", "", f"`{card.candidate}`, chosen by cross-validation."]
    if "cv_category_macro_f1" in card.cv:
        lines[-1] += (
            f" CV category macro-F1 {_fig(card.cv['cv_category_macro_f1'])}"
            f" ± {_fig(card.cv.get('cv_category_macro_f1_se', 0.0))} (standard error)."
        )
    if card.params:
        lines += ["", "| parameter | value |", "| --- | --- |"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in sorted(card.params.items())]
    else:
        lines += ["", "No searched parameters: the candidate's fixed settings."]
    return "\n".join(lines)


def _metrics(card: Card, compact: bool) -> str:
    headline = [k for k in HEADLINE_METRICS if k in card.metrics]
    lines = [
        "## Held-out metrics",
        "",
        f"The candidate fitted on the other rows, measured on {card.data.test_rows:,} held-out"
        " test tickets; the version itself is that recipe refitted on every labeled ticket.",
        "",
        "| metric | value |",
        "| --- | --- |",
        *(f"| {k} | {_fig(card.metrics[k])} |" for k in headline),
        "",
        "| class | F1 | test tickets |",
        "| --- | --- | --- |",
    ]
    support = {label: sum(row) for label, row in zip(card.labels, card.confusion)}
    classes = [c for c in card.labels if support.get(c)]
    for c in _worst(classes, card.metrics, 10) if compact else classes:
        f1 = card.metrics.get(f"category_f1.{metric_key(c)}")
        lines.append(f"| {_cell(c)} | {_fig(f1)} | {support[c]} |")
    lines += ["", _confusions(card) if compact else _confusion_table(card)]
    return "\n".join(lines)


def _heads(card: Card, compact: bool) -> str:
    if not card.heads:
        return ""
    lines = [
        "## Heads",
        "",
        "Each head's held-out figures on the test tickets that carry its label; a withheld"
        " answer counts as a miss.",
        "",
        "| head | classes | macro-F1 | accuracy | notes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for head in CARD_HEADS:
        classes = card.heads.get(head)
        if classes is None:
            lines.append(f"| {head} | not trained | | | {_untrained(head)} |")
            continue
        f1, accuracy = (card.metrics.get(f"{head}_{k}") for k in ("macro_f1", "accuracy"))
        lines.append(
            f"| {head} | {classes} | {_fig(f1)} | {_fig(accuracy)} | {_notes(card, head)} |"
        )
    return "\n".join(lines)


def _untrained(head: str) -> str:
    if head == "team":
        return "routes come from the category map"
    return "no such labels, or too few, in the training data"


def _notes(card: Card, head: str) -> str:
    if head != "subcategory" or "subcategory_answered" not in card.metrics:
        return ""
    answered = card.metrics["subcategory_answered"]
    inconsistent = int(card.metrics.get("subcategory_inconsistent", 0))
    return (
        f"answered {answered:.0%} (else the category alone); {inconsistent} inconsistent"
        " with the predicted category"
    )


def _signals(card: Card, compact: bool) -> str:
    signals = card.signals
    lines = [
        "## Signals",
        "",
        f"- languages supported: {_languages(signals)}",
        f"- sentiment: {_sentiment(signals)}",
        f"- escalation signals: {_escalation(signals)}",
        f"- priority score weights: {_weights(signals)}",
    ]
    return "\n".join(lines)


def _languages(signals: Mapping[str, Any]) -> str:
    if "languages" not in signals:
        return "not configured"
    text = ", ".join(signals["languages"]) or "none"
    if signals.get("language_rows"):
        # The fit rows per detected language: why a configured language may be missing above.
        text += " (fit rows per language: "
        text += ", ".join(f"{k} {v}" for k, v in signals["language_rows"].items()) + ")"
    routes = signals.get("language_routes") or {}
    if routes:
        text += "; routes per language: " + ", ".join(f"{k} -> {v}" for k, v in routes.items())
    if "unsupported_route" in signals:
        text += (
            f"; any other language goes to {signals['unsupported_route']} and is flagged for review"
        )
    return text


def _sentiment(signals: Mapping[str, Any]) -> str:
    if "languages" not in signals:
        return "not configured"
    parts = [
        f"{lang}: {SENTIMENT_ANALYZERS.get(lang, 'none (null, with a reason)')}"
        for lang in signals["languages"]
    ]
    if "negative_sentiment" in signals:
        parts.append(f"priority review at or below {signals['negative_sentiment']:g}")
    return "; ".join(parts)


def _escalation(signals: Mapping[str, Any]) -> str:
    terms = signals.get("escalation_terms")
    if not terms:
        return "not configured"
    text = ", ".join(f"{name} ({count} terms)" for name, count in terms.items())
    if "repeat_contacts" in signals:
        text += f", repeat_contact (at least {signals['repeat_contacts']} earlier contacts)"
    rule = signals.get("escalation_priority") or {}
    if rule:
        text += "; raise priority to at least: " + ", ".join(f"{k} -> {v}" for k, v in rule.items())
    return text


def _weights(signals: Mapping[str, Any]) -> str:
    weights = signals.get("priority_weights")
    if not weights:
        return "not configured"
    return ", ".join(f"{part} {weight:g}" for part, weight in weights.items())


def _automation(card: Card, compact: bool) -> str:
    if not card.automation:
        return ""
    tiers_shown = list(card.automation)
    coverage = {tier: card.automation[tier]["coverage"] for tier in tiers_shown}
    classes = sorted(coverage[tiers_shown[0]])
    if compact:
        first = coverage[tiers_shown[0]]
        classes = sorted(classes, key=lambda c: (first[c] is not None, first[c] or 0.0, c))[:10]
    heads = [f"{tier} (precision {card.automation[tier]['precision']:g})" for tier in tiers_shown]
    lines = [
        "## Automation at a target precision",
        "",
        "Share of each class's held-out test tickets whose prediction reaches the confidence"
        " at which that class's precision is at least the target (its lower confidence"
        " bound, on the same rows)" + ("; the 10 least automated classes." if compact else "."),
        "",
        "| class | " + " | ".join(heads) + " |",
        "| --- | " + " | ".join("---" for _ in heads) + " |",
    ]
    lines += [
        f"| {_cell(c)} | " + " | ".join(_share(coverage[t].get(c)) for t in tiers_shown) + " |"
        for c in classes
    ]
    return "\n".join(lines)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _worst(classes: list[str], metrics: Mapping[str, float], n: int) -> list[str]:
    return sorted(classes, key=lambda c: metrics.get(f"category_f1.{metric_key(c)}", 0.0))[:n]


def _confusion_table(card: Card) -> str:
    lines = [
        "Confusion matrix (rows: true class, columns: predicted):",
        "",
        "| true \\ predicted | " + " | ".join(_cell(c) for c in card.labels) + " |",
        "| --- | " + " | ".join("---" for _ in card.labels) + " |",
    ]
    for label, row in zip(card.labels, card.confusion):
        if sum(row):
            lines.append(f"| {_cell(label)} | " + " | ".join(str(n) for n in row) + " |")
    return "\n".join(lines)


def _confusions(card: Card, n: int = 10) -> str:
    pairs = [
        (count, true, predicted)
        for true, row in zip(card.labels, card.confusion)
        for predicted, count in zip(card.labels, row)
        if true != predicted and count
    ]
    lines = [
        f"The {n} most frequent confusions (the full matrix is the run's"
        " `evaluation/category_confusion_matrix.png`):",
        "",
        "| true | predicted | tickets |",
        "| --- | --- | --- |",
    ]
    top = sorted(pairs, key=lambda p: (-p[0], p[1], p[2]))[:n]
    lines += [f"| {_cell(t)} | {_cell(p)} | {c} |" for c, t, p in top]
    return "\n".join(lines)


def _data(card: Card, compact: bool) -> str:
    data = card.data
    counts = data.class_counts
    shown = list(counts.items())[-10:] if compact else list(counts.items())
    lines = [
        "## Data",
        "",
        f"- snapshot digest: `{data.snapshot_digest}`",
        f"- ingest batches: {len(data.batches)} ({_listed([f'`{b}`' for b in data.batches], 5)})",
        f"- tickets created: {data.first_day or 'unknown'} to {data.last_day or 'unknown'}",
        f"- labeled tickets: {sum(counts.values()):,}, of which {data.test_rows:,} held out"
        " for the test",
        "",
        "| class | labeled tickets |",
        "| --- | --- |",
        *(f"| {_cell(c)} | {n:,} |" for c, n in shown),
    ]
    if compact and len(shown) < len(counts):
        lines.append(f"| ({len(counts) - len(shown)} larger classes) | |")
    return "\n".join(lines)


def _gate(card: Card, compact: bool) -> str:
    decision = card.decision
    outcome = "Promoted" if decision.get("promote") else "Not promoted"
    lines = [
        "## Gate decision",
        "",
        f"**{outcome}**: {decision.get('reason', 'no reason recorded')}",
    ]
    checks = decision.get("checks") or []
    if checks and not compact:
        lines += ["", "| check | held | detail |", "| --- | --- | --- |"]
        lines += [
            f"| {_cell(c['name'])} | {'yes' if c['passed'] else 'no'} | {_cell(c['detail'])} |"
            for c in checks
        ]
    return "\n".join(lines)


def _limits(card: Card, compact: bool) -> str:
    data = card.data
    small = [f"{c} ({n})" for c, n in data.class_counts.items() if n < SMALL_CLASS_ROWS]
    languages = [f"{lang} ({n:,})" for lang, n in data.languages.items()]
    lines = [
        "## Known limits",
        "",
        f"- classes with fewer than {SMALL_CLASS_ROWS} labeled tickets: "
        + (f"{_listed(small, 10)}; their figures are noisy" if small else "none"),
        f"- languages seen: {_listed(languages, 10) if languages else 'not recorded'};"
        " tickets in other languages are untested",
        f"- it learned from tickets created up to {data.last_day or 'an unknown day'};"
        " categories outside its classes are never predicted",
    ]
    return "\n".join(lines)


def _sha(card: Card, compact: bool) -> str:
    return f"git SHA: {card.git_sha}"


SECTIONS = (
    _title,
    _predicts,
    _candidate,
    _metrics,
    _heads,
    _signals,
    _automation,
    _data,
    _gate,
    _limits,
    _sha,
)


def _listed(items: Sequence[str], n: int) -> str:
    shown = ", ".join(items[:n])
    return shown if len(items) <= n else f"{shown} and {len(items) - n} more"


def _fig(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _cell(value: Any) -> str:
    # A pipe or a line break in a class name would break the Markdown table.
    return str(value).replace("|", "\\|").replace("\n", " ")
