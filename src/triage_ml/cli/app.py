"""The ``triage-ml`` command line.

Every subcommand accepts ``--json`` and then prints exactly one JSON object on
stdout; everything else (Prefect and MLflow logs) goes to stderr. A problem
the user can fix ends the command with one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from triage_ml.errors import TriageError
from triage_ml.settings import CONFIG_ENV, Settings

Handler = Callable[[argparse.Namespace, Settings], dict[str, Any]]


def prepare_environment(settings: Settings) -> None:
    """Point Prefect and matplotlib at the workspace before they are imported.

    Prefect reads its settings from the environment when first imported, so
    this runs at command start, not at import of this module.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(settings.prefect_home)
    os.environ.setdefault("MPLCONFIGDIR", str(settings.home.resolve() / "cache" / "matplotlib"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # The first start of the embedded server runs its migrations; on a busy
    # 2-core machine that exceeds Prefect's 20 s default.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    if settings.prefect_api_url:
        os.environ["PREFECT_API_URL"] = settings.prefect_api_url
    # MLflow's INFO lines (table creation, validation) drown the CLI's own
    # output; MLFLOW_LOGGING_LEVEL=INFO brings them back.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(os.environ["MLFLOW_LOGGING_LEVEL"].upper())


# ---- commands -----------------------------------------------------------


def cmd_generate(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Write a synthetic labeled history plus a batch of new tickets."""
    from triage_ml import synth

    out = Path(args.out)
    data = synth.generate(args.tickets, args.months, args.seed)
    paths = synth.write(data, out)
    new_tickets = 0
    if args.new_tickets:
        new = synth.generate_unlabeled(
            args.new_tickets, args.seed, start=data.tickets["created_at"].max().to_pydatetime()
        )
        paths["new_tickets"] = out / "new_tickets.csv"
        new.to_csv(paths["new_tickets"], index=False)
        new_tickets = len(new)
    return {
        "files": {k: str(v) for k, v in paths.items()},
        "tickets": len(data.tickets),
        "feedback": len(data.feedback),
        "surveys": len(data.surveys),
        "new_tickets": new_tickets,
    }


def mapping_from_args(args: argparse.Namespace, labeled: bool = True) -> Any:
    """A column mapping from the shared mapping flags; explicit names must exist."""
    from triage_ml.ingest.batches import ColumnMapping

    given = {
        "text_columns": tuple(c.strip() for c in args.text_columns.split(",") if c.strip())
        if args.text_columns
        else None,
        "category_column": args.category_column,
        "priority_column": args.priority_column,
        "id_column": args.id_column,
        "created_at_column": args.created_at_column,
    }
    explicit = frozenset(k for k, v in given.items() if v)
    values = {k: v for k, v in given.items() if v}
    return ColumnMapping(**values, explicit=explicit, labeled=labeled)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Ingest one file of tickets, feedback or surveys."""
    from triage_ml import ingest

    sql, path = source_from_args(args)
    source = sql or path
    if args.kind == "tickets":
        mapping = mapping_from_args(args, labeled=not args.unlabeled)
        ingest.preflight_tickets(source, mapping, settings.ingest_chunk_rows)
        from triage_ml.flows.ingest import ingest_tickets

        return ingest_tickets(None if sql else str(path), mapping, sql=sql)
    ingest.preflight_linked(source, args.kind, settings.ingest_chunk_rows)
    from triage_ml.flows.ingest import ingest_feedback

    return ingest_feedback(None if sql else str(path), kind=args.kind, sql=sql)


def source_from_args(args: argparse.Namespace) -> tuple[Any, Path | None]:
    """(SQL source or None, file path or None) from the ingest flags."""
    from triage_ml.ingest.sources import SqlSource

    sql_url = getattr(args, "sql_url", None)
    if sql_url:
        if args.path is not None:
            raise TriageError("give either a PATH or --sql-url, not both")
        return SqlSource(
            sql_url, getattr(args, "sql_query", None), getattr(args, "table", None)
        ), None
    if args.path is None:
        raise TriageError(
            "give a PATH to a CSV or Parquet file, or --sql-url with --table or --sql-query"
        )
    return None, Path(args.path)


def cmd_batches(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """list | accept ingest batches."""
    from triage_ml import store

    with store.opened(settings.store_url) as engine:
        if args.action == "accept":
            if not args.batch_id or not args.reason:
                raise TriageError("batches accept needs a BATCH_ID and --reason TEXT")
            with engine.begin() as conn:
                if not store.set_batch_status(conn, args.batch_id, store.ACCEPTED, args.reason):
                    raise TriageError(f"no batch {args.batch_id}")
            return {"batch_id": args.batch_id, "status": store.ACCEPTED, "reason": args.reason}
        with engine.connect() as conn:
            return {"batches": store.list_batches(conn, args.limit)}


def cmd_quarantine(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """list | show | export | release quarantined rows."""
    from triage_ml import store
    from triage_ml.ingest import quarantine

    with store.opened(settings.store_url) as engine:
        if args.action == "release":
            return quarantine.release(
                engine, settings.priority_levels, args.ids, args.batch, args.file
            )
        with engine.connect() as conn:
            if args.action == "list":
                return {"records": quarantine.list_records(conn, args.batch, args.all, args.limit)}
            if args.action == "show":
                if len(args.ids) != 1:
                    raise TriageError("quarantine show takes one record id")
                return quarantine.show_record(conn, args.ids[0])
            if not args.out:
                raise TriageError("quarantine export needs --out PATH")
            return {
                "exported": quarantine.export_records(conn, Path(args.out), args.ids, args.batch),
                "file": args.out,
            }


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Run the retraining flow and report the promotion decision."""
    from triage_ml.flows.retrain import monthly_retrain

    record = monthly_retrain()
    return {
        "promoted": record["promote"],
        "reason": record["reason"],
        "candidate": record["candidate"],
        "challenger_version": record["challenger_version"],
        "champion_version_before": record["champion_version"],
        "champion_version": record["champion_after"],
        "challenger_metrics": record["challenger"],
        "champion_metrics": record["champion"],
        "interval": record["interval"],
        "run_id": record["run_id"],
    }


def cmd_score(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Score unscored tickets in the store with the champion, or a file with ``--input/--output``."""
    if (args.input is None) != (args.output is None):
        raise TriageError(
            "--input and --output go together (a CSV or Parquet file in, a .csv or .parquet file out)"
        )
    from triage_ml.scoring.startup import import_skops_first

    import_skops_first()
    if args.input is None:
        from triage_ml.flows.score import score

        return score(settings, rescore=args.rescore)
    from triage_ml import registry
    from triage_ml.scoring import files

    registry.use_workspace(settings)
    model, version = registry.load_version(settings, args.model)
    return files.score_file(
        model,
        version,
        Path(args.input),
        Path(args.output),
        mapping_from_args(args, labeled=False),
        settings.priority_levels,
        settings.score_chunk_rows,
    )


def cmd_serve(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Run MLflow's scoring server on the champion (or a version) until interrupted."""
    import subprocess

    from triage_ml.scoring import serving

    uri = serving.model_uri(settings, args.model)
    print(
        f"serving {uri} on http://{args.host}:{args.port}/invocations (Ctrl-C stops)",
        file=sys.stderr,
    )
    completed = subprocess.run(
        serving.serve_command(uri, args.host, args.port, args.workers),
        env=serving.serve_environment(settings),
        check=False,
    )
    return {"model_uri": uri, "exit_code": completed.returncode}


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Score a labeled file with a registered model and compute metrics."""
    from triage_ml import registry
    from triage_ml.training import evaluation

    registry.use_workspace(settings)
    model, version = registry.load_version(settings, args.model)
    figures = evaluation.evaluate_file(model, Path(args.path), mapping_from_args(args), settings)
    return {"model_version": version, **figures}


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Point champion back at the previous champion (audited)."""
    from triage_ml.flows.promotion import rollback_champion

    return rollback_champion(args.reason)


def cmd_promote(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Force a registered version to champion, bypassing the gate (audited)."""
    if not args.force:
        raise TriageError(
            "promote bypasses the gate and needs --force; to promote through the gate, run `triage-ml retrain`"
        )
    from triage_ml.flows.promotion import force_promote

    return force_promote(str(args.version), args.reason)


def cmd_audit(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The audit trail of champion decisions, newest first."""
    from triage_ml import store

    with store.opened(settings.store_url) as engine, engine.connect() as conn:
        rows = store.recent_decisions(conn, args.limit)
    return {"decisions": [{k: v for k, v in row.items() if k != "details"} for row in rows]}


def cmd_db(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """current | upgrade: the store's schema revision, or migrate it explicitly (connect() also does)."""
    from triage_ml import store
    from triage_ml.store import schema

    engine = store.create_engine(settings.store_url)
    try:
        with store.reachable(engine):
            if args.action == "upgrade":
                before, revision = schema.upgrade(engine)
            else:
                with engine.connect() as conn:
                    before = revision = schema.current_revision(conn)
    finally:
        engine.dispose()
    return {
        "store": store.safe_url(engine.url),
        "revision_before": before,
        "revision": revision,
        "head": schema.HEAD,
        "up_to_date": revision == schema.HEAD,
    }


def cmd_status(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The champion, its metrics, the last runs and decisions."""
    from triage_ml.registry import status

    return status.workspace_status(settings)


def cmd_config(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The effective configuration, credentials masked."""
    from triage_ml.settings import effective_config

    return effective_config(settings)


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Register the work pool, concurrency limits and scheduled deployments on the configured Prefect API."""
    from triage_ml.flows import deployments

    return deployments.register(settings)


def cmd_serve_flows(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Run the scheduled deployments in this process with ``prefect.serve`` until interrupted."""
    from triage_ml.flows import deployments

    names = [spec.full_name for spec in deployments.deployment_specs(settings)]
    deployments.serve(
        settings,
        announce=lambda: print(f"serving {', '.join(names)} (Ctrl-C stops)", file=sys.stderr),
    )
    return {"served": names, "stopped": True}


def cmd_demo(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Generate data, ingest it, retrain, score, and summarise."""
    started = time.perf_counter()
    data_dir = settings.home / "demo-data"
    generate_args = argparse.Namespace(
        tickets=args.tickets,
        months=args.months,
        seed=args.seed,
        new_tickets=args.new_tickets,
        out=str(data_dir),
    )
    files = cmd_generate(generate_args, settings)["files"]
    ingested = {}
    for kind, key, labeled in (
        ("tickets", "tickets", True),
        ("feedback", "feedback", True),
        ("surveys", "surveys", True),
        ("tickets", "new_tickets", False),
    ):
        ns = argparse.Namespace(
            kind=kind,
            path=files[key],
            unlabeled=not labeled,
            text_columns=None,
            category_column=None,
            priority_column=None,
            id_column=None,
            created_at_column=None,
            sql_url=None,
        )
        ingested[key] = cmd_ingest(ns, settings)
    retrained = cmd_retrain(args, settings)
    from triage_ml.flows.score import score

    scored = score(settings)
    return {
        "ingest": {
            k: {c: v[c] for c in ("read", "stored", "quarantined", "skipped")}
            for k, v in ingested.items()
        },
        "retrain": retrained,
        "score": scored,
        "seconds": round(time.perf_counter() - started, 1),
        "workspace": str(settings.home.resolve()),
    }


# ---- text output ---------------------------------------------------------


def render(command: str, result: dict[str, Any], settings: Settings) -> str:
    """Plain-text summary of a command's result."""
    from triage_ml.flows import reports

    if command == "demo":
        r, s = result["retrain"], result["score"]
        champ = r["challenger_metrics"] if r["promoted"] else (r["champion_metrics"] or {})
        lines = [
            f"triage-ml demo finished in {result['seconds']} s (workspace {result['workspace']})",
            *[
                f"  ingest {k}: read {v['read']}, stored {v['stored']}, quarantined {v['quarantined']}, skipped {v['skipped']}"
                for k, v in result["ingest"].items()
            ],
            f"  retrain: candidate {r['candidate']} -> version {r['challenger_version']}, "
            f"{'promoted' if r['promoted'] else 'not promoted'} ({r['reason']})",
            f"  champion: version {r['champion_version']} ({reports.metrics_line(champ)})",
            f"  scored {s['scored']} tickets with version {s['model_version']}; {s['needs_review']} flagged for review",
            "Where to look:",
            "  make ui            # MLflow UI on http://127.0.0.1:5000 and Prefect UI on http://127.0.0.1:4200",
            "  triage-ml status   # champion, metrics, recent runs and decisions",
        ]
        return "\n".join(lines)
    if command == "ingest":
        return reports.ingest_text(result)
    if command == "deploy":
        return reports.deploy_text(result)
    if command == "db":
        return (
            f"store {result['store']}: schema revision {result['revision'] or 'none'} (head {result['head']}"
            f"{', up to date' if result['up_to_date'] else ''})"
        )
    if command in ("rollback", "promote"):
        return (
            f"{result['action']}: champion {result['champion_before']} -> {result['champion']} "
            f"(previous-champion now {result['previous_champion']}); reason: {result['reason']}"
        )
    return json.dumps(result, indent=2, default=str)


# ---- argument parsing ----------------------------------------------------


def add_mapping_flags(parser: argparse.ArgumentParser) -> None:
    """The column-mapping flags shared by ingest and evaluate."""
    parser.add_argument(
        "--text-columns", help="comma-separated text columns (first is the subject when several)"
    )
    parser.add_argument("--category-column", help="column holding the category label")
    parser.add_argument("--priority-column", help="column holding the priority label")
    parser.add_argument("--id-column", help="column holding a unique ticket id")
    parser.add_argument("--created-at-column", help="column holding the creation timestamp")


def count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum of {minimum}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The full ``triage-ml`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    common.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="TOML config file (same as TRIAGE_CONFIG; the environment overrides it)",
    )
    parser = argparse.ArgumentParser(
        prog="triage-ml", description=__doc__.splitlines()[0], parents=[common]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", parents=[common], help="generate, ingest, retrain, score, summarise"
    )
    demo.add_argument("--tickets", type=count(100), default=6000)
    demo.add_argument("--months", type=count(2), default=6)
    demo.add_argument("--new-tickets", type=count(1), default=1000)
    demo.add_argument("--seed", type=count(0), default=7)

    gen = sub.add_parser(
        "generate", parents=[common], help="write synthetic tickets, feedback and surveys"
    )
    gen.add_argument("--tickets", type=count(1), default=6000)
    gen.add_argument("--months", type=count(1), default=6)
    gen.add_argument(
        "--new-tickets", type=count(0), default=1000, help="unlabeled tickets to score (0: none)"
    )
    gen.add_argument("--seed", type=count(0), default=0)
    gen.add_argument("--out", required=True)

    ing = sub.add_parser("ingest", parents=[common], help="ingest tickets, feedback or surveys")
    ing.add_argument("kind", choices=["tickets", "feedback", "surveys"])
    ing.add_argument("path", type=Path, nargs="?", help="CSV or Parquet file (or use --sql-url)")
    ing.add_argument(
        "--unlabeled", action="store_true", help="tickets without labels, to be scored"
    )
    ing.add_argument(
        "--sql-url", help="SQLAlchemy URL of a database to read from (credentials via environment)"
    )
    ing.add_argument("--sql-query", help="read-only query giving the rows (with --sql-url)")
    ing.add_argument("--table", help="table holding the rows (with --sql-url)")
    add_mapping_flags(ing)

    qua = sub.add_parser(
        "quarantine", parents=[common], help="inspect and release quarantined rows"
    )
    qua.add_argument("action", choices=["list", "show", "export", "release"])
    qua.add_argument("ids", type=int, nargs="*", help="record ids (show/export/release)")
    qua.add_argument("--batch", help="all unreleased records of one batch")
    qua.add_argument("--all", action="store_true", help="list released records too")
    qua.add_argument("--limit", type=int, default=100)
    qua.add_argument("--out", help="CSV to write (export)")
    qua.add_argument("--file", type=Path, help="fixed CSV from `quarantine export` (release)")

    sub.add_parser("retrain", parents=[common], help="run the retraining flow")
    sco = sub.add_parser(
        "score", parents=[common], help="score tickets not yet scored by the champion, or a file"
    )
    sco.add_argument(
        "--input", type=Path, help="CSV or Parquet file of tickets to score instead of the store"
    )
    sco.add_argument(
        "--output", type=Path, help="where the predictions go (.csv or .parquet), with --input"
    )
    sco.add_argument(
        "--model", default="champion", help="'champion' (default) or a version number, with --input"
    )
    sco.add_argument(
        "--rescore", action="store_true", help="also score tickets an earlier champion scored"
    )
    add_mapping_flags(sco)

    srv = sub.add_parser(
        "serve", parents=[common], help="serve the champion over HTTP with `mlflow models serve`"
    )
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=count(1), default=5001)
    srv.add_argument("--workers", type=count(1), default=1)
    srv.add_argument("--model", default="champion", help="'champion' (default) or a version number")

    ev = sub.add_parser(
        "evaluate", parents=[common], help="metrics of a registered model on a labeled file"
    )
    ev.add_argument("path", type=Path)
    ev.add_argument("--model", default="champion", help="'champion' (default) or a version number")
    add_mapping_flags(ev)

    sub.add_parser("status", parents=[common], help="champion, metrics, recent runs and decisions")
    sub.add_parser(
        "deploy",
        parents=[common],
        help="register the work pool and scheduled deployments on the Prefect API (TRIAGE_PREFECT_API_URL)",
    )
    sub.add_parser(
        "serve-flows",
        parents=[common],
        help="run the scheduled deployments in this process until Ctrl-C",
    )

    db = sub.add_parser(
        "db", parents=[common], help="the ticket store's schema revision; upgrade it explicitly"
    )
    db.add_argument("action", choices=["current", "upgrade"])

    rb = sub.add_parser(
        "rollback", parents=[common], help="point champion back at the previous champion (audited)"
    )
    rb.add_argument("--reason", required=True, help="why; kept in the audit trail")

    pro = sub.add_parser(
        "promote", parents=[common], help="make a version champion without the gate (audited)"
    )
    pro.add_argument("version", type=count(1), help="registered version number")
    pro.add_argument("--force", action="store_true", help="required: this bypasses the gate")
    pro.add_argument("--reason", required=True, help="why; kept in the audit trail")

    aud = sub.add_parser(
        "audit", parents=[common], help="champion decisions: gate, rollback, forced promotion"
    )
    aud.add_argument("--limit", type=count(1), default=20)

    cfg = sub.add_parser(
        "config", parents=[common], help="show the effective configuration (credentials masked)"
    )
    cfg.add_argument("action", choices=["show"])

    bat = sub.add_parser(
        "batches", parents=[common], help="list ingest batches, or accept a blocked one"
    )
    bat.add_argument("action", choices=["list", "accept"])
    bat.add_argument("batch_id", nargs="?")
    bat.add_argument("--reason", help="why a blocked batch is accepted (kept in its report)")
    bat.add_argument("--limit", type=int, default=20)
    return parser


COMMANDS: dict[str, Handler] = {
    "demo": cmd_demo,
    "generate": cmd_generate,
    "ingest": cmd_ingest,
    "retrain": cmd_retrain,
    "score": cmd_score,
    "evaluate": cmd_evaluate,
    "status": cmd_status,
    "quarantine": cmd_quarantine,
    "batches": cmd_batches,
    "rollback": cmd_rollback,
    "promote": cmd_promote,
    "audit": cmd_audit,
    "serve": cmd_serve,
    "config": cmd_config,
    "deploy": cmd_deploy,
    "serve-flows": cmd_serve_flows,
    "db": cmd_db,
}


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool) -> Iterator[None]:
    """Keep stdout clean for the JSON object while libraries print."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``triage-ml``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if getattr(args, "config", None) is not None:
        os.environ[CONFIG_ENV] = str(args.config.resolve())
    try:
        settings = Settings()
        prepare_environment(settings)
        with stdout_to_stderr(args.json):
            result = COMMANDS[args.command](args, settings)
    except TriageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        first = exc.errors()[0]
        print(
            f"error: invalid configuration: {'.'.join(map(str, first['loc']))}: {first['msg']}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result, default=str) if args.json else render(args.command, result, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
