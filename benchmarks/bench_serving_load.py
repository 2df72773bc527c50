"""A bounded load test of `triage-ml serve` on loopback, with one oversized request in the mix.

Starts the guarded scoring server (``python -m triage_ml.scoring.app``, as
``triage-ml serve`` does) on the champion, on a free 127.0.0.1 port, with a
token. Eight clients (``--clients``) each send a fixed number of
single-ticket requests over their own keep-alive connection; while they run,
one more client sends a 16 MB request (``--oversized-mb``), which the server
must refuse with 413 without stalling the others. Prints p50/p99 of the
small requests (overall, and while the oversized one was in flight), the
error counts, and how the oversized request was answered.

Uses the workspace ``--home`` if given (it must have a champion), else builds
one as benchmarks/bench_serving.py does.

    python benchmarks/bench_serving_load.py [--home DIR] [--clients 8] [--requests 50]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench_serving import cli, free_port

HOST = "127.0.0.1"  # loopback only, whatever the options
TOKEN = "bench-token-" + os.urandom(12).hex()
TICKETS = [
    {"subject": "Charged twice", "body": "I was charged twice this month, refund one please."},
    {"subject": "Parcel late", "body": "My order has not arrived after two weeks, where is it?"},
    {"subject": "Login fails", "body": "The app says my password is wrong after the update."},
    {"subject": "Return", "body": "The shoes do not fit, how do I send them back?"},
]


@dataclass
class Tally:
    """What the clients saw: small-request latencies with their start times, and errors."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[tuple[float, float]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def record(self, started: float, seconds: float) -> None:
        with self.lock:
            self.latencies.append((started, seconds))

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1


def build_workspace(home: Path, data: Path) -> None:
    files = cli(home, "generate", "--tickets", "3000", "--out", str(data))["files"]
    cli(home, "ingest", "tickets", files["tickets"])
    retrained = cli(home, "retrain")
    print(f"champion: version {retrained['champion_version']} ({retrained['candidate']})")


def post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    connection.request("POST", "/invocations", body, headers)
    response = connection.getresponse()
    return response.status, response.read()


def client(port: int, requests: int, offset: int, tally: Tally) -> None:
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    for i in range(requests):
        body = json.dumps({"dataframe_records": [TICKETS[(offset + i) % len(TICKETS)]]}).encode()
        started = time.perf_counter()
        try:
            status, _ = post(connection, body)
        except OSError as error:
            tally.error(type(error).__name__)
            connection.close()
            connection = http.client.HTTPConnection(HOST, port, timeout=120)
            continue
        tally.record(started, time.perf_counter() - started)
        if status != 200:
            tally.error(f"HTTP {status}")
    connection.close()


def oversized(port: int, megabytes: int, result: dict) -> None:
    text = "refund " * (megabytes * 1_000_000 // 7)
    body = json.dumps({"dataframe_records": [{"subject": "big", "body": text}]}).encode()
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    result["bytes"] = len(body)
    result["started"] = time.perf_counter()
    try:
        result["status"], answer = post(connection, body)
        result["message"] = json.loads(answer).get("message", "")
    except OSError as error:
        result["status"], result["message"] = None, f"{type(error).__name__}: {error}"
    result["ended"] = time.perf_counter()
    connection.close()


def run_load(port: int, args: argparse.Namespace) -> tuple[Tally, dict]:
    tally, big = Tally(), {}
    clients = [
        threading.Thread(target=client, args=(port, args.requests, i, tally))
        for i in range(args.clients)
    ]
    for thread in clients:
        thread.start()
    time.sleep(args.oversized_after)
    sender = threading.Thread(target=oversized, args=(port, args.oversized_mb, big))
    sender.start()
    for thread in [*clients, sender]:
        thread.join()
    return tally, big


def report(tally: Tally, big: dict, args: argparse.Namespace, seconds: float) -> None:
    latencies = np.array([s for _, s in tally.latencies]) * 1000
    during = np.array(
        [s for t, s in tally.latencies if big["started"] <= t + s and t <= big["ended"]]
    )
    p50, p99 = np.percentile(latencies, [50, 99])
    print(
        f"{args.clients} clients x {args.requests} single-ticket requests in {seconds:.1f} s: "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies.max():.1f} ms; "
        f"errors {sum(tally.errors.values())} {dict(tally.errors) or ''}".rstrip()
    )
    if len(during):
        d50, d99 = np.percentile(during * 1000, [50, 99])
        print(
            f"while the oversized request was in flight: {len(during)} requests, "
            f"p50 {d50:.1f} ms, p99 {d99:.1f} ms, max {during.max() * 1000:.1f} ms"
        )
    print(
        f"oversized request ({big['bytes'] / 1e6:.1f} MB): HTTP {big['status']} after "
        f"{(big['ended'] - big['started']) * 1000:.0f} ms: {big['message']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="a workspace with a champion")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    parser.add_argument("--oversized-mb", type=int, default=16)
    parser.add_argument("--oversized-after", type=float, default=0.5, help="seconds")
    args = parser.parse_args()
    from triage_ml.scoring import serving
    from triage_ml.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        if args.home is None:
            build_workspace(home, Path(tmp) / "data")
        settings = Settings(home=home)
        port = free_port()
        command = serving.serve_command(serving.model_uri(settings, "champion"), HOST, port, 1)
        environment = {**serving.serve_environment(settings), serving.TOKEN_ENV: TOKEN}
        with (Path(tmp) / "server.log").open("w") as log:
            server = subprocess.Popen(command, env=environment, stdout=log, stderr=log)
        try:
            serving.wait_until_ready(f"http://{HOST}:{port}/ping", server)
            started = time.perf_counter()
            tally, big = run_load(port, args)
            report(tally, big, args, time.perf_counter() - started)
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
