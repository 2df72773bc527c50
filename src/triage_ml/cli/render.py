"""Readable text for every command's result: rich tables, rounded figures, local times.

Each function takes the dict a command returns with ``--json`` and gives
what rich prints without it; none of them changes or computes a result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from triage_ml.flows.reports import HEADLINE_METRICS

# ---- small formatters -----------------------------------------------------


def figure(value: Any, digits: int = 3) -> str:
    """A float rounded to ``digits`` places, a missing value as ``-``, anything else as text."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def local_time(value: Any) -> str:
    """A store timestamp (naive UTC), an ISO string or epoch milliseconds, in the local timezone."""
    if value is None or value == "":
        return "-"
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value / 1000, UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    """A rich table of text cells (rich would read ``[...]`` in a cell as markup)."""
    out = Table(title=title, title_justify="left")
    for index, name in enumerate(columns):
        # The first column names the row (a batch id, a metric): wrapping it would hide it.
        out.add_column(name, no_wrap=index == 0)
    for row in rows:
        out.add_row(*(Text(figure(cell)) for cell in row))
    return out


def lines(*texts: str) -> Group:
    """Plain lines, never read as rich markup."""
    return Group(*(Text(line) for line in texts))


def metrics_table(title: str, columns: Mapping[str, Mapping[str, Any] | None]) -> Table:
    """The headline metrics side by side, one column per model."""
    present = [k for k in HEADLINE_METRICS if any(k in (m or {}) for m in columns.values())]
    return table(
        title,
        ["metric", *columns],
        ([key, *((m or {}).get(key) for m in columns.values())] for key in present),
    )


# ---- data -------------------------------------------------------------------


def generate(result: dict[str, Any]) -> Group:
    """What ``generate`` wrote."""
    return Group(
        Text(
            f"generated {result['tickets']} tickets, {result['feedback']} feedback rows, "
            f"{result['surveys']} surveys and {result['new_tickets']} new tickets"
        ),
        table(None, ["data", "file"], result["files"].items()),
    )


def ingest(summary: dict[str, Any]) -> Group:
    """Counts, batch verdict and where to look next for one ingest batch."""
    out = [
        f"ingest {summary['kind']}: read {summary['read']}, stored {summary['stored']}, "
        f"quarantined {summary['quarantined']}, skipped {summary['skipped']} "
        f"(batch {summary['batch_id']})"
    ]
    if summary.get("batch_failures"):
        out.append(
            f"batch BLOCKED from training (accept with "
            f"`triage-ml batches accept {summary['batch_id']} --reason TEXT`):"
        )
        out += [f"  - {line}" for line in summary["batch_failures"]]
    if summary.get("quarantined"):
        out.append(
            f"see the rejected rows with `triage-ml quarantine list --batch {summary['batch_id']}`"
        )
    if summary.get("data_docs"):
        out.append(f"Data Docs: {summary['data_docs']}")
    return lines(*out)


def batches(result: dict[str, Any]) -> Table | Text:
    """The newest ingest batches, one row each."""
    if not result["batches"]:
        return Text("no ingest batches yet")
    return table(
        "ingest batches, newest first (rows read / stored / quarantined / skipped)",
        ["batch", "kind", "status", "rows", "failures", "at"],
        (
            [
                b["batch_id"],
                b["kind"],
                b["status"],
                f"{b['rows_read']} / {b['rows_stored']} / {b['rows_quarantined']} / "
                f"{b['rows_skipped']}",
                len(b.get("failures") or []),
                local_time(b["created_at"]),
            ]
            for b in result["batches"]
        ),
    )


def batch_accepted(result: dict[str, Any]) -> Text:
    """A blocked batch let into training."""
    return Text(
        f"batch {result['batch_id']} is now {result['status']} (reason: {result['reason']})"
    )


def quarantine_list(result: dict[str, Any]) -> Table | Text:
    """Quarantined rows with their reasons."""
    if not result["records"]:
        return Text("no quarantined rows")
    return table(
        "quarantined rows (newest first)",
        ["id", "batch", "kind", "row", "reasons", "at", "released"],
        (
            [
                r["id"],
                r["batch_id"],
                r["kind"],
                r["row_number"],
                "; ".join(map(str, r["reasons"])),
                local_time(r["created_at"]),
                local_time(r["released_at"]) if r.get("released_at") else "-",
            ]
            for r in result["records"]
        ),
    )


