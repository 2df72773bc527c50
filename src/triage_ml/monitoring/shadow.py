"""The parallel run: a shadow challenger scores beside the champion, and live labels judge them.

A version carrying the challenger alias answers every newly scored ticket
into ``shadow_predictions`` (see ``scoring.batch``); nobody is shown those
answers. Once enough of the tickets both versions answered have a final label
that a person or the source gave (never an auto-applied one: that is the
champion's own answer), :func:`compare` runs the same gate as a retraining
(paired bootstrap and guardrails, :func:`registry.gate.decide`) on those live
rows, and :func:`promote` can make the challenger champion on that evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.engine import Engine

from triage_ml import registry
from triage_ml.errors import RegistryError, TriageError
from triage_ml.registry import gate, promotion
from triage_ml.settings import Settings
from triage_ml.store import shadow as shadow_queries
from triage_ml.store.tables import AUTO_APPLIED
from triage_ml.training import dataset
from triage_ml.training import metrics as eval_metrics


@dataclass(frozen=True)
class LiveComparison:
    """Champion and shadow challenger on the live rows both answered and a final label judges.

    ``decision`` is None, and ``message`` says why, while fewer than
    ``min_rows`` such rows exist.
    """

    champion: str
    challenger: str
    paired: int
    rows: int
    min_rows: int
    decision: gate.Decision | None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record (the decision with every figure and check)."""
        return {
            "champion": self.champion,
            "challenger": self.challenger,
            "paired": self.paired,
            "rows": self.rows,
            "min_rows": self.min_rows,
            "message": self.message,
            "decision": None if self.decision is None else self.decision.as_dict(),
        }


def challenger_version(client: MlflowClient, settings: Settings) -> str | None:
    """The version carrying the challenger alias, or None."""
    return registry.alias_version(client, settings.model_name, settings.challenger_alias)


def start(
    client: MlflowClient, engine: Engine, settings: Settings, version: str, reason: str
) -> dict[str, Any]:
    """Make ``version`` the shadow challenger (audited ``shadow-start``).

    Raises:
        RegistryError: no such version, or it is the champion or already the challenger.
    """
    name = settings.model_name
    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise RegistryError(f"model '{name}' has no version {version}") from None
    current = registry.aliases(client, settings)
    if current.champion == version:
        raise RegistryError(
            f"version {version} is the champion of '{name}'; a shadow challenger is another version"
        )
    if challenger_version(client, settings) == version:
        raise RegistryError(f"version {version} is already the shadow challenger of '{name}'")
    replaced = promotion.point_challenger(client, engine, settings, version, _reason(reason))
    return {
        "action": promotion.SHADOW_START,
        "challenger": version,
        "champion": current.champion,
        "replaced": replaced,
        "reason": _reason(reason),
    }


def stop(client: MlflowClient, engine: Engine, settings: Settings, reason: str) -> dict[str, Any]:
    """End the parallel run: remove the challenger alias (audited ``shadow-stop``).

    Its shadow predictions stay in the store.

    Raises:
        RegistryError: no shadow challenger.
    """
    version = _running(client, settings)
    with engine.connect() as conn:
        answered = shadow_queries.count_shadow_predictions(conn, version)
    details = {"shadow_predictions": answered}
    promotion.point_challenger(client, engine, settings, None, _reason(reason), details=details)
    return {
        "action": promotion.SHADOW_STOP,
        "challenger": version,
        "shadow_predictions": answered,
        "reason": _reason(reason),
    }


def _running(client: MlflowClient, settings: Settings) -> str:
    version = challenger_version(client, settings)
    if version is None:
        raise RegistryError(
            f"model '{settings.model_name}' has no '{settings.challenger_alias}' version:"
            " no shadow run (start one with `triage-ml shadow start VERSION`)"
        )
    return version


def _reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise TriageError("a reason is required (--reason TEXT): it goes into the audit trail")
    return reason.strip()


def status(client: MlflowClient, engine: Engine, settings: Settings) -> dict[str, Any]:
    """The shadow challenger, since when, its answers, and the live comparison so far."""
    champion = registry.alias_version(client, settings.model_name, settings.champion_alias)
    version = challenger_version(client, settings)
    out: dict[str, Any] = {"model_name": settings.model_name, "champion": champion}
    if version is None:
        return {**out, "challenger": None}
    with engine.connect() as conn:
        since = shadow_queries.shadow_started(conn, settings.model_name, version)
        answered = shadow_queries.count_shadow_predictions(conn, version)
    comparison = None if champion is None else compare(engine, settings, champion, version)
    return {
        **out,
        "challenger": version,
        "since": since,
        "shadow_predictions": answered,
        "paired": None if comparison is None else comparison.paired,
        "labeled_rows": None if comparison is None else comparison.rows,
        "min_labels": settings.monitor.shadow_min_labels,
        "comparison": None if comparison is None else comparison.as_dict(),
    }


def compare(engine: Engine, settings: Settings, champion: str, challenger: str) -> LiveComparison:
    """Gate the challenger against the champion on the live rows both answered.

    Returns:
        The comparison; its decision is None while too few rows have a final label.
    """
    with engine.connect() as conn:
        paired = shadow_queries.paired_predictions(conn, champion, challenger)
        ids = paired["ticket_id"].tolist()
        tickets = shadow_queries.ticket_labels(conn, ids)
        feedback = shadow_queries.ticket_feedback(conn, ids)
    labels = dataset.final_labels(tickets, feedback) if ids else _no_labels()
    return judge(paired, labels, settings, champion, challenger)


