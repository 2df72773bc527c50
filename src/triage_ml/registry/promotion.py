"""Who is champion: the gate on the same rows, guarded alias moves, rollback and override.

Every move of the champion alias goes through :func:`guarded_move`, in three
steps that a restart can always finish or undo:

1. under the store's alias lock, check that the champion is still the version
   the caller saw (compare-and-set) and commit an *intent*: the aliases before
   the move and the process that makes it;
2. move the aliases in MLflow;
3. commit the audit row and close the intent, in one transaction.

A failure in step 2 or 3 puts the aliases back and closes the intent as
undone. A process killed in between leaves a pending intent whose owner is
dead: the next guarded move, and :mod:`triage_ml.registry.reconcile`, put the
aliases back where the intent says and audit it. Two retrainings that finish
at once therefore cannot both promote, and the audit table never disagrees
with the registry for longer than it takes the next command to start.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.engine import Connection, Engine

from triage_ml import registry, store
from triage_ml.errors import RegistryError, TriageError
from triage_ml.registry import gate, lineage, owners
from triage_ml.settings import Settings
from triage_ml.training import fit
from triage_ml.training import metrics as eval_metrics

# The audit table's ``action`` values. ``champion_version`` is the champion
# before the action, ``challenger_version`` the version the action is about,
# and ``promoted`` says whether the champion alias moved.
GATE, ROLLBACK, FORCED, REVERTED, ABORTED = "gate", "rollback", "force-promote", "revert", "aborted"
# The parallel run's actions: the challenger alias set or removed (the champion stays), and
# a shadow challenger made champion on live evidence.
SHADOW_START, SHADOW_STOP, LIVE_PROMOTION = "shadow-start", "shadow-stop", "live-promotion"
# How a gate decision that passed but started a shadow run instead (gate.on_pass = "shadow")
# begins its reason, beside "promoted: " and "rejected: ".
SHADOW_PREFIX = "shadow: "
# How long a guarded move waits for another live process's move to finish.
CLAIM_WAIT_SECONDS = 120.0
# Test hook: TRIAGE_TEST_KILL_AT=<step> makes this process SIGKILL itself at that
# step, so the crash tests can kill a real process exactly there. Read once.
KILL_AT_VARIABLE = "TRIAGE_TEST_KILL_AT"
AFTER_REGISTER, AFTER_INTENT, AFTER_ALIAS, AFTER_AUDIT = (
    "after-register",
    "after-intent",
    "after-alias",
    "after-audit",
)
UNDONE_WHY = "the process moving the aliases died before auditing the move; aliases put back"
UNDONE_SHADOW_WHY = "the retraining failed after this version became the shadow challenger"


@functools.cache
def _kill_step() -> str | None:
    return os.environ.get(KILL_AT_VARIABLE) or None


def crash_point(step: str) -> None:
    """Test hook: die by SIGKILL here when ``TRIAGE_TEST_KILL_AT`` names ``step``.

    Nothing in production sets the variable; the crash-recovery tests set it on
    a ``triage-ml`` subprocess to kill it between two steps of a promotion.
    """
    if _kill_step() == step:
        os.kill(os.getpid(), signal.SIGKILL)


class ChampionMovedError(RegistryError):
    """The champion alias moved after the caller looked at it."""

    def __init__(self, expected: str | None, current: str | None) -> None:
        super().__init__(
            f"champion moved from {expected} to {current} since the evaluation started"
        )


@dataclass(frozen=True)
class ChampionOnTest:
    """The current champion scored on the test rows it never trained on (None without one).

    ``unseen`` marks those rows among the run's test rows; ``metrics`` and
    ``predictions`` cover only them (None when there are none).
    """

    version: str | None = None
    metrics: dict[str, float] | None = None
    predictions: pd.DataFrame | None = None
    unseen: np.ndarray | None = None


def actor() -> str:
    """Who is acting, for the audit trail."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def evaluate_champion(
    client: MlflowClient, settings: Settings, test: pd.DataFrame
) -> ChampionOnTest:
    """Score the current champion on this run's test rows that it never trained on.

    Never stored figures: both models are scored now, on the same rows.
    """
    loaded = registry.load_champion(client, settings)
    if loaded is None:
        return ChampionOnTest()
    model, version = loaded
    unseen = lineage.trained_on(client, settings.model_name, version).unseen(test)
    if not unseen.any():
        return ChampionOnTest(version, unseen=unseen)
    figures, predictions = fit.evaluate(model, test[unseen], settings.priority_levels)
    return ChampionOnTest(version, figures, predictions, unseen)