def quarantine_record(record: dict[str, Any]) -> Group:
    """One quarantined row: where it came from, why it was rejected, its raw values."""
    return Group(
        Text(
            f"record {record['id']} of batch {record['batch_id']} ({record['kind']}, "
            f"row {figure(record.get('row_number'))}), "
            f"quarantined {local_time(record['created_at'])}"
        ),
        lines(*(f"  - {reason}" for reason in record["reasons"])),
        table("raw row", ["column", "value"], record["raw"].items()),
    )


def quarantine_export(result: dict[str, Any]) -> Text:
    """Where the exported rows went."""
    return Text(
        f"exported {result['exported']} rows to {result['file']}; fix them, then "
        f"`triage-ml quarantine release --file {result['file']}`"
    )


def quarantine_release(result: dict[str, Any]) -> Group:
    """What a release re-ingested, per batch."""
    parts: list[Any] = [
        Text(f"released {result['released']}, still failing {result['still_failing']}"),
        table(
            None,
            ["new batch", "released", "still failing", "stored", "skipped", "status"],
            (
                [
                    b["batch_id"],
                    b["released"],
                    b["still_failing"],
                    b["stored"],
                    b["skipped"],
                    b.get("status", "-"),
                ]
                for b in result["batches"]
            ),
        ),
    ]
    for batch in result["batches"]:
        if batch.get("status") == "blocked":
            parts.append(
                Text(
                    f"batch {batch['batch_id']} is blocked from training "
                    f"({'; '.join(batch.get('batch_failures') or [])}); let it in with "
                    f"`triage-ml batches accept {batch['batch_id']} --reason TEXT`"
                )
            )
    return Group(*parts)


# ---- models ---------------------------------------------------------------------


def retrain(result: dict[str, Any]) -> Group:
    """The promotion decision with the challenger's and champion's headline metrics."""
    verdict = "promoted" if result["promoted"] else "not promoted"
    parts: list[Any] = [
        Text(
            f"candidate {result['candidate']} -> version {result['challenger_version']}: "
            f"{verdict} ({result['reason']})"
        ),
        Text(
            f"champion: version {figure(result['champion_version_before'])} -> "
            f"{figure(result['champion_version'])} (run {result['run_id']})"
        ),
        metrics_table(
            "test metrics",
            {"challenger": result["challenger_metrics"], "champion": result["champion_metrics"]},
        ),
    ]
    if result.get("interval"):
        low, high = result["interval"]
        parts.append(Text(f"bootstrap interval of the macro-F1 gain: [{low:+.4f}, {high:+.4f}]"))
    return Group(*parts)


def evaluate(result: dict[str, Any]) -> Group:
    """Metrics of a registered model on a labeled file, category and priority side by side."""
    names = sorted(set(result["category"]) | set(result.get("priority", {})))
    parts = [
        Text(
            f"model version {result['model_version']} on {result['n']} rows "
            f"({result['rejected_rows']} rows rejected by the contract)"
        ),
        table(
            None,
            ["metric", "category", "priority"],
            (
                [name, result["category"].get(name), result.get("priority", {}).get(name)]
                for name in names
            ),
        ),
    ]
    ranked = result.get("category_ranked")
    if ranked:
        parts.append(
            Text(
                f"the model abstained (category unknown) on {result['category']['abstained']:.1%}"
                f" of the rows; its top-ranked known category scores macro-F1"
                f" {ranked['macro_f1']:.4f}, accuracy {ranked['accuracy']:.4f}"
            )
        )
    return Group(*parts)


def decisions_table(title: str, rows: list[dict[str, Any]]) -> Table | Text:
    """Audit rows: when, what, which versions, why."""
    if not rows:
        return Text("no champion decisions yet")
    return table(
        title,
        ["at", "action", "challenger", "champion", "promoted", "reason"],
        (
            [
                local_time(d["decided_at"]),
                d["action"],
                d["challenger_version"],
                d["champion_version"],
                "yes" if d["promoted"] else "no",
                d["reason"],
            ]
            for d in rows
        ),
    )