def _no_labels() -> pd.DataFrame:
    return pd.DataFrame(columns=list(dataset.FINAL_COLUMNS), index=pd.Index([], name="ticket_id"))


def labeled_rows(paired: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The paired rows whose final category is known and not auto-applied, with ``final_*``.

    An auto-applied priority counts as unknown (``final_priority`` None): it
    is the champion's own answer, which would favour the champion.
    """
    final = labels.reindex(paired["ticket_id"].tolist())
    rows = paired.assign(
        final_category=final["category"].to_numpy(dtype=object),
        final_category_source=final["category_source"].to_numpy(dtype=object),
        final_priority=final["priority"].to_numpy(dtype=object),
        final_priority_source=final["priority_source"].to_numpy(dtype=object),
    )
    usable = rows["final_category"].notna() & (rows["final_category_source"] != AUTO_APPLIED)
    rows = rows[usable].reset_index(drop=True)
    trusted = rows["final_priority"].notna() & (rows["final_priority_source"] != AUTO_APPLIED)
    rows["final_priority"] = rows["final_priority"].where(trusted, None)
    return rows


def answers(rows: pd.DataFrame, side: str) -> pd.DataFrame:
    """One side's answers (``champion`` or ``challenger``) as a prediction frame."""
    return pd.DataFrame(
        {
            name: rows[f"{side}_{name}"].to_numpy(dtype=object)
            for name in shadow_queries.ANSWER_COLUMNS
        }
    ).astype({"category_proba": float})


def judge(
    paired: pd.DataFrame,
    labels: pd.DataFrame,
    settings: Settings,
    champion: str,
    challenger: str,
) -> LiveComparison:
    """The gate on live rows: :func:`registry.gate.decide` with both sides' live figures.

    Args:
        paired: both versions' answers (``store.shadow.paired_predictions``).
        labels: final labels by ticket id (``training.dataset.final_labels``).
        settings: the gate's thresholds, the priority levels and ``monitor.shadow_min_labels``.
        champion: the champion's version.
        challenger: the shadow challenger's version.
    """
    rows = labeled_rows(paired, labels)
    least = settings.monitor.shadow_min_labels
    common = {"champion": champion, "challenger": challenger, "paired": len(paired)}
    if len(rows) < least:
        message = f"not enough labeled live rows ({len(rows)} < {least})"
        return LiveComparison(
            **common, rows=len(rows), min_rows=least, decision=None, message=message
        )
    truth = pd.DataFrame(
        {"category": rows["final_category"].tolist(), "priority": rows["final_priority"].tolist()}
    )
    ours, theirs = answers(rows, "challenger"), answers(rows, "champion")
    levels = settings.priority_levels
    decision = gate.decide(
        eval_metrics.evaluate_predictions(ours, truth, levels),
        eval_metrics.evaluate_predictions(theirs, truth, levels),
        truth["category"].tolist(),
        ours["category"].tolist(),
        theirs["category"].tolist(),
        settings.gate,
        settings.train.seed,
    )
    return LiveComparison(**common, rows=len(rows), min_rows=least, decision=decision)


def promote(
    client: MlflowClient, engine: Engine, settings: Settings, comparison: LiveComparison
) -> dict[str, Any]:
    """Make the shadow challenger champion on live evidence: guarded, audited ``live-promotion``.

    The challenger alias is removed once the champion has moved.

    Raises:
        TriageError: the comparison does not promote (too few rows, or a check failed).
        RegistryError: the challenger alias moved since the comparison.
        promotion.ChampionMovedError: the champion moved since the comparison.
    """
    decision, version = comparison.decision, comparison.challenger
    if decision is None or not decision.promote:
        why = comparison.message if decision is None else decision.reason
        raise TriageError(f"version {version} is not promoted on live evidence: {why}")
    if challenger_version(client, settings) != version:
        raise RegistryError(
            f"version {version} is no longer the '{settings.challenger_alias}' of"
            f" '{settings.model_name}'; compare again"
        )
    reason = f"on {comparison.rows} labeled live rows: {decision.reason}"
    details = {**decision.as_dict(), "live_rows": comparison.rows, "paired": comparison.paired}
    before, after = promotion.guarded_move(
        engine,
        client,
        settings,
        comparison.champion,
        lambda seen: registry.promote_version(client, settings, version, seen),
        lambda seen, _: promotion.audit_row(
            settings, promotion.LIVE_PROMOTION, version, True, reason, None, seen.champion, details
        ),
        promotion.LIVE_PROMOTION,
    )
    promotion.tag_version(client, settings.model_name, version, "promoted", reason)
    # After the audited move: a crash before this line leaves the alias on the new champion,
    # which scoring never shadows and `shadow stop` removes.
    client.delete_registered_model_alias(settings.model_name, settings.challenger_alias)
    return {
        "action": promotion.LIVE_PROMOTION,
        "champion_before": before.champion,
        "champion": after.champion,
        "previous_champion": after.previous,
        "rows": comparison.rows,
        "reason": reason,
    }
