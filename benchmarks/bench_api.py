"""A bounded load test of the ticket events API (`triage-ml api serve`) on loopback, per store.

Builds a workspace with a champion (or uses ``--home``), then for each store
(a fresh SQLite file, then a fresh database on a PostgreSQL server started for
the run) starts ``triage-ml api serve`` on a free 127.0.0.1 port, creates a
write token with ``triage-ml api token create``, and runs two phases with
``--clients`` threads, each on its own keep-alive connection:

- warm-up: paced as below for ``--warmup-seconds``, reported apart (a restarted
  server's clients reconnect at once, and may sit on one worker until their first
  reconnect);
- paced: open loop at ``--rate`` requests/s in all for ``--seconds``. Latency
  runs from each request's scheduled send time, so time spent queueing behind
  a slow answer counts;
- burst: unpaced for ``--burst-seconds``, to measure the most it sustains.

The mix is 60% creates, 30% updates (a status, category or priority change on
a ticket the same client created) and 10% closes, every write with its own
``Idempotency-Key`` (a write whose connection broke is sent again with the
same key). Prints per endpoint count, p50, p99 and max, throughput and errors
by status; then counts the rows in the store against the answers received and
prints what was lost or duplicated. PostgreSQL runs with fsync on, like the
SQLite store's defaults. The server's per-token rate limit is raised
(``--rate-limit``): one token carries all the clients here. The server runs
``--workers`` processes on PostgreSQL (2: one per core of this machine) and one
on SQLite, which takes one writer at a time.

    python benchmarks/bench_api.py [--home DIR] [--rate 50] [--seconds 60] [--warmup-seconds 10]
        [--burst-seconds 10] [--pg-fsync on|off]
        [--clients 8] [--workers 2] [--stores sqlite,postgresql] [--logs DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench_serving import cli, free_port

HOST = "127.0.0.1"  # loopback only, whatever the options
BIN = Path(sys.executable).parent
# The tests' pg_ctl wrapper: as root it runs pg_ctl as the postgres user, which PostgreSQL needs.
PG_WRAPPER = Path(__file__).resolve().parents[1] / "tests" / "pg_ctl_wrapper.sh"
PG_CTL_ENV = "TRIAGE_TEST_PG_CTL"
MIX = {"create": 0.6, "update": 0.3, "close": 0.1}
WANTED = {"create": 201, "update": 200, "close": 200}
# Legal steps through the lifecycle for the status updates (contracts: api/lifecycle.py).
NEXT_STATUS = {
    "new": "open",
    "open": "in_progress",
    "in_progress": "waiting_on_customer",
    "waiting_on_customer": "in_progress",
}
TEXT_COLUMNS = [
    "subject",
    "body",
    "channel",
    "customer_id",
    "customer_tier",
    "customer_ltv",
    "language",
]
TARGET_P99_MS = 100.0


def triage_ml(home: Path, url: str | None, *args: str) -> dict:
    """Run the CLI on ``home`` (and the store ``url``); its --json answer, or exit on error."""
    return cli(home, *args, env=environment(home, url))


def environment(home: Path, url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a triage-ml process on ``home`` and the store at ``url``."""
    env = {**os.environ, "TRIAGE_HOME": str(home), **extra}
    # One BLAS thread, as every command on these shared 2-core machines.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")
    if url is not None:
        env["TRIAGE_DATABASE_URL"] = url
    return env