def audit(result: dict[str, Any]) -> Table | Text:
    """The audit trail, newest first."""
    return decisions_table("champion decisions (newest first)", result["decisions"])


def alias_move(result: dict[str, Any]) -> Text:
    """A rollback or forced promotion."""
    return Text(
        f"{result['action']}: champion {result['champion_before']} -> {result['champion']} "
        f"(previous-champion now {result['previous_champion']}); reason: {result['reason']}"
    )


def champion_part(champion: dict[str, Any] | None, model_name: str) -> list[Any]:
    """The champion line and its metrics, or how to get one."""
    if champion is None:
        return [Text(f"{model_name}: no champion yet (run `triage-ml retrain`)")]
    return [
        Text(
            f"{model_name}: champion version {champion['version']} ({champion['candidate']}, "
            f"run {champion['run_id']}); previous champion {figure(champion['previous_champion'])}"
        ),
        metrics_table("champion test metrics", {"champion": champion["metrics"]}),
    ]


def status(result: dict[str, Any]) -> Group:
    """Champion, store counts, recent retraining runs and decisions."""
    runs = table(
        "recent retraining runs",
        ["started", "status", "decision", "challenger", "category_macro_f1", "run"],
        (
            [
                local_time(r["start_time"]),
                r["status"],
                r["decision"],
                r["challenger_version"],
                r["category_macro_f1"],
                r["run_id"],
            ]
            for r in result["runs"]
        ),
    )
    return Group(
        Text(f"workspace {result['workspace']}"),
        *champion_part(result["champion"], result["model_name"]),
        table("ticket store", ["table", "rows"], result["store"].items()),
        runs if result["runs"] else Text("no retraining runs yet"),
        decisions_table("recent decisions", result["decisions"]),
    )


# ---- scoring --------------------------------------------------------------------


def score(result: dict[str, Any]) -> Text | Group:
    """Store scoring or file scoring, whichever ran, and the answers to its first tickets."""
    summary = score_summary(result)
    shown = result.get("answers")
    if not shown:
        return summary
    return Group(summary, answers(shown, f"the answers to the first {len(shown)} tickets"))


def score_summary(result: dict[str, Any]) -> Text:
    """One line: how many tickets or rows were scored, with which version, into what."""
    if "output" in result:
        rejected = (
            f"; {result['rejected']} rows rejected, see {result['rejected_file']}"
            if result["rejected"]
            else ""
        )
        return Text(
            f"scored {result['scored']} rows with version {result['model_version']} "
            f"into {result['output']}{rejected}{tier_summary(result)}"
        )
    return Text(
        f"scored {result['scored']} tickets with version {result['model_version']}; "
        f"{tier_counts(result)}{result['needs_review']} flagged for review "
        f"({result['partitions']} partitions, {result['chunks']} chunks, "
        f"{figure(result['seconds'], 1)} s)"
    )


def tier_summary(result: Mapping[str, Any]) -> str:
    """``" (12 auto, 30 suggest, 8 review)"``, or nothing when the result has no tier counts."""
    counts = result.get("tiers") or {}
    if not counts:
        return ""
    return " (" + ", ".join(f"{counts.get(t, 0)} {t}" for t in ("auto", "suggest", "review")) + ")"


def tier_counts(result: Mapping[str, Any]) -> str:
    """``"12 auto, 30 suggest, "``: the tickets applied and suggested, before those flagged."""
    counts = result.get("tiers") or {}
    if not counts:
        return ""
    return "".join(f"{counts.get(tier, 0)} {tier}, " for tier in ("auto", "suggest"))


# ---- one ticket's answers ---------------------------------------------------------


def parsed(value: Any) -> Any:
    """A JSON list or object stored as text (escalation, priority_parts, ...) as a value."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def missing(value: Any) -> bool:
    """None, NaN, pandas' NA or an empty string: no answer."""
    if value is None or (isinstance(value, str) and not value):
        return True
    try:
        return bool(value != value)  # NaN and pandas.NA are not equal to themselves
    except TypeError:
        return True


