"""The production topology in one test: a Prefect server with a process worker, an MLflow tracking
server on PostgreSQL, and the ticket store on PostgreSQL, all real processes on loopback.

The cycle runs the way production runs it: `triage-ml deploy` registers the deployments, a
`prefect worker` picks up their runs, and files arrive through the inbox. Nothing in this
process talks to Prefect directly; what the servers hold afterwards is read back from them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from mlflow import MlflowClient

from fixtures_prefect_server import PrefectServer
from servers import MlflowServer, background, mlflow_server
from triage_ml import store, synth

pytestmark = [pytest.mark.flows, pytest.mark.slow]

BIN = Path(sys.executable).parent
POOL = "topology"


@dataclass(frozen=True)
class Topology:
    """The three services and the environment a triage-ml worker machine would have."""

    prefect: PrefectServer
    mlflow: MlflowServer
    store_url: str
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        """A worker machine's environment: every service by URL, nothing embedded."""
        return self.prefect.cli_env(
            TRIAGE_HOME=str(self.home),
            TRIAGE_DATABASE_URL=self.store_url,
            TRIAGE_MLFLOW_TRACKING_URI=self.mlflow.url,
            TRIAGE_TRAIN__CANDIDATES='["complement_nb"]',
            TRIAGE_SCHEDULES__WORK_POOL=POOL,
            # Daily schedules: no scheduled run comes due in the test to compete with its own runs.
            TRIAGE_SCHEDULES__SCORE_INTERVAL_MINUTES="1440",
            TRIAGE_SCHEDULES__INGEST_INTERVAL_MINUTES="1440",
            **extra,
        )


@pytest.fixture(scope="module")
def topology(
    prefect_server: PrefectServer, postgres_server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Topology]:
    root = tmp_path_factory.mktemp("topology")
    with mlflow_server(
        root / "mlflow", backend_store_uri=postgres_server.create_database()
    ) as tracking:
        yield Topology(prefect_server, tracking, postgres_server.create_database(), root / "home")


@pytest.fixture
def worker(topology: Topology, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`prefect worker start` on the topology's pool, polling every 2 s, for one test."""
    env = topology.env(
        PREFECT_API_URL=topology.prefect.api_url,
        PREFECT_HOME=str(tmp_path / "worker"),
        PREFECT_WORKER_QUERY_SECONDS="2",
    )
    command = [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"]
    with background(command, env, tmp_path / "worker.log", tmp_path) as process:
        yield process


def run_deployment(
    topology: Topology, name: str, worker: subprocess.Popen[bytes], log: Path, timeout: float = 420
) -> dict[str, Any]:
    """Start a run of deployment ``<flow>/triage-ml``; wait for the worker to finish it."""
    deployment = topology.prefect.api("GET", f"/deployments/name/{name}/triage-ml")
    run = topology.prefect.api("POST", f"/deployments/{deployment['id']}/create_flow_run", {})
    state = topology.prefect.wait_for_run(run["id"], timeout, worker, log)
    assert state["state_type"] == "COMPLETED", (
        f"{name}: {state['state']}\n{log.read_text()[-4000:]}"
    )
    return state


def drop(topology: Topology, kind: str, frame: Any, name: str) -> None:
    """Write a file into the inbox the way a producer should: under a hidden name, then rename."""
    folder = topology.home / "inbox" / kind
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / f".{name}", index=False)
    (folder / f".{name}").rename(folder / name)


def test_deploy_ingest_retrain_promote_score_on_real_servers(
    topology: Topology, worker, tmp_path: Path
) -> None:
    deployed = subprocess.run(
        [str(BIN / "triage-ml"), "deploy", "--json"],
        env=topology.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert json.loads(deployed.stdout)["work_pool"]["name"] == POOL

    history = synth.generate(900, months=3, seed=31)
    drop(topology, "tickets", history.tickets, "history.csv")
    drop(topology, "new-tickets", synth.generate_unlabeled(150, seed=32), "new.csv")
    log = tmp_path / "worker.log"
    ingested = run_deployment(topology, "ingest-inbox", worker, log)
    retrained = run_deployment(topology, "monthly-retrain", worker, log)
    scored = run_deployment(topology, "scheduled-scoring", worker, log)

    # Prefect: three runs by the worker, and the retraining's decision published as an artifact.
    assert {run["work_pool_name"] for run in (ingested, retrained, scored)} == {POOL}
    artifacts = topology.prefect.api(
        "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [retrained["id"]]}}}
    )
    assert "promotion-decision" in {a["key"] for a in artifacts}

    # MLflow: the champion is version 1 in the server's registry, whose tables are in PostgreSQL.
    client = MlflowClient(
        topology.mlflow.url, topology.mlflow.url
    )  # not the process-wide registry URI another test set
    assert client.get_model_version_by_alias("ticket-triage", "champion").version == "1"
    mlflow_db = sa.create_engine(topology.mlflow.backend_store_uri)
    with mlflow_db.connect() as conn:
        assert conn.execute(
            sa.text("SELECT alias, version FROM registered_model_aliases")
        ).all() == [("champion", 1)]
    mlflow_db.dispose()
    assert not (topology.home / "mlflow.db").exists()

    # The PostgreSQL ticket store: every ticket scored once by the champion, the promotion audited.
    with store.opened(topology.store_url) as engine, engine.connect() as conn:
        assert engine.dialect.name == "postgresql"
        tickets = store.count_rows(conn, store.tickets)
        assert tickets == len(history.tickets) + 150
        assert (
            store.count_rows(conn, store.predictions, store.predictions.c.model_version == "1")
            == tickets
        )
        audit = store.recent_decisions(conn)
    assert [(row["action"], row["promoted"], row["challenger_version"]) for row in audit] == [
        ("gate", True, "1")
    ]
    processed = sorted(
        p.parent.name for p in (topology.home / "inbox" / "processed").rglob("*.csv")
    )
    assert processed == ["new-tickets", "tickets"] and not list(
        (topology.home / "inbox" / "failed").rglob("*")
    )