def prepare(home: Path | None, tmp: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The workspace (built when ``home`` is None) and the new tickets the clients send."""
    data = tmp / "data"
    workspace = home or tmp / "home"
    history = "3000" if home is None else "100"  # with --home only the new tickets are used
    files = triage_ml(
        workspace,
        None,
        "generate",
        "--tickets",
        history,
        "--new-tickets",
        "2000",
        "--out",
        str(data),
    )["files"]
    if home is None:
        triage_ml(workspace, None, "ingest", "tickets", files["tickets"])
        retrained = triage_ml(workspace, None, "retrain")
        print(f"champion: version {retrained['champion_version']} ({retrained['candidate']})")
    frame = pd.read_csv(files["new_tickets"], usecols=TEXT_COLUMNS).astype(object)
    return workspace, frame.where(frame.notna(), None).to_dict(orient="records")


@dataclass
class Ticket:
    """What a client knows of a ticket it created and has not closed."""

    ticket_id: str
    status: str
    category: str | None
    priority: str | None
    categories: list[str]
    corrected: bool = False


@dataclass
class Tally:
    """What the clients saw, and what the store should therefore hold."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    samples: list[tuple[str, str, float, float]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    created: int = 0
    corrections: int = 0
    closed: int = 0
    resent: int = 0
    replayed: int = 0
    unknown: int = 0  # writes whose answer never came: the store may or may not hold them

    def record(self, phase: str, endpoint: str, started: float, status: int | str) -> None:
        """Note one answered request: its latency from ``started`` and whether it was wanted."""
        ended = time.perf_counter()
        with self.lock:
            self.samples.append((phase, endpoint, ended - started, ended))
            if status != WANTED[endpoint]:
                self.errors[f"{endpoint} {status}"] += 1

    def add(self, **counts: int) -> None:
        """Add to the expected row counts (thread-safe)."""
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class Client:
    """One helpdesk connection: its tickets, its share of the mix, its keep-alive connection."""

    def __init__(self, port: int, token: str, index: int, texts: list[dict], tally: Tally) -> None:
        self.port, self.index, self.texts, self.tally = port, index, texts, tally
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.random = random.Random(index)
        self.open: list[Ticket] = []
        self.sent = 0
        self.connection = http.client.HTTPConnection(HOST, port, timeout=60)

    def send(self, method: str, path: str, body: dict) -> tuple[int | str, dict]:
        """One write with a fresh Idempotency-Key, sent again with it if the connection broke."""
        data = json.dumps(body).encode()
        headers = {**self.headers, "Idempotency-Key": uuid.uuid4().hex}
        for attempt in range(2):
            try:
                self.connection.request(method, path, data, headers)
                response = self.connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                self.connection.close()  # http.client reconnects on the next request
                if attempt == 0:
                    self.tally.add(resent=1)
                    continue
                self.tally.add(unknown=1)
                return type(error).__name__, {}
            if response.getheader("Idempotent-Replayed") == "true":
                self.tally.add(replayed=1)
            return response.status, json.loads(payload) if payload else {}
        raise AssertionError("unreachable")

    def step(self, phase: str, scheduled: float) -> None:
        """One request of the mix (a create when there is no open ticket to change)."""
        endpoint = self.random.choices(list(MIX), weights=list(MIX.values()))[0]
        if not self.open:
            endpoint = "create"
        run: Callable[[], int | str] = getattr(self, endpoint)
        status = run()
        self.tally.record(phase, endpoint, scheduled, status)

    def create(self) -> int | str:
        self.sent += 1
        ticket_id = f"bench-c{self.index}-{self.sent}"
        text = self.texts[(self.index * 7919 + self.sent) % len(self.texts)]
        status, answer = self.send("POST", "/v1/tickets", {"ticket_id": ticket_id, **text})
        if status == 201:
            self.tally.add(created=1)
            self.open.append(remember(answer))
        return status

    def update(self) -> int | str:
        ticket = self.random.choice(self.open)
        body, corrects = change(ticket, self.random.randrange(3), self.index)
        status, answer = self.send("PUT", f"/v1/tickets/{ticket.ticket_id}", body)
        if status == 200:
            self.tally.add(corrections=int(corrects))
            ticket.status, ticket.category = answer["status"], answer["category"]
            ticket.priority = answer["priority"]
            ticket.corrected |= corrects
        return status

    def close(self) -> int | str:
        ticket = self.open.pop(self.random.randrange(len(self.open)))
        body: dict[str, Any] = {"resolution": "bench", "agent_id": f"agent-{self.index}"}
        if ticket.corrected:
            # Final labels other than the agent's last ones, so every close writes one feedback
            # row whatever the labels in effect came from.
            body["category"] = other(ticket.categories, ticket.category)
        status, _ = self.send("PUT", f"/v1/tickets/{ticket.ticket_id}/close", body)
        if status == 200:
            self.tally.add(closed=1)
        return status


def remember(answer: dict) -> Ticket:
    """The client's note of a ticket from its create answer."""
    triage = answer.get("triage") or {}
    choices = [candidate["category"] for candidate in triage.get("top3", [])]
    return Ticket(
        answer["ticket_id"], answer["status"], answer["category"], answer["priority"], choices
    )


def change(ticket: Ticket, kind: int, agent: int) -> tuple[dict[str, Any], bool]:
    """An agent's update: a status step (kind 0), a category (1) or a priority (2) correction."""
    body: dict[str, Any] = {"agent_id": f"agent-{agent}"}
    if kind == 0 and ticket.status in NEXT_STATUS:
        return {**body, "status": NEXT_STATUS[ticket.status]}, False
    if kind == 2 and ticket.priority is not None:
        return {**body, "priority": "high" if ticket.priority != "high" else "low"}, True
    return {**body, "category": other(ticket.categories, ticket.category), "reason": "bench"}, True


def other(choices: list[str], current: str | None) -> str:
    """A category from the model's top 3 other than ``current``."""
    return next((choice for choice in choices if choice != current), current or "Technical")


def paced(clients: list[Client], rate: float, seconds: float, phase: str = "paced") -> float:
    """Open loop: client i sends at start + i/rate + k * clients/rate. Returns the start time."""
    start = time.perf_counter() + 0.2
    interval = len(clients) / rate

    def run(client: Client) -> None:
        scheduled = start + client.index / rate
        while scheduled < start + seconds:
            time.sleep(max(0.0, scheduled - time.perf_counter()))
            client.step(phase, scheduled)
            scheduled += interval

    together(clients, run)
    return start


def burst(clients: list[Client], seconds: float) -> float:
    """Every client sends its next request as soon as the last was answered. Returns the start."""
    start = time.perf_counter()

    def run(client: Client) -> None:
        while time.perf_counter() < start + seconds:
            client.step("burst", time.perf_counter())

    together(clients, run)
    return start


def together(clients: list[Client], run: Callable[[Client], None]) -> None:
    threads = [threading.Thread(target=run, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def report_phase(tally: Tally, phase: str, started: float, store: str, rate: float | None) -> None:
    """Per endpoint count, p50, p99, max; throughput; for the paced phase (``rate`` given),
    whether the server kept up and the create p99 against its target."""
    samples = [s for s in tally.samples if s[0] == phase]
    ended = max((s[3] for s in samples), default=started)
    achieved = len(samples) / max(ended - started, 1e-9)
    kept_up = rate is None or achieved >= 0.95 * rate
    print(
        f"  {phase}: {len(samples)} requests in {ended - started:.1f} s, {achieved:.1f} requests/s"
        + ("" if kept_up else f" (saturated: below the {rate:g} sent; latency is mostly queueing)")
    )
    for endpoint in MIX:
        ms = np.array([s[2] for s in samples if s[1] == endpoint]) * 1000
        if len(ms) == 0:
            continue
        p50, p99 = np.percentile(ms, [50, 99])
        verdict = ""
        if rate is not None and endpoint == "create":
            met = "met" if p99 < TARGET_P99_MS else "NOT met"
            verdict = f"   (target p99 < {TARGET_P99_MS:.0f} ms on PostgreSQL: {met})"
            verdict = verdict if store == "postgresql" else "   (target applies to PostgreSQL)"
        print(
            f"    {endpoint:<6} {len(ms):>6}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
            f"max {ms.max():7.1f} ms{verdict}"
        )


def store_counts(url: str) -> dict[str, int]:
    """Rows per check, read from the store after the server stopped."""
    from triage_ml.store import tables
    from triage_ml.store.engine import opened
    from triage_ml.store.queries import count_rows

    ours = "bench-%"
    state = tables.ticket_state.c
    with opened(url) as engine, engine.connect() as conn:
        return {
            "tickets": count_rows(conn, tables.tickets, tables.tickets.c.ticket_id.like(ours)),
            "predictions": count_rows(
                conn, tables.predictions, tables.predictions.c.ticket_id.like(ours)
            ),
            "ticket_state": count_rows(conn, tables.ticket_state, state.ticket_id.like(ours)),
            "created events": count_rows(
                conn,
                tables.ticket_events,
                tables.ticket_events.c.ticket_id.like(ours),
                tables.ticket_events.c.kind == "created",
            ),
            "feedback": count_rows(conn, tables.feedback, tables.feedback.c.ticket_id.like(ours)),
            "closed": count_rows(
                conn, tables.ticket_state, state.ticket_id.like(ours), state.status == "closed"
            ),
        }


def expected_counts(tally: Tally) -> dict[str, int]:
    """The rows the answers promise: one of each per create, one feedback row per correction
    and per close (the closes are chosen so that each writes one), one closed state per close."""
    return {
        "tickets": tally.created,
        "predictions": tally.created,
        "ticket_state": tally.created,
        "created events": tally.created,
        "feedback": tally.corrections + tally.closed,
        "closed": tally.closed,
    }


def report_store(found: dict[str, int], tally: Tally) -> None:
    """Rows against answers: what is missing (lost) or extra (duplicated), table by table."""
    expected = expected_counts(tally)
    lost = {name: expected[name] - found[name] for name in found if found[name] < expected[name]}
    extra = {name: found[name] - expected[name] for name in found if found[name] > expected[name]}
    print(
        f"  store: {found['tickets']} tickets for {tally.created} creates answered 201, "
        f"{found['feedback']} feedback rows for {tally.corrections} corrections + "
        f"{tally.closed} closes, {found['closed']} closed"
    )
    print(
        f"  lost {sum(lost.values())}, duplicated {sum(extra.values())}"
        + (f"  lost {lost}" if lost else "")
        + (f"  duplicated {extra}" if extra else "")
        + (f"  ({tally.unknown} writes unanswered)" if tally.unknown else "")
    )


def report_errors(tally: Tally) -> None:
    errors = sum(tally.errors.values())
    print(
        f"  errors {errors} {dict(tally.errors) if errors else ''}(target: none); "
        f"resent after a broken connection {tally.resent}, replayed {tally.replayed}"
    )


def wait_until_ready(port: int, server: subprocess.Popen, log: Path, timeout: float) -> str:
    """Poll GET /v1/health until the server answers; the champion version it serves."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(
                f"triage-ml api serve exited ({server.returncode}):\n{log.read_text()[-3000:]}"
            )
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(HOST, port, timeout=5)
            connection.request("GET", "/v1/health")
            response = connection.getresponse()
            body = response.read()
            connection.close()
            if response.status == 200:
                return str(json.loads(body).get("champion"))
        time.sleep(0.25)
    sys.exit(f"triage-ml api serve did not answer in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def api_server(
    home: Path, url: str, log: Path, rate_limit: str, workers: int
) -> Iterator[tuple[int, str]]:
    """``triage-ml api serve`` on a free loopback port; (port, champion version); stopped after."""
    port = free_port()
    command = [str(BIN / "triage-ml"), "api", "serve", "--host", HOST, "--port", str(port)]
    command += ["--workers", str(workers)]
    env = environment(home, url, TRIAGE_API__RATE_LIMIT=rate_limit)
    with log.open("w") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield port, wait_until_ready(port, server, log, timeout=180)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(30)


def real_pg_ctl() -> str:
    """The newest installed pg_ctl (PATH first); exits when PostgreSQL is not installed."""
    found = shutil.which("pg_ctl") or max(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: float(Path(path).parents[1].name),
        default=None,
    )
    if found is None:
        sys.exit("no PostgreSQL server binaries (pg_ctl) on PATH or in /usr/lib/postgresql/*/bin")
    return os.path.realpath(found)


@contextlib.contextmanager
def postgres_database(folder: Path, fsync: str = "on") -> Iterator[str]:
    """A PostgreSQL server for the run on a free loopback port (pytest-postgresql's executor,
    durable by default: fsync on); the URL of a fresh database on it. Stopped afterwards."""
    from pytest_postgresql.executors import PostgreSQLExecutor
    from pytest_postgresql.janitor import DatabaseJanitor

    pg_ctl = real_pg_ctl()
    executable = pg_ctl
    if os.geteuid() == 0:  # PostgreSQL refuses root: the wrapper runs pg_ctl as postgres
        os.environ[PG_CTL_ENV] = pg_ctl
        executable = str(PG_WRAPPER)
    folder.mkdir(parents=True)
    executor = PostgreSQLExecutor(
        executable=executable,
        host=HOST,
        port=free_port(),
        datadir=str(folder / "data"),
        unixsocketdir=str(folder),
        logfile=str(folder / "postgresql.log"),
        startparams="-w",
        dbname="triage_bench",
        # The executor starts postgres with -F (no fsync); a later -c wins, so this run is
        # as durable as a real server, like the SQLite store.
        postgres_options=f"-c listen_addresses={HOST} -c fsync={fsync} -c max_connections=200",
    )
    try:
        executor.start()
        DatabaseJanitor(
            user="postgres", host=HOST, port=executor.port, dbname="triage_bench"
        ).init()
        yield f"postgresql+psycopg://postgres@{HOST}:{executor.port}/triage_bench"
    finally:
        executor.stop()


def bench_store(store: str, url: str, home: Path, texts: list[dict], args: Any) -> None:
    """Both phases against one store, then its rows counted against the answers."""
    token = triage_ml(home, url, "api", "token", "create", "--name", "bench", "--scope", "write")
    tally = Tally()
    log = (args.logs or args.tmp) / f"api-{store}.log"
    # SQLite takes one writer at a time: more processes only queue on its lock (docs/api.md).
    workers = 1 if store == "sqlite" else args.workers
    with api_server(home, url, log, args.rate_limit, workers) as (port, champion):
        print(
            f"{store}: triage-ml api serve --workers {workers} on {HOST}:{port}, "
            f"champion version {champion}"
        )
        clients = [Client(port, token["token"], i, texts, tally) for i in range(args.clients)]
        for client in clients:  # one create each first: connections open, code paths warm
            client.step("connect", time.perf_counter())
        if args.warmup_seconds > 0:
            # Reported, not measured: the clients' first connections may all sit on one worker
            # until their first reconnect (api.keepalive_requests), as after any restart.
            started = paced(clients, args.rate, args.warmup_seconds, "warm-up")
            print(f"  warm-up at {args.rate:g} requests/s for {args.warmup_seconds:g} s:")
            report_phase(tally, "warm-up", started, store, rate=None)
        started = paced(clients, args.rate, args.seconds)
        print(
            f"  paced at {args.rate:g} requests/s by {args.clients} clients for {args.seconds:g} s:"
        )
        report_phase(tally, "paced", started, store, rate=args.rate)
        if args.burst_seconds > 0:
            for client in clients:  # a client done early sat idle past the keep-alive timeout
                client.connection.close()
            started = burst(clients, args.burst_seconds)
            print(f"  unpaced, {args.clients} clients for {args.burst_seconds:g} s:")
            report_phase(tally, "burst", started, store, rate=None)
        for client in clients:
            client.connection.close()
    report_errors(tally)
    report_store(store_counts(url), tally)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="a workspace with a champion")
    parser.add_argument("--rate", type=float, default=50.0, help="requests/s in all (paced)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the paced phase")
    parser.add_argument("--burst-seconds", type=float, default=10.0, help="unpaced phase (0: none)")
    parser.add_argument(
        "--warmup-seconds", type=float, default=10.0, help="paced, before the measured phase"
    )
    parser.add_argument(
        "--pg-fsync", default="on", choices=("on", "off"), help="PostgreSQL's fsync setting"
    )
    parser.add_argument("--clients", type=int, default=8)
    # One Python process answers on one core at a time; this machine has two.
    parser.add_argument("--workers", type=int, default=2, help="the server's processes")
    parser.add_argument("--stores", default="sqlite,postgresql", help="comma-separated")
    # One token carries every client here; the default limit per token (3000/minute) is exactly
    # the paced load, so the bench raises it: the limiter still counts every request.
    parser.add_argument("--rate-limit", default="1000/second", help="the server's per-token limit")
    parser.add_argument("--logs", type=Path, default=None, help="keep the servers' logs here")
    args = parser.parse_args()
    if args.logs is not None:
        args.logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        args.tmp = Path(tmp)
        home, texts = prepare(args.home, args.tmp)
        print(
            f"{args.clients} clients, creates/updates/closes 60/30/10, paced {args.rate:g} "
            f"requests/s for {args.seconds:g} s then unpaced for {args.burst_seconds:g} s; "
            f"server: {args.workers} worker process(es) on PostgreSQL, 1 on SQLite, "
            f"limit {args.rate_limit} per token; "
            f"{os.cpu_count()} cores"
        )
        stores = [name.strip() for name in args.stores.split(",") if name.strip()]
        for store in stores:
            if store == "sqlite":
                bench_store(store, f"sqlite:///{args.tmp / 'api-bench.db'}", home, texts, args)
            elif store == "postgresql":
                with postgres_database(args.tmp / "postgresql", args.pg_fsync) as url:
                    bench_store(store, url, home, texts, args)
            else:
                sys.exit(f"unknown store '{store}' (known: sqlite, postgresql)")


if __name__ == "__main__":
    main()