def with_proba(answer: Any, proba: Any = None) -> str:
    """``"Billing (0.93)"``, the answer alone without a probability, ``-`` without an answer."""
    if missing(answer):
        return "-"
    return str(answer) if missing(proba) else f"{answer} ({float(proba):.2f})"


def sentiment_text(score: Any, reason: Any = None) -> str:
    """``"-0.62"``, or why there is no score (``"- (no sentiment analyzer for 'fr')"``)."""
    if not missing(score):
        return f"{float(score):+.2f}"
    return "-" if missing(reason) else f"- ({reason})"


def signals_text(value: Any) -> str:
    """The escalation signals, comma-separated, ``none`` for an empty list, ``-`` when absent."""
    signals = parsed(value)
    if isinstance(signals, list):
        return ", ".join(map(str, signals)) if signals else "none"
    return "-" if missing(signals) else str(signals)


def _part(value: Any) -> str:
    return "-" if missing(value) else f"{float(value):.0f}"


def score_text(score: Any, parts: Any = None) -> str:
    """``"78.4 (model 80, value 65, sentiment -)"``: the priority score and its parts."""
    if missing(score):
        return "-"
    parts = parsed(parts)
    if not isinstance(parts, Mapping):
        return f"{float(score):.1f}"
    shown = ", ".join(
        f"{name} {_part(parts.get(name))}" for name in ("model", "value", "sentiment")
    )
    return f"{float(score):.1f} ({shown})"


def duplicates_text(value: Any) -> str:
    """``"TCK-0000012 0.93 same customer"`` per suggestion, one per line, or ``none``."""
    found = parsed(value)
    if not isinstance(found, list):
        return "-" if missing(found) else str(found)
    if not found:
        return "none"
    return "\n".join(
        f"{d.get('ticket_id')} {float(d.get('similarity', 0)):.2f}"
        + (" same customer" if d.get("same_customer") else "")
        for d in found
        if isinstance(d, Mapping)
    )


def yes_no(value: Any) -> str:
    """A boolean answer as yes/no, ``-`` when absent."""
    return "-" if missing(value) else ("yes" if bool(value) else "no")