def judge(
    metrics: dict[str, float],
    predictions: pd.DataFrame,
    champion: ChampionOnTest,
    test: pd.DataFrame,
    settings: Settings,
) -> gate.Decision:
    """Run the gate on the challenger's and champion's predictions of the same unseen rows.

    ``metrics`` and ``predictions`` are the challenger's on all of ``test``;
    with a champion, both are judged on the rows it never trained on.
    """
    if champion.version is None:
        truth = test["category"].tolist()
        return gate.decide(
            metrics, None, truth, predictions["category"].tolist(), None, settings.gate
        )
    assert champion.unseen is not None  # set whenever there is a champion
    count = int(champion.unseen.sum())
    if count < settings.gate.min_unseen_rows or champion.predictions is None:
        return gate.too_few_unseen(metrics, count, len(test), champion.version, settings.gate)
    rows = test[champion.unseen].reset_index(drop=True)
    ours = predictions[champion.unseen].reset_index(drop=True)
    return gate.decide(
        eval_metrics.evaluate_predictions(ours, rows, settings.priority_levels),
        champion.metrics,
        rows["category"].tolist(),
        ours["category"].tolist(),
        champion.predictions["category"].tolist(),
        settings.gate,
        settings.train.seed,
        gain_judged_live=settings.gate.on_pass == "shadow",
        heads=settings.heads,
    )


def guarded_move(
    engine: Engine,
    client: MlflowClient,
    settings: Settings,
    expected: str | None,
    move: Callable[[registry.Aliases], registry.Aliases],
    audit: Callable[[registry.Aliases, registry.Aliases], dict[str, Any]],
    action: str = "move",
) -> tuple[registry.Aliases, registry.Aliases]:
    """Move aliases only if the champion is still ``expected``, and audit the move, all or nothing.

    ``action`` names the move in its intent (the audit row's action).

    Returns:
        The aliases before and after the move.

    Raises:
        ChampionMovedError: the champion is no longer ``expected``; nothing changed.
        RegistryError: another process's move did not finish in time; nothing changed.
    """
    intent_id, before = claim_move(engine, client, settings, expected, action)
    crash_point(AFTER_INTENT)
    try:
        after = move(before)
        crash_point(AFTER_ALIAS)
        with engine.begin() as conn:
            store.record_decision(conn, audit(before, after))
            store.close_intent(conn, intent_id, store.DONE)
    except BaseException:
        registry.restore_aliases(client, settings, before)
        with engine.begin() as conn:
            store.close_intent(conn, intent_id, store.UNDONE)
        raise
    crash_point(AFTER_AUDIT)
    return before, after


def claim_move(
    engine: Engine, client: MlflowClient, settings: Settings, expected: str | None, action: str
) -> tuple[int, registry.Aliases]:
    """Commit the intent of a move once no other live move is pending and the champion is
    still ``expected``; a dead process's pending move is undone first.

    Returns:
        The intent's id and the aliases before the move.

    Raises:
        ChampionMovedError: the champion is no longer ``expected``.
        RegistryError: another process's move is still pending after the wait.
    """
    deadline = time.monotonic() + CLAIM_WAIT_SECONDS
    while True:
        with engine.connect() as conn, conn.begin():
            store.lock_aliases(engine, conn, settings.model_name)
            pending = store.pending_intents(conn, settings.model_name)
            live = [i for i in pending if intent_alive(i)]
            if not live:
                if pending:
                    settle_dead_intents(conn, client, settings, pending)
                    continue  # commit what was put back, then look again
                current = registry.aliases(client, settings)
                if current.champion != expected:
                    raise ChampionMovedError(expected, current.champion)
                return _write_intent(conn, settings, action, current), current
        if time.monotonic() > deadline:
            raise RegistryError(
                f"another alias move of '{settings.model_name}' ({live[0]['owner']}) is still"
                f" pending after {CLAIM_WAIT_SECONDS:.0f} s; try again later"
            )
        time.sleep(0.2)


