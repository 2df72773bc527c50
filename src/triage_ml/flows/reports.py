"""The Prefect markdown artifacts the flows publish: decisions, alias moves, ingest and inbox runs.

The CLI's text versions of the same results are in ``triage_ml.cli.render``.
"""

from __future__ import annotations

from typing import Any

HEADLINE_METRICS: tuple[str, ...] = (
    "category_macro_f1",
    "category_accuracy",
    "category_top2_accuracy",
    "category_ece",
    "priority_macro_f1",
    "priority_urgent_recall",
)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else str(value))


def decision_markdown(record: dict[str, Any]) -> str:
    """A table of champion vs challenger, deltas, interval and each check."""
    challenger, champion = record["challenger"], record.get("champion") or {}
    lines = [
        f"### Promotion decision: {'PROMOTED' if record['promote'] else 'rejected'}",
        "",
        f"{record['reason']}",
        "",
        f"challenger version {record['challenger_version']}, "
        f"champion before {record['champion_version']}",
        "",
        "| metric | challenger | champion | delta |",
        "|---|---|---|---|",
    ]
    for key in HEADLINE_METRICS:
        if key in challenger:
            before = champion.get(key)
            delta = None if before is None else challenger[key] - before
            lines.append(f"| {key} | {_fmt(challenger[key])} | {_fmt(before)} | {_fmt(delta)} |")
    if record.get("interval"):
        low, high = record["interval"]
        lines += [
            "",
            f"Paired bootstrap interval of the macro-F1 gain: [{low:+.4f}, {high:+.4f}]",
        ]
    lines += ["", "| check | passed | detail |", "|---|---|---|"]
    lines += [
        f"| {c['name']} | {'yes' if c['passed'] else 'NO'} | {c['detail']} |"
        for c in record["checks"]
    ]
    return "\n".join(lines)


def alias_move_markdown(result: dict[str, Any]) -> str:
    """A rollback or forced promotion, as the audit trail records it."""
    return "\n".join(
        [
            f"### Champion {result['action']}",
            "",
            "| champion before | champion now | previous-champion now |",
            "|---|---|---|",
            f"| {_fmt(result['champion_before'])} | {_fmt(result['champion'])} "
            f"| {_fmt(result['previous_champion'])} |",
            "",
            f"Reason: {result['reason']}",
        ]
    )


def ingest_markdown(summary: dict[str, Any]) -> str:
    """Counts, batch-validation verdict and Data Docs location of one ingest batch."""
    failures = "".join(f"\n- {line}" for line in summary.get("batch_failures", []))
    verdict = f"**{summary['status']}**"
    if failures:
        accept = f"`triage-ml batches accept {summary['batch_id']}`"
        verdict += f": left out of training until accepted ({accept}){failures}"
    return "\n".join(
        [
            f"### Ingest {summary['kind']}",
            "",
            "| read | stored | quarantined | skipped |",
            "|---|---|---|---|",
            f"| {summary['read']} | {summary['stored']} | {summary['quarantined']} "
            f"| {summary['skipped']} |",
            "",
            f"Batch validation: {verdict}",
            "",
            f"Data Docs: `{summary.get('data_docs')}`",
            "",
            f"source `{summary['source']}`, batch `{summary['batch_id']}`",
        ]
    )


def inbox_markdown(report: dict[str, Any]) -> str:
    """One line per file the inbox drain processed or failed."""
    if not report["files"]:
        return "### Inbox\n\nNo new files."
    lines = ["### Inbox", "", "| kind | file | outcome |", "|---|---|---|"]
    lines += [
        f"| {item['kind']} | `{item['file']}` | {item['status']}: stored {item['stored']}, "
        f"quarantined {item['quarantined']}, skipped {item['skipped']} |"
        for item in report["processed"]
    ]
    lines += [
        f"| {item['kind']} | `{item['file']}` | failed: {item['reason']} |"
        for item in report["failed"]
    ]
    return "\n".join(lines)


def candidates_table(pool: list[Any], chosen: str) -> list[dict[str, Any]]:
    """One row per cross-validated candidate (``selection.Scored``): its figures, and the choice."""
    return [
        {
            "name": scored.name,
            "CV macro-F1": round(scored.mean, 4),
            "standard error": round(scored.standard_error, 4),
            "folds": len(scored.fold_scores),
            "chosen": "yes" if scored.name == chosen else "",
        }
        for scored in pool
    ]


def inbox_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per file the inbox drain processed or failed."""
    counts = ("stored", "quarantined", "skipped")
    rows = [
        {"kind": item["kind"], "file": item["file"], "outcome": item["status"]}
        | {name: item[name] for name in counts}
        | {"reason": ""}
        for item in report["processed"]
    ]
    rows += [
        {"kind": item["kind"], "file": item["file"], "outcome": "failed"}
        | dict.fromkeys(counts, 0)
        | {"reason": item["reason"]}
        for item in report["failed"]
    ]
    return rows


def scoring_table(parts: list[Any], ranges: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """One row per scored partition (``batch.ScoreSummary``) and its key range, then the total."""
    rows = [
        {
            "partition": f"({after or 'start'}, {upto or 'end'}]",
            "scored": part.scored,
            "needs review": part.needs_review,
            "chunks": part.chunks,
        }
        for part, (after, upto) in zip(parts, ranges, strict=True)
    ]
    total = {name: sum(row[name] for row in rows) for name in ("scored", "needs review", "chunks")}
    return [*rows, {"partition": "all", **total}]