# Rows of the answers table: label, and how one ticket's record shows it.
ANSWER_ROWS: tuple[tuple[str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("category", lambda r: with_proba(r.get("category"), r.get("category_proba"))),
    ("subcategory", lambda r: with_proba(r.get("subcategory"), r.get("subcategory_proba"))),
    ("type", lambda r: with_proba(r.get("type"), r.get("type_proba"))),
    ("team", lambda r: with_proba(r.get("team"), r.get("team_proba"))),
    ("route", lambda r: with_proba(r.get("route"))),
    ("tier", lambda r: with_proba(r.get("tier"))),
    ("language", lambda r: with_proba(r.get("language"))),
    ("sentiment", lambda r: sentiment_text(r.get("sentiment"), r.get("sentiment_reason"))),
    ("escalation", lambda r: signals_text(r.get("escalation"))),
    ("priority", lambda r: with_proba(r.get("priority"), r.get("priority_proba"))),
    ("priority score", lambda r: score_text(r.get("priority_score"), r.get("priority_parts"))),
    ("priority review", lambda r: yes_no(r.get("priority_review"))),
    ("needs review", lambda r: yes_no(r.get("needs_review"))),
    ("duplicates", lambda r: duplicates_text(r.get("possible_duplicates"))),
)


def answers(records: Sequence[Mapping[str, Any]], title: str | None = None) -> Table | Text:
    """The model's answers to a few tickets: one column per ticket, one row per answer.

    Records may come from the store or a scoring output (JSON kept as text) or from
    ``--json`` (JSON parsed); a column a model did not answer (an older model) shows ``-``.
    """
    if not records:
        return Text("no scored tickets to show")
    out = Table(title=title, title_justify="left")
    out.add_column("answer", no_wrap=True)
    for record in records:
        # At most 24 characters a ticket: three tickets fit in 100 columns, piped output too.
        out.add_column(str(record.get("ticket_id", "-")), overflow="fold", max_width=24)
    rows = ANSWER_ROWS
    if any("shown_for" in record for record in records):
        rows = (("shown for", lambda r: str(r.get("shown_for", "-"))), *rows)
    for label, show in rows:
        out.add_row(Text(label), *(Text(show(record)) for record in records))
    return out


def served(result: dict[str, Any]) -> Text:
    """How the model server ended."""
    return Text(f"model server on {result['model_uri']} stopped (exit code {result['exit_code']})")


# ---- operations -----------------------------------------------------------------


def flattened(values: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Nested settings as dotted names (``gate.min_delta``) with their values."""
    for key, value in values.items():
        if isinstance(value, Mapping) and value and key not in ("routes", "candidate_params"):
            yield from flattened(value, f"{prefix}{key}.")
        elif isinstance(value, list | tuple):
            yield f"{prefix}{key}", ", ".join(map(str, value))
        else:
            yield f"{prefix}{key}", value


def config(result: dict[str, Any]) -> Group:
    """The effective configuration: what the platform uses, where it came from, every setting."""
    settings = {k: v for k, v in result.items() if k not in ("effective", "sources")}
    return Group(
        table("in effect", ["", "value"], result["effective"].items()),
        table("read from", ["source", "path"], result["sources"].items()),
        table("settings", ["setting", "value"], flattened(settings)),
    )


def db(result: dict[str, Any]) -> Text:
    """The store's schema revision."""
    return Text(
        f"store {result['store']}: schema revision {result['revision'] or 'none'} "
        f"(head {result['head']}{', up to date' if result['up_to_date'] else ''})"
    )


def deploy(result: dict[str, Any]) -> Group:
    """What ``deploy`` registered, with each deployment's schedule and next runs."""
    pool = result["work_pool"]
    out = [
        f"registered on {result['api_url']}:",
        f"  work pool {pool['name']} ({pool['type']}, concurrency limit "
        f"{pool['concurrency_limit'] or 'none'})",
    ]
    for item in result["deployments"]:
        out.append(
            f"  deployment {item['name']}: {item['entrypoint']}, at most "
            f"{item['concurrency_limit']} run(s) at once ({item['collision_strategy']})"
        )
        for when in item["schedules"]:
            rule = (
                f"cron {when['cron']}" if "cron" in when else f"every {when['interval'] / 60:g} min"
            )
            nexts = ", ".join(local_time(moment) for moment in when["next_runs"])
            out.append(f"    {rule} ({when['timezone']}); next: {nexts}")
    out.append(f"start a worker: prefect worker start --pool {pool['name']}")
    return lines(*out)


def served_flows(result: dict[str, Any]) -> Text:
    """The deployments ``serve-flows`` ran until it was stopped."""
    return Text(f"served {', '.join(result['served'])} until stopped")


def demo(result: dict[str, Any]) -> Group:
    """The demo's summary and where to look next."""
    r, s = result["retrain"], result["score"]
    ingested = table(
        "ingested",
        ["file", "read", "stored", "quarantined", "skipped"],
        (
            [name, v["read"], v["stored"], v["quarantined"], v["skipped"]]
            for name, v in result["ingest"].items()
        ),
    )
    return Group(
        Text(
            f"triage-ml demo finished in {figure(result['seconds'], 1)} s "
            f"(workspace {result['workspace']})"
        ),
        ingested,
        retrain(r),
        Text(
            f"scored {s['scored']} tickets with version {s['model_version']}; "
            f"{tier_counts(s)}{s['needs_review']} flagged for review"
        ),
        *demo_answers(result.get("examples") or []),
        lines(*where_to_look(result.get("mlflow_runs"))),
    )


def demo_answers(examples: Sequence[Mapping[str, Any]]) -> list[Any]:
    """A few new tickets with every answer, and why each was picked (``shown_for``)."""
    return [answers(examples, "a few new tickets and their answers")] if examples else []


def where_to_look(mlflow_runs: str | None) -> list[str]:
    """The demo's pointers: the UIs, with the MLflow runs table linked directly, and ``status``."""
    out = [
        "Where to look:",
        "  make ui            # MLflow UI on http://127.0.0.1:5000, Prefect UI on http://127.0.0.1:4200",
    ]
    if mlflow_runs:
        out.append(f"  {mlflow_runs}   # the MLflow runs table")
    out.append("  triage-ml status   # champion, metrics, recent runs and decisions")
    return out
