"""Ingest throughput and peak memory: synthetic tickets into SQLite, validation included.

Validation is both tiers: pandera row contracts and the Great Expectations
batch suite (with its Data Docs). The parent process writes the files; each
size is ingested in a fresh child process, so the peak RSS printed is the
ingest's own. One-off process warm-up happens before the clock starts, as in
a long-running worker, and its time is printed apart: importing GX, and
pandera's first validation (it registers its backends). Usage:
    python benchmarks/bench_ingest.py [--rows 25000 100000 200000] [--chunk-rows 20000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Not getrusage's ru_maxrss: Linux starts it from the parent's peak when the
# parent spawns this process, and the parent here holds the generated tickets.
from bench_scoring import peak_rss_mb


def ingest_once(path: Path, chunk_rows: int) -> dict[str, float]:
    """Ingest one file into a fresh SQLite store; returns throughput and memory."""
    started = time.perf_counter()
    import great_expectations  # noqa: F401  (one-off import, reported apart)

    from triage_ml import ingest, store
    from triage_ml.ingest import contracts, sources
    from triage_ml.settings import Settings

    head = next(sources.read_source(path, 50))
    schema = contracts.load_schema("tickets", Settings().priority_levels)
    ingest.prepare_ticket_chunk(
        ingest.check_chunk(head, ingest.ColumnMapping(), schema, "warm-up", 0)
    )
    imports = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        engine = store.connect(f"sqlite:///{Path(tmp) / 'bench.db'}")
        before = peak_rss_mb()
        started = time.perf_counter()
        options = ingest.IngestOptions(
            priority_levels=tuple(Settings().priority_levels),
            chunk_rows=chunk_rows,
            gx_root=Path(tmp) / "gx",
        )
        summary = ingest.ingest_tickets(engine, path, ingest.ColumnMapping(), options)
        elapsed = time.perf_counter() - started
        engine.dispose()
    return {
        "rows": summary.read,
        "stored": summary.stored,
        "status": summary.status,
        "seconds": round(elapsed, 2),
        "rows_per_second": round(summary.read / elapsed),
        "import_seconds": round(imports, 1),
        "rss_before_mb": round(before),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[25_000, 100_000, 200_000])
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--ingest", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ingest:
        print(json.dumps(ingest_once(args.ingest, args.chunk_rows)))
        return
    from triage_ml import synth

    print(
        f"{'rows':>8} {'seconds':>8} {'rows/s':>8} {'RSS before MB':>14} "
        f"{'peak RSS MB':>12} {'warm-up s':>10}"
        f"  (chunk {args.chunk_rows} rows, SQLite, pandera + GX)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            path = synth.write(synth.generate(rows, months=6, seed=5), Path(tmp) / str(rows))[
                "tickets"
            ]
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--ingest",
                    str(path),
                    "--chunk-rows",
                    str(args.chunk_rows),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{r['rows']:>8} {r['seconds']:>8} {r['rows_per_second']:>8} "
                f"{r['rss_before_mb']:>14} "
                f"{r['peak_rss_mb']:>12} {r['import_seconds']:>10}"
            )


if __name__ == "__main__":
    main()
