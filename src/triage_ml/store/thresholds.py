"""Per-class tier thresholds of a model version: held-out ones from training, live re-estimates.

One row per (version, class, tier). A class a tier is out of reach for is
stored with an infinite threshold (no confidence reaches it), because the
column is required and "unreachable" must override an older estimate. Both
SQLite and PostgreSQL (psycopg's ``'Infinity'::float8``) store infinity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from triage_ml.store.engine import utcnow
from triage_ml.store.tables import tier_thresholds

# The origins of a set of thresholds: out-of-fold predictions at training, or labeled live rows.
HELD_OUT, LIVE = "held-out", "live"


def write_thresholds(
    conn: Connection,
    model_version: str,
    thresholds: Mapping[str, Mapping[str, float | None]],
    source: str,
    rows: Mapping[str, int] | None = None,
    precision_low: Mapping[str, Mapping[str, float | None]] | None = None,
) -> int:
    """Replace ``model_version``'s thresholds for the classes and tiers ``thresholds`` names.

    Args:
        conn: a connection inside the caller's transaction.
        model_version: the registered version the thresholds are for.
        thresholds: ``{tier: {class: threshold or None}}`` (None: the tier is out of reach).
        source: ``"held-out"`` or ``"live"``.
        rows: labeled predictions of each class the estimate read.
        precision_low: ``{tier: {class: lower bound of precision}}`` at each threshold.

    Returns:
        The rows written.
    """
    rows, precision_low = rows or {}, precision_low or {}
    now = utcnow()
    records = [
        {
            "model_version": str(model_version),
            "category": str(category),
            "tier": tier,
            "threshold": math.inf if value is None else float(value),
            "precision_low": precision_low.get(tier, {}).get(category),
            "rows": int(rows.get(category, 0)),
            "source": source,
            "estimated_at": now,
        }
        for tier, classes in thresholds.items()
        for category, value in classes.items()
    ]
    for record in records:
        conn.execute(
            sa.delete(tier_thresholds).where(
                tier_thresholds.c.model_version == record["model_version"],
                tier_thresholds.c.category == record["category"],
                tier_thresholds.c.tier == record["tier"],
            )
        )
    if records:
        conn.execute(tier_thresholds.insert(), records)
    return len(records)


def latest_thresholds(
    conn: Connection, model_version: str, source: str | None = LIVE
) -> dict[str, dict[str, float | None]] | None:
    """The stored thresholds of ``model_version`` (of ``source``; of any when None).

    Returns:
        ``{tier: {class: threshold or None}}``, or None when none are stored.
    """
    query = sa.select(
        tier_thresholds.c.category, tier_thresholds.c.tier, tier_thresholds.c.threshold
    ).where(tier_thresholds.c.model_version == str(model_version))
    if source is not None:
        query = query.where(tier_thresholds.c.source == source)
    found = conn.execute(query).all()
    if not found:
        return None
    out: dict[str, dict[str, float | None]] = {}
    for category, tier, threshold in found:
        out.setdefault(tier, {})[category] = None if math.isinf(threshold) else float(threshold)
    return out


def threshold_rows(conn: Connection, model_version: str) -> list[dict[str, Any]]:
    """Every stored threshold of ``model_version`` with its bound, rows, source and date."""
    query = (
        sa.select(tier_thresholds)
        .where(tier_thresholds.c.model_version == str(model_version))
        .order_by(tier_thresholds.c.category, tier_thresholds.c.tier)
    )
    return [
        {**row, "threshold": None if math.isinf(row["threshold"]) else row["threshold"]}
        for row in conn.execute(query).mappings()
    ]
