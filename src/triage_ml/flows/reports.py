"""Human-readable summaries: Prefect markdown artifacts and CLI text."""

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
        f"challenger version {record['challenger_version']}, champion before {record['champion_version']}",
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
        lines += ["", f"Paired bootstrap interval of the macro-F1 gain: [{low:+.4f}, {high:+.4f}]"]
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
            f"| {_fmt(result['champion_before'])} | {_fmt(result['champion'])} | {_fmt(result['previous_champion'])} |",
            "",
            f"Reason: {result['reason']}",
        ]
    )


def metrics_line(metrics: dict[str, Any]) -> str:
    """The headline metrics on one line."""
    return ", ".join(f"{k}={_fmt(metrics[k])}" for k in HEADLINE_METRICS if k in metrics)


def ingest_markdown(summary: dict[str, Any]) -> str:
    """Counts, batch-validation verdict and Data Docs location of one ingest batch."""
    failures = "".join(f"\n- {line}" for line in summary.get("batch_failures", []))
    verdict = f"**{summary['status']}**"
    if failures:
        verdict += f": left out of training until accepted (`triage-ml batches accept {summary['batch_id']}`){failures}"
    return "\n".join(
        [
            f"### Ingest {summary['kind']}",
            "",
            "| read | stored | quarantined | skipped |",
            "|---|---|---|---|",
            f"| {summary['read']} | {summary['stored']} | {summary['quarantined']} | {summary['skipped']} |",
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
        f"| {item['kind']} | `{item['file']}` | {item['status']}: stored {item['stored']}, quarantined "
        f"{item['quarantined']}, skipped {item['skipped']} |"
        for item in report["processed"]
    ]
    lines += [
        f"| {item['kind']} | `{item['file']}` | failed: {item['reason']} |"
        for item in report["failed"]
    ]
    return "\n".join(lines)


def deploy_text(result: dict[str, Any]) -> str:
    """What ``triage-ml deploy`` registered, with each deployment's schedule and next runs."""
    pool = result["work_pool"]
    lines = [
        f"registered on {result['api_url']}:",
        f"  work pool {pool['name']} ({pool['type']}, concurrency limit {pool['concurrency_limit'] or 'none'})",
    ]
    for item in result["deployments"]:
        lines.append(
            f"  deployment {item['name']}: {item['entrypoint']}, at most {item['concurrency_limit']} run(s) "
            f"at once ({item['collision_strategy']})"
        )
        for when in item["schedules"]:
            rule = (
                f"cron {when['cron']}" if "cron" in when else f"every {when['interval'] / 60:g} min"
            )
            lines.append(f"    {rule} ({when['timezone']}); next: {', '.join(when['next_runs'])}")
    lines.append(f"start a worker: prefect worker start --pool {pool['name']}")
    return "\n".join(lines)


def ingest_text(summary: dict[str, Any]) -> str:
    """The plain-text ingest summary the CLI prints."""
    lines = [
        f"ingest {summary['kind']}: read {summary['read']}, stored {summary['stored']}, "
        f"quarantined {summary['quarantined']}, skipped {summary['skipped']} (batch {summary['batch_id']})"
    ]
    if summary.get("batch_failures"):
        lines.append(
            f"batch BLOCKED from training (accept with `triage-ml batches accept {summary['batch_id']}`):"
        )
        lines += [f"  - {line}" for line in summary["batch_failures"]]
    if summary.get("quarantined"):
        lines.append(
            f"see the rejected rows with `triage-ml quarantine list --batch {summary['batch_id']}`"
        )
    if summary.get("data_docs"):
        lines.append(f"Data Docs: {summary['data_docs']}")
    return "\n".join(lines)
