"""Scoring throughput of the scoring flow, against raw ``model.predict``, measured in one run.

One workspace is trained (synthetic history, ingest, a full default
retraining). Then, for each size, a copy of its store receives that many
synthetic unlabeled tickets and ``triage-ml score`` runs in a fresh process,
once per task runner (``--runners``, each on its own copy of the store):
store reads, repeat-contact counts, prediction and idempotent writes
included. Peak RSS is the largest of that process and its worker processes
(``wait4`` reports the maximum over the process tree it waited for), taken by
a small launcher process, not by this one (see :data:`LAUNCHER`). Raw
predict is the same champion's ``predict`` on 20,000 of the same stored
tickets, in this process, one call per chunk of ``TRIAGE_SCORE_CHUNK_ROWS``
like the flow's, measured before the first runner and after each: a flow's
flow/raw is against the mean of the measurements just before and after it.
Beside it, on the same rows and chunks, the issue's point of comparison: a
plain word n-gram TF-IDF + logistic-regression category model, fitted on
the workspace's training tickets.

The ``standing-dask`` runner is the flow on a Dask cluster that outlives a
scoring run, as a production cluster does: one local cluster of
``TRIAGE_SCORE_WORKERS`` single-threaded worker processes and one real
Prefect server, both started before the first size and kept for the next.
Its first run pays the workers' imports and model load; later runs find
them done, which is what a standing cluster saves. Its peak RSS is the
largest of the CLI process and the workers' own peaks (``VmHWM``).

    python benchmarks/bench_scoring.py [--sizes 50000,200000] [--tickets 6000]
        [--runners threads,processes,standing-dask]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def cli(env: dict[str, str], *args: str) -> tuple[dict, float]:
    started = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "triage-ml"), *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"triage-ml {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout), time.perf_counter() - started


# Linux starts a process's ru_maxrss from its parent's peak when the parent
# spawns it (the kernel keeps the old memory's high-water mark across exec),
# and this process holds the champion and 20,000 tickets (docs/benchmarks.md).
# Measured from here, the CLI's peak was at least this process's own. So a
# small launcher starts the CLI and reports the wait4 figures of the CLI's
# process tree alone, and its wall time.
LAUNCHER = """
import os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as report:
    elapsed = time.perf_counter() - started
    report.write(f"{os.waitstatus_to_exitcode(status)} {elapsed} {usage.ru_maxrss}")
"""


def cli_measured(env: dict[str, str], *args: str) -> tuple[dict, float, float]:
    """Like :func:`cli`, plus the peak RSS in MB of the CLI's process tree.

    The tree is the CLI and the workers it waited for.
    """
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("r") as report,
    ):
        subprocess.run(
            [sys.executable, "-c", LAUNCHER, report.name, str(BIN / "triage-ml"), *args, "--json"],
            env=env,
            stdout=out,
            stderr=err,
            check=True,
        )
        code, seconds, maxrss_kb = report.read().split()
        out.seek(0), err.seek(0)
        if int(code) != 0:
            sys.exit(f"triage-ml {' '.join(args)} failed:\n{err.read()[-3000:]}")
        return json.loads(out.read()), float(seconds), int(maxrss_kb) / 1024


def raw_inputs(settings, version: str, rows: int) -> tuple[Any, Any]:
    """The champion, loaded in this process, and ``rows`` stored tickets as its input frame."""
    from triage_ml import registry
    from triage_ml.scoring import batch
    from triage_model.predictor import input_frame

    model = registry.process_model(settings, f"models:/{settings.model_name}/{version}")
    tickets = next(batch.unscored_chunks(batch.process_engine(settings.store_url), None, rows))
    inputs = input_frame(tickets)
    model.predict(inputs.head(200))  # first-call overheads are not throughput
    return model, inputs


def plain_baseline(tickets_csv: str):
    """The issue's point of comparison: word n-gram TF-IDF + a linear model.

    It is fitted on the training tickets' categories.

    It takes the champion's input frame (subject and body joined as the
    platform joins them), so :func:`raw_predict` times it on the same rows.
    """
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from triage_model.features import ticket_text

    history = pd.read_csv(tickets_csv)
    return make_pipeline(
        FunctionTransformer(ticket_text),
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        LogisticRegression(max_iter=1000),
    ).fit(history, history["category"])


def raw_predict(model, inputs, chunk_rows: int) -> float:
    """Tickets per second of ``model.predict`` on ``inputs``, in calls of the flow's chunk size."""
    started = time.perf_counter()
    for start in range(0, len(inputs), chunk_rows):
        model.predict(inputs.iloc[start : start + chunk_rows])
    return len(inputs) / (time.perf_counter() - started)


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """A real ``prefect server start`` on loopback with its own PREFECT_HOME; yields its API URL."""
    import socket

    from triage_ml.scoring.serving import wait_until_ready

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
        }
    )
    home.mkdir(parents=True)
    with (home / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/api/health", server)
        yield f"http://127.0.0.1:{port}/api"
    finally:
        server.terminate()
        server.wait(30)


class StandingDask:
    """A real Prefect server and a local Dask cluster of one-thread workers, started on first use.

    They stay up for every later run, as a production cluster outlives a scoring run.
    """

    def __init__(self, stack: ExitStack, root: Path) -> None:
        self.stack, self.root = stack, root
        self.address: str | None = None
        self.api_url = ""
        self.client = None
        self.runs = 0

    def env(self, workers: int) -> dict[str, str]:
        """The CLI settings for a run on this cluster, starting it (and the server) at first."""
        if self.address is None:
            from distributed import Client, LocalCluster

            self.api_url = self.stack.enter_context(prefect_server(self.root / "prefect"))
            # The workers' task runs report to the same server as the flow run.
            cluster = self.stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    env={"PREFECT_API_URL": self.api_url},
                )
            )
            self.client = self.stack.enter_context(Client(cluster))
            self.address = cluster.scheduler_address
        return {
            "TRIAGE_SCORE_RUNNER": "dask",
            "TRIAGE_DASK_ADDRESS": self.address,
            "TRIAGE_PREFECT_API_URL": self.api_url,
        }

    def after_run(self) -> tuple[str, float]:
        """What the run just finished found, and the workers' peak RSS in MB.

        What it found: workers that scored before, or not.
        """
        self.runs += 1
        found = (
            "warm workers (they scored before)"
            if self.runs > 1
            else "first run: its workers import and load the model"
        )
        return found, max(self.client.run(peak_rss_mb).values())


