"""Ingest throughput and peak memory: synthetic tickets into SQLite, validation included.

Each size runs in a fresh process so its peak RSS is its own. Usage:
    python benchmarks/bench_ingest.py [--rows 25000 100000 200000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(rows: int, chunk_rows: int) -> dict[str, float]:
    """Ingest ``rows`` synthetic tickets once; returns throughput and peak RSS."""
    from triage_ml import ingest, store, synth
    from triage_ml.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        path = synth.write(synth.generate(rows, months=6, seed=5), Path(tmp))["tickets"]
        del_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        engine = store.connect(f"sqlite:///{Path(tmp) / 'bench.db'}")
        started = time.perf_counter()
        summary = ingest.ingest_tickets(engine, path, ingest.ColumnMapping(), Settings().priority_levels, chunk_rows)
        elapsed = time.perf_counter() - started
        engine.dispose()
    return {"rows": rows, "stored": summary.stored, "quarantined": summary.quarantined, "seconds": round(elapsed, 2),
            "rows_per_second": round(rows / elapsed), "peak_rss_mb_before_ingest": round(del_rss),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[25_000, 100_000])
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.rows[0], args.chunk_rows)))
        return
    print(f"{'rows':>8} {'seconds':>8} {'rows/s':>8} {'peak RSS MB':>12}  (chunk {args.chunk_rows} rows, SQLite)")
    for rows in args.rows:
        out = subprocess.run([sys.executable, __file__, "--child", "--rows", str(rows), "--chunk-rows", str(args.chunk_rows)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['rows']:>8} {r['seconds']:>8} {r['rows_per_second']:>8} {r['peak_rss_mb']:>12}")


if __name__ == "__main__":
    main()