def _write_intent(
    conn: Connection, settings: Settings, action: str, before: registry.Aliases
) -> int:
    return store.write_intent(
        conn,
        {
            "model_name": settings.model_name,
            "action": action,
            "owner": owners.current_owner(),
            "before_champion": before.champion,
            "before_previous": before.previous,
        },
    )


def intent_alive(intent: dict[str, Any]) -> bool:
    """Whether the process that wrote a pending intent may still finish its move."""
    return owners.owner_alive(intent["owner"], intent["started_at"], owners.MOVE_LEASE)


def settle_dead_intents(
    conn: Connection, client: MlflowClient, settings: Settings, pending: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Undo the pending moves of dead processes: aliases back to ``before``, audited.

    The caller holds the alias lock in ``conn``'s transaction, and commits it.

    Returns:
        One record per intent: its id, owner, and whether the aliases had moved.
    """
    settled = []
    for intent in pending:
        before = registry.Aliases(intent["before_champion"], intent["before_previous"])
        now = registry.aliases(client, settings)
        moved = now != before
        if moved:
            registry.restore_aliases(client, settings, before)
            row = audit_row(
                settings, REVERTED, before.champion, True, UNDONE_WHY, champion=now.champion
            )
            store.record_decision(conn, {**row, "details": _with_owner(row, intent)})
        store.close_intent(conn, intent["id"], store.UNDONE)
        settled.append({"intent": intent["id"], "owner": intent["owner"], "moved": moved})
    return settled


def _with_owner(row: dict[str, Any], intent: dict[str, Any]) -> str:
    details = json.loads(row["details"])
    return json.dumps({**details, "dead_owner": intent["owner"], "intent": intent["id"]})


def audit_row(
    settings: Settings,
    action: str,
    version: str | None,
    promoted: bool,
    reason: str,
    run_id: str | None = None,
    champion: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One row of the audit table (see the action names above)."""
    return {
        "model_name": settings.model_name,
        "action": action,
        "run_id": run_id,
        "challenger_version": version,
        "champion_version": champion,
        "promoted": promoted,
        "reason": reason,
        "details": json.dumps({"actor": actor(), **(details or {})}, default=str),
    }


def _record(engine: Engine, row: dict[str, Any]) -> None:
    """Write an audit row that moves no alias (so needs no alias lock)."""
    with engine.begin() as conn:
        store.record_decision(conn, row)


def apply_decision(
    client: MlflowClient,
    engine: Engine,
    settings: Settings,
    decision: gate.Decision,
    registered: registry.RegisteredModel,
    champion_version: str | None,
) -> tuple[gate.Decision, registry.Aliases | None]:
    """Promote (guarded) or reject, audit either way, and tag the version with the outcome.

    A promotion whose compare-and-set fails becomes a rejection that says why.
    With ``gate.on_pass == "shadow"`` and a champion to run beside, a passing
    challenger takes the challenger alias instead (see :func:`shadow_instead`).

    Returns:
        The final decision, and the aliases before the move when the alias moved.
    """
    if decision.promote and champion_version is not None and settings.gate.on_pass == "shadow":
        shadowed = shadow_instead(client, engine, settings, decision, registered, champion_version)
        return shadowed, None
    moved_from = None
    if decision.promote:
        try:
            moved_from = promote_challenger(
                client, engine, settings, decision, registered, champion_version
            )
        except ChampionMovedError as moved:
            decision = replace(decision, promote=False, reason=f"rejected: {moved}")
    if not decision.promote:
        _record(engine, _gate_audit(settings, decision, registered, champion_version))
    tag_version(client, registered.name, registered.version, outcome(decision), decision.reason)
    return decision, moved_from


def outcome(decision: gate.Decision) -> str:
    """What a gate decision did to its version: ``promoted``, ``shadow`` or ``rejected``."""
    if decision.promote:
        return "promoted"
    return "shadow" if decision.reason.startswith(SHADOW_PREFIX) else "rejected"


def shadow_instead(
    client: MlflowClient,
    engine: Engine,
    settings: Settings,
    decision: gate.Decision,
    registered: registry.RegisteredModel,
    champion_version: str,
) -> gate.Decision:
    """A passing challenger becomes the shadow challenger, not champion (``gate.on_pass``).

    The gate's audit row says it passed and why the champion stayed; a
    ``shadow-start`` row follows, and the challenger alias replaces any earlier one.

    Returns:
        The decision, not promoting, its reason starting with :data:`SHADOW_PREFIX`.
    """
    alias = settings.challenger_alias
    reason = (
        f"{SHADOW_PREFIX}passed the gate ({decision.reason}); version {registered.version} runs"
        f" beside champion version {champion_version} as '{alias}' until live evidence"
        " promotes it (gate.on_pass = shadow)"
    )
    shadowed = replace(decision, promote=False, reason=reason)
    _record(engine, _gate_audit(settings, shadowed, registered, champion_version))
    point_challenger(client, engine, settings, registered.version, reason, registered.run_id)
    tag_version(client, registered.name, registered.version, outcome(shadowed), reason)
    return shadowed


def point_challenger(
    client: MlflowClient,
    engine: Engine,
    settings: Settings,
    version: str | None,
    reason: str,
    run_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> str | None:
    """Point the challenger alias at ``version`` (None: remove it), audited, under the alias lock.

    The audit row (``shadow-start``, or ``shadow-stop`` for None) is written in
    the lock's transaction before the alias moves, so a failed move leaves no row.

    Returns:
        The version the alias pointed at before (None: it was unset).
    """
    name, alias = settings.model_name, settings.challenger_alias
    with engine.connect() as conn, conn.begin():
        store.lock_aliases(engine, conn, name)
        before = registry.alias_version(client, name, alias)
        champion = registry.alias_version(client, name, settings.champion_alias)
        action = SHADOW_START if version is not None else SHADOW_STOP
        about = version if version is not None else before
        extra = {**(details or {}), "challenger_before": before}
        store.record_decision(
            conn, audit_row(settings, action, about, False, reason, run_id, champion, extra)
        )
        if version is None:
            client.delete_registered_model_alias(name, alias)
        else:
            client.set_registered_model_alias(name, alias, version)
    return before


def promote_challenger(
    client: MlflowClient,
    engine: Engine,
    settings: Settings,
    decision: gate.Decision,
    registered: registry.RegisteredModel,
    champion_version: str | None,
) -> registry.Aliases:
    """Make the registered challenger champion under the guard, with the gate's audit row.

    Returns:
        The aliases before the move.

    Raises:
        ChampionMovedError: the champion is no longer ``champion_version``; nothing changed.
    """
    before, _ = guarded_move(
        engine,
        client,
        settings,
        champion_version,
        lambda seen: registry.promote_version(client, settings, registered.version, seen),
        lambda seen, _: _gate_audit(settings, decision, registered, seen.champion),
        GATE,
    )
    return before


def _gate_audit(
    settings: Settings,
    decision: gate.Decision,
    registered: registry.RegisteredModel,
    champion: str | None,
) -> dict[str, Any]:
    """The audit row of a gate decision about ``registered``."""
    return audit_row(
        settings,
        GATE,
        registered.version,
        decision.promote,
        decision.reason,
        registered.run_id,
        champion,
        decision.as_dict(),
    )


def tag_version(client: MlflowClient, name: str, version: str, outcome: str, reason: str) -> None:
    """Say on the model version what happened to it and why (visible in the MLflow UI)."""
    client.set_model_version_tag(name, version, "promotion.decision", outcome)
    client.set_model_version_tag(name, version, "promotion.reason", reason[:5000])


def log_decision(
    decision: gate.Decision,
    registered: registry.RegisteredModel,
    champion_version: str | None,
    settings: Settings,
) -> dict[str, Any]:
    """Put the decision on the retrain run: tags, champion metrics, JSON of every threshold.

    What goes to MLflow is for people comparing runs, so its figures are
    rounded to :data:`gate.PLACES` places. The returned record, and the audit
    row :func:`apply_decision` writes, keep them unrounded: a check decided
    on a margin smaller than the rounding (a drop of 0.01000001 against a
    tolerance of 0.01) can only be re-checked from the raw figures.
    """
    record = {
        **decision.as_dict(),
        "challenger_version": registered.version,
        "champion_version": champion_version,
        "gate": settings.gate.model_dump(),
    }
    mlflow.log_dict(gate.rounded(record), "promotion/decision.json")
    mlflow.set_tags(
        {
            "promotion.decision": outcome(decision),
            "promotion.reason": decision.reason[:5000],
            "promotion.challenger_version": registered.version,
            "promotion.champion_version": str(champion_version),
        }
    )
    if decision.champion:
        mlflow.log_metrics(gate.rounded({f"champion.{k}": v for k, v in decision.champion.items()}))
    return record


def revert_promotion(
    client: MlflowClient,
    engine: Engine,
    settings: Settings,
    version: str,
    before: registry.Aliases,
    why: str,
) -> None:
    """Undo a promotion of ``version`` whose retraining failed afterwards, if still champion."""

    def restore(_: registry.Aliases) -> registry.Aliases:
        registry.restore_aliases(client, settings, before)
        return before

    guarded_move(
        engine,
        client,
        settings,
        version,
        restore,
        lambda _, after: audit_row(settings, REVERTED, after.champion, True, why, champion=version),
        REVERTED,
    )
    tag_version(client, settings.model_name, version, ABORTED, why)


def revert_shadow(client: MlflowClient, engine: Engine, settings: Settings, version: str) -> None:
    """Remove the challenger alias of a version whose retraining failed after it was set."""
    if registry.alias_version(client, settings.model_name, settings.challenger_alias) == version:
        point_challenger(client, engine, settings, None, UNDONE_SHADOW_WHY)


def record_aborted(
    client: MlflowClient,
    engine: Engine,
    settings: Settings,
    registered: registry.RegisteredModel,
    why: str,
) -> None:
    """A registered challenger whose retraining failed before a decision: tag and audit it."""
    tag_version(client, registered.name, registered.version, ABORTED, why)
    _record(engine, audit_row(settings, ABORTED, registered.version, False, why, registered.run_id))


def roll_back(
    client: MlflowClient, engine: Engine, settings: Settings, reason: str
) -> dict[str, Any]:
    """Point champion back at the previous champion in one guarded, audited step.

    Raises:
        RegistryError: no champion, or no previous champion to go back to.
    """
    reason = _required_reason(reason)
    current = registry.aliases(client, settings)
    if current.champion is None:
        raise RegistryError(f"model '{settings.model_name}' has no champion to roll back")
    before, after = guarded_move(
        engine,
        client,
        settings,
        current.champion,
        lambda seen: registry.roll_back(client, settings, seen),
        lambda seen, now: audit_row(
            settings, ROLLBACK, now.champion, True, reason, champion=seen.champion
        ),
        ROLLBACK,
    )
    tag_version(client, settings.model_name, str(before.champion), "rolled-back", reason)
    return {
        "action": ROLLBACK,
        "champion_before": before.champion,
        "champion": after.champion,
        "previous_champion": after.previous,
        "reason": reason,
    }


def force_promote(
    client: MlflowClient, engine: Engine, settings: Settings, version: str, reason: str
) -> dict[str, Any]:
    """Make ``version`` champion without the gate: a human override, audited.

    Raises:
        RegistryError: no such version, or it is the champion already.
    """
    reason = _required_reason(reason)
    try:
        client.get_model_version(settings.model_name, version)
    except MlflowException:
        raise RegistryError(f"model '{settings.model_name}' has no version {version}") from None
    current = registry.aliases(client, settings)
    if current.champion == version:
        raise RegistryError(f"version {version} is already the champion of '{settings.model_name}'")
    before, after = guarded_move(
        engine,
        client,
        settings,
        current.champion,
        lambda seen: registry.promote_version(client, settings, version, seen),
        lambda seen, _: audit_row(settings, FORCED, version, True, reason, champion=seen.champion),
        FORCED,
    )
    tag_version(client, settings.model_name, version, "force-promoted", reason)
    return {
        "action": FORCED,
        "champion_before": before.champion,
        "champion": after.champion,
        "previous_champion": after.previous,
        "reason": reason,
    }


def _required_reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise TriageError("a reason is required (--reason TEXT): it goes into the audit trail")
    return reason.strip()
