"""Single-ticket latency of the champion behind `triage-ml serve` (MLflow's scoring app, guarded).

Builds a workspace (synthetic history, ingest, a full default retraining),
starts the scoring server as ``triage-ml serve`` does on the champion on a free loopback port, and
sends single-ticket requests one after another, as a helpdesk would when a
ticket is created. Prints p50/p95/p99 latency, measured by the client.

    python benchmarks/bench_serving.py [--tickets 6000] [--requests 500]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

BIN = Path(sys.executable).parent


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    """Run ``triage-ml ARGS --json`` on ``home`` (or in ``env``); its answer, or exit on error."""
    env = env if env is not None else {**os.environ, "TRIAGE_HOME": str(home)}
    proc = subprocess.run(
        [str(BIN / "triage-ml"), *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"triage-ml {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=6000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    from triage_ml.scoring import serving
    from triage_ml.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        home, data = Path(tmp) / "home", Path(tmp) / "data"
        files = cli(
            home,
            "generate",
            "--tickets",
            str(args.tickets),
            "--new-tickets",
            str(args.requests),
            "--out",
            str(data),
        )["files"]
        cli(home, "ingest", "tickets", files["tickets"])
        retrained = cli(home, "retrain")
        print(f"champion: version {retrained['champion_version']} ({retrained['candidate']})")
        settings = Settings(home=home)
        port = free_port()
        log = (Path(tmp) / "server.log").open("w")
        server = subprocess.Popen(
            serving.serve_command(serving.model_uri(settings, "champion"), "127.0.0.1", port, 1),
            env=serving.serve_environment(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            serving.wait_until_ready(f"{base}/ping", server)
            columns = ["subject", "body", "channel", "customer_tier", "customer_ltv", "language"]
            tickets = (
                pd.read_csv(files["new_tickets"])[columns]
                .astype(object)
                .where(lambda f: f.notna(), None)
            )
            records = tickets.to_dict(orient="records")
            latencies = []
            for i in range(args.requests + 20):
                body = json.dumps({"dataframe_records": [records[i % len(records)]]}).encode()
                request = urllib.request.Request(
                    f"{base}/invocations", body, {"Content-Type": "application/json"}
                )
                started = time.perf_counter()
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                if i >= 20:  # the first requests warm the server up
                    latencies.append((time.perf_counter() - started) * 1000)
        finally:
            server.terminate()
            server.wait(30)
            log.close()
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    print(
        f"single-ticket requests: {len(latencies)} sequential, "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, "
        f"max {max(latencies):.1f} ms (target p99 < 50 ms: {'met' if p99 < 50 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