def peak_rss_mb() -> float:
    """This process's peak RSS in MB: Linux's VmHWM, which exec resets.

    Unlike ru_maxrss, see :data:`LAUNCHER`.

    Run on each Dask worker here, and by ``bench_ingest`` in its child.
    """
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,200000")
    parser.add_argument("--tickets", type=int, default=6000)
    parser.add_argument("--runners", default="threads,processes,standing-dask")
    args = parser.parse_args()
    from triage_ml import synth
    from triage_ml.settings import Settings

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as standing:
        home = Path(tmp) / "home"
        base = {**os.environ, "TRIAGE_HOME": str(home)}
        files = cli(
            base,
            "generate",
            "--tickets",
            str(args.tickets),
            "--new-tickets",
            "0",
            "--out",
            str(Path(tmp) / "data"),
        )[0]["files"]
        cli(base, "ingest", "tickets", files["tickets"])
        baseline = plain_baseline(files["tickets"])
        dask = StandingDask(standing, Path(tmp))
        trained = cli(base, "retrain")[0]
        version = trained["champion_version"]
        print(
            f"champion: version {version} ({trained['candidate']}), "
            f"{trained['challenger_metrics']['predict_tickets_per_second']:.0f} "
            "tickets/s on the retraining's test rows"
        )
        for size in (int(s) for s in args.sizes.split(",")):
            store_path = Path(tmp) / f"store-{size}.db"
            shutil.copy(home / "triage.db", store_path)
            env = {**base, "TRIAGE_DATABASE_URL": f"sqlite:///{store_path}"}
            new = Path(tmp) / f"new-{size}.csv"
            synth.generate_unlabeled(size, seed=size).to_csv(new, index=False)
            cli(env, "ingest", "tickets", str(new), "--unlabeled")
            new.unlink()
            settings = Settings(home=home, database_url=env["TRIAGE_DATABASE_URL"])
            model, inputs = raw_inputs(settings, version, 20_000)
            # This machine's speed drifts by tens of percent within minutes, so
            # each flow is compared with raw predict measured just before and
            # just after it (one measurement serves as the next flow's "before").
            raw_after = raw_predict(model, inputs, settings.score_chunk_rows)
            print(
                f"{size:>7} new tickets: raw predict {raw_after:,.0f} tickets/s "
                f"(one process, {len(inputs):,} stored tickets); "
                "plain word TF-IDF + logistic regression on the same rows "
                f"{raw_predict(baseline, inputs, settings.score_chunk_rows):,.0f}/s"
            )
            for runner in args.runners.split(","):
                raw_before = raw_after
                run_path = store_path.with_name(f"store-{size}-{runner}.db")
                shutil.copy(store_path, run_path)
                run_env = {
                    **env,
                    "TRIAGE_DATABASE_URL": f"sqlite:///{run_path}",
                    "TRIAGE_SCORE_RUNNER": runner,
                }
                if runner == "standing-dask":
                    run_env.update(dask.env(settings.score_workers))
                scored, seconds, peak = cli_measured(run_env, "score")
                if runner == "standing-dask":
                    found, workers_peak = dask.after_run()
                    peak = max(peak, workers_peak)
                    print(f"  standing Dask cluster, {found}:")
                run_path.unlink()
                raw_after = raw_predict(model, inputs, settings.score_chunk_rows)
                raw = (raw_before + raw_after) / 2
                flow = scored["scored"] / scored["seconds"]
                print(
                    f"  {runner:>9}: {scored['scored']:>7} tickets, flow {scored['seconds']:.1f} s "
                    f"= {flow:,.0f} tickets/s end to end "
                    "(store reads and writes, model load included; "
                    f"{scored['scored'] / seconds:,.0f}/s counting the CLI "
                    f"process's start too), peak RSS {peak:.0f} MB, "
                    f"{scored['partitions']} partitions"
                )
                print(
                    f"    raw predict just before and after: {raw_before:,.0f} and "
                    f"{raw_after:,.0f} tickets/s; "
                    f"flow/raw {flow / raw:.0%} (against their mean)"
                )
                print(
                    f"    targets: >= 5,000 tickets/s {'met' if flow >= 5000 else 'NOT met'}; "
                    f"flow >= 80% of raw {'met' if flow >= 0.8 * raw else 'NOT met'}"
                )
            store_path.unlink()


if __name__ == "__main__":
    main()
