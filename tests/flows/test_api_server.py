"""The ticket events API end to end: the real server on a loopback port, SQLite and PostgreSQL.

``triage-ml api serve`` runs as a subprocess on a workspace trained for this module
(its own, not the session's shared one: the retrain here moves its champion). Over
HTTP a ticket lives its whole life: created and triaged, corrected by an agent, moved
through its statuses, closed with its final labels and resolution. Then the monitor
flow counts the correction against the prediction served, a retraining learns from
it, and the running server answers with the champion it leaves. Zendesk and Freshdesk
sample payloads drive the same life through the webhooks; concurrent creates lose and
duplicate nothing. Bad requests each get their status and message and leave every
table as it was. Everything runs once on a SQLite store and once on a PostgreSQL database.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pandas as pd
import psutil
import pytest
import sqlalchemy as sa
from threadpoolctl import threadpool_limits

from servers import REPO, VENV_BIN, free_port, running, tail
from triage_ml import registry, store
from triage_ml.settings import Settings
from triage_ml.store import tables
from triage_ml.synth.schema import CATEGORIES
from triage_ml.training import candidates, dataset, fit
from triage_ml.training.inputs import prepare

pytestmark = [pytest.mark.flows, pytest.mark.slow]

FAST_ENV = {
    "TRIAGE_TRAIN__CANDIDATES": '["complement_nb"]',
    "TRIAGE_TRAIN__PRIORITY_MODEL": "stacked",
}
# Every table an API write touches: a refused request must leave each one as it was.
WRITTEN = (
    tables.tickets,
    tables.feedback,
    tables.predictions,
    tables.shadow_predictions,
    tables.ticket_state,
    tables.ticket_events,
    tables.batches,
    tables.idempotency_keys,
)
AGENT = "agent-itest-7"
CUSTOMER = "CUST-PRIVATE-4411"


@dataclass
class Api:
    """The running server of one store, its workspace and two tokens (write and read)."""

    base: str
    store_kind: str
    env: dict[str, str]
    log: Path
    writer: str
    reader: str

    def settings(self) -> Settings:
        """The workspace's settings, as the server built them from the same environment."""
        return settings_of(self.env)

    def client(self, token: str | None = "writer") -> httpx.Client:
        """An HTTP client of the server, authenticated with the named token (None: no header)."""
        headers = {}
        if token is not None:
            secret = {"writer": self.writer, "reader": self.reader}.get(token, token)
            headers["Authorization"] = f"Bearer {secret}"
        return httpx.Client(base_url=self.base, headers=headers, timeout=60)


def settings_of(env: dict[str, str], patch: pytest.MonkeyPatch | None = None) -> Settings:
    """The settings ``env``'s TRIAGE_ variables make; they stay set while ``patch`` is open."""
    if patch is None:
        with pytest.MonkeyPatch.context() as temporary:
            return settings_of(env, temporary)
    for name in [name for name in env if name.startswith("TRIAGE_")]:
        patch.setenv(name, env[name])
    return Settings()


def flows_conftest(config: pytest.Config):
    """This folder's conftest module, as pytest loaded it (every conftest is named "conftest")."""
    found = config.pluginmanager.get_plugin(str(Path(__file__).with_name("conftest.py")))
    assert found is not None
    return found


def cli_json(env: dict[str, str], *argv: str) -> dict[str, Any]:
    """``triage-ml <argv> --json`` as a subprocess of ``env``; its JSON answer."""
    done = subprocess.run(
        [str(VENV_BIN / "triage-ml"), *argv, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def token(env: dict[str, str], name: str, scope: str) -> str:
    """A new API token of ``scope``, made by ``triage-ml api token create``."""
    made = cli_json(env, "api", "token", "create", "--name", name, "--scope", scope)
    assert (made["name"], made["scope"]) == (name, scope)
    assert made["token"].startswith("tml_")
    return made["token"]


def register_challenger(env: dict[str, str], tickets: pd.DataFrame) -> str:
    """Fit a small model on ``tickets``, register it (version 2), make it the shadow challenger."""
    settings = settings_of(env)
    with threadpool_limits(1):
        spec = candidates.category_specs(("complement_nb",), grids={})[-1]
        predictor = fit.fit_predictor(prepare(tickets), spec, {"review_threshold": 0.5}, seed=0)
    registry.use_workspace(settings)
    with mlflow.start_run() as run:
        uri = registry.log_triage_model(predictor, registry.input_example(tickets))
    version = registry.register(uri, settings.model_name, run.info.run_id).version
    assert cli_json(env, "shadow", "start", version)["challenger"] == version
    return version


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, prefect_harness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """A workspace with version 1 as champion, its API server running on a free loopback port."""
    root = tmp_path_factory.mktemp(f"api-{request.param}")
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_server").create_database("api")
    home = flows_conftest(request.config).train_home(root / "home", url)
    env = {
        **os.environ,
        **FAST_ENV,
        "TRIAGE_HOME": str(home),
        # A promotion by this module's retrain reaches the server within a second.
        "TRIAGE_API__MODEL_REFRESH_SECONDS": "1",
    }
    if url:
        env["TRIAGE_DATABASE_URL"] = url
    tickets = pd.read_csv(home.parent / "data" / "tickets.csv")
    assert register_challenger(env, tickets) == "2"
    writer, reader = token(env, "itest-writer", "write"), token(env, "itest-reader", "read")
    port, log = free_port(), root / "api-server.log"
    base = f"http://127.0.0.1:{port}"
    command = [str(VENV_BIN / "triage-ml"), "api", "serve", "--host", "127.0.0.1"]
    with running([*command, "--port", str(port)], env, log, f"{base}/v1/health", timeout=120):
        yield Api(base, request.param, env, log, writer, reader)


# ---- the store, read directly ----------------------------------------------------------


def counts(api: Api) -> dict[str, int]:
    """Rows of every table an API write touches."""
    with store.opened(api.settings().store_url) as engine, engine.connect() as conn:
        return {table.name: store.count_rows(conn, table) for table in WRITTEN}


def rows(api: Api, table: sa.Table, ticket_id: str) -> list[dict[str, Any]]:
    """The rows of ``table`` about one ticket."""
    with store.opened(api.settings().store_url) as engine, engine.connect() as conn:
        found = conn.execute(sa.select(table).where(table.c.ticket_id == ticket_id))
        return [dict(row._mapping) for row in found]


def batch(api: Api, batch_id: str) -> dict[str, Any]:
    """The batches row of ``batch_id``."""
    with store.opened(api.settings().store_url) as engine, engine.connect() as conn:
        found = conn.execute(sa.select(tables.batches).where(tables.batches.c.batch_id == batch_id))
        return dict(found.one()._mapping)


def feedback_rows(api: Api, ticket_id: str) -> list[dict[str, Any]]:
    """The feedback rows of one ticket, oldest first."""
    return sorted(rows(api, tables.feedback, ticket_id), key=lambda row: row["corrected_at"])


@contextmanager
def unchanged(api: Api) -> Iterator[None]:
    """Assert that the block leaves every table an API write touches as it was."""
    before = counts(api)
    yield
    assert counts(api) == before, f"the store changed; server log:\n{tail(api.log)}"


def answer(response: httpx.Response, status: int) -> dict[str, Any]:
    """The JSON body of ``response``, asserting its status (the body in the failure message)."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def refused(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """The ``error`` of an ``ErrorOut`` answer of ``status``, naming ``field`` when given."""
    error = answer(response, status)["error"]
    assert error["message"] and "\n" not in error["message"]
    if field is not None:
        assert error["field"] == field, error
    return error


def at(value: str | None) -> datetime | None:
    """An API timestamp (ISO 8601, UTC) as an aware datetime."""
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def naive(value: str) -> datetime:
    """An API timestamp as the store keeps it (naive UTC)."""
    moment = at(value)
    assert moment is not None and moment.utcoffset() == timedelta(0)
    return moment.replace(tzinfo=None)


# ---- the whole life of a ticket ---------------------------------------------------------


def new_ticket(ticket_id: str, minutes_ago: int, body: str) -> dict[str, Any]:
    """A create body with every field a helpdesk sends."""
    created = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return {
        "ticket_id": ticket_id,
        "subject": "Charged twice this month",
        "body": body,
        "created_at": created.isoformat(),
        "channel": "email",
        "customer_id": CUSTOMER,
        "customer_tier": "premium",
        "customer_ltv": 420.0,
        "language": "en",
    }


BILLING = "I was charged twice for my subscription this month, please refund the second payment."
LOGIN = "The app crashes with an error every time I try to log in since the last update."


def other_category(category: str) -> str:
    """A known category that is not ``category``."""
    return next(name for name in CATEGORIES if name != category)


def live_a_life(api: Api) -> dict[str, Any]:
    """Create, correct, move and close ticket "<kind>-life"; two more tickets beside it.

    Returns every answer, for the tests to judge.
    """
    life, moved, plain = (
        f"{api.store_kind}-life",
        f"{api.store_kind}-moved",
        f"{api.store_kind}-plain",
    )
    now = datetime.now(UTC)
    # The three tickets' created_at lie 30, 20 and 10 minutes back: inside this range only.
    window = {
        "created_from": (now - timedelta(minutes=31)).isoformat(),
        "created_to": (now - timedelta(minutes=9)).isoformat(),
    }
    out: dict[str, Any] = {"ids": (life, moved, plain), "window": window}
    with api.client() as http:
        body = new_ticket(life, 30, BILLING)
        key = {"Idempotency-Key": f"create-{life}"}
        first = http.post("/v1/tickets", json=body, headers=key)
        out["created"] = answer(first, 201)
        out["after_create"] = counts(api)
        replay = http.post("/v1/tickets", json=body, headers=key)
        out["replayed"] = (
            replay.status_code,
            replay.headers.get("Idempotent-Replayed"),
            replay.json(),
        )
        out["after_replay"] = counts(api)
        out["corrected_to"] = other_category(out["created"]["triage"]["category"])
        change = {"category": out["corrected_to"], "agent_id": AGENT, "reason": "misrouted"}
        out["corrected"] = answer(http.put(f"/v1/tickets/{life}", json=change), 200)
        out["statuses"] = [
            answer(http.put(f"/v1/tickets/{life}", json={"status": s, "agent_id": AGENT}), 200)
            for s in ("open", "in_progress", "resolved")
        ]
        out["same_status"] = answer(
            http.put(f"/v1/tickets/{life}", json={"status": "resolved"}), 200
        )
        close = {"resolution": "refunded the second payment", "agent_id": AGENT}
        out["closed"] = answer(http.put(f"/v1/tickets/{life}/close", json=close), 200)
        out["detail"] = answer(http.get(f"/v1/tickets/{life}"), 200)
        out["moved_created"] = answer(
            http.post("/v1/tickets", json=new_ticket(moved, 20, LOGIN)), 201
        )
        out["moved_to"] = "low" if out["moved_created"]["priority"] != "low" else "critical"
        moving = {"priority": out["moved_to"], "agent_id": AGENT}
        out["moved"] = answer(http.put(f"/v1/tickets/{moved}", json=moving), 200)
        out["plain_created"] = answer(
            http.post("/v1/tickets", json=new_ticket(plain, 10, LOGIN)), 201
        )
        out["plain_closed"] = answer(http.put(f"/v1/tickets/{plain}/close", json={}), 200)
    return out


@pytest.fixture(scope="module")
def lived(api: Api) -> dict[str, Any]:
    """The answers of :func:`live_a_life` on this module's server (lived once per store)."""
    return live_a_life(api)


def test_health_names_the_champion_without_a_token(api: Api) -> None:
    with api.client(None) as http:
        assert answer(http.get("/v1/health"), 200) == {"status": "ok", "champion": "1"}


def test_a_create_is_triaged_by_the_champion_and_stored_as_ingest_stores_it(
    api: Api, lived: dict[str, Any]
) -> None:
    life = lived["ids"][0]
    created, triage = lived["created"], lived["created"]["triage"]
    assert (created["ticket_id"], created["status"]) == (life, "new")
    assert triage["model_version"] == "1" and triage["category"] in CATEGORIES
    assert len(triage["top3"]) == 3 and triage["top3"][0]["category"] == triage["category"]
    assert 0 < triage["category_proba"] <= 1 and triage["tier"] in {"auto", "suggest", "review"}
    assert triage["route"] and created["category"] == triage["category"]
    assert created["priority"] == triage["priority"] and created["tier"] == triage["tier"]
    settings = api.settings()
    hours = settings.sla_hours_for(created["priority"])
    assert at(created["sla_due_at"]) == at(created["created_at"]) + timedelta(hours=hours)

    (prediction,) = rows(api, tables.predictions, life)
    assert (prediction["model_version"], prediction["tier"]) == ("1", triage["tier"])
    assert prediction["category"] == triage["category"]
    # The shadow challenger answered too, apart: never in what a caller reads.
    (shadow,) = rows(api, tables.shadow_predictions, life)
    assert shadow["model_version"] == "2" and shadow["category"] in CATEGORIES
    (ticket,) = rows(api, tables.tickets, life)
    assert ticket["body"] == BILLING and ticket["customer_id"] == CUSTOMER
    assert ticket["category"] is None and ticket["content_hash"]
    made = batch(api, ticket["batch_id"])
    assert (made["kind"], made["source"], made["rows_read"], made["rows_stored"]) == (
        "tickets",
        "api",
        1,
        1,
    )


def test_a_repeated_create_with_its_idempotency_key_returns_the_first_answer(
    lived: dict[str, Any],
) -> None:
    status, replayed, body = lived["replayed"]
    assert (status, replayed) == (200, "true")
    assert body == lived["created"]
    assert lived["after_replay"] == lived["after_create"]


def test_an_agents_category_change_is_a_correction_with_agent_and_model_version(
    api: Api, lived: dict[str, Any]
) -> None:
    life, corrected_to = lived["ids"][0], lived["corrected_to"]
    assert lived["corrected"]["category"] == corrected_to
    assert lived["corrected"]["triage"] == lived["created"]["triage"]  # the answer served stays
    row = feedback_rows(api, life)[0]
    assert (row["corrected_category"], row["corrected_priority"]) == (corrected_to, None)
    assert (row["label_source"], row["agent_id"], row["model_version"]) == (
        "agent-corrected",
        AGENT,
        "1",
    )
    assert row["reason"] == "misrouted"
    assert batch(api, row["batch_id"])["kind"] == "feedback"
    assert batch(api, row["batch_id"])["source"] == "api"


def test_status_changes_and_the_close_are_the_tickets_lifecycle(
    api: Api, lived: dict[str, Any]
) -> None:
    life, corrected_to = lived["ids"][0], lived["corrected_to"]
    assert [after["status"] for after in lived["statuses"]] == ["open", "in_progress", "resolved"]
    assert lived["same_status"]["status"] == "resolved"
    closed = lived["closed"]
    assert (closed["status"], closed["category"]) == ("closed", lived["corrected_to"])
    assert closed["resolution"] == "refunded the second payment" and closed["closed_at"]
    (state,) = rows(api, tables.ticket_state, life)
    assert (state["status"], state["category"]) == ("closed", lived["corrected_to"])
    assert state["closed_at"] == naive(closed["closed_at"])
    # The final labels: the agent's category and the served priority nobody changed, one row.
    correction, final = feedback_rows(api, life)
    served = lived["created"]["triage"]["priority"]
    assert (final["corrected_category"], final["corrected_priority"]) == (corrected_to, served)
    assert (final["label_source"], final["agent_id"]) == ("agent-corrected", AGENT)
    assert correction["corrected_at"] < final["corrected_at"] == naive(closed["closed_at"])


def test_get_shows_the_answers_the_label_history_and_the_events(lived: dict[str, Any]) -> None:
    detail, corrected_to = lived["detail"], lived["corrected_to"]
    assert detail["body"] == BILLING and detail["status"] == "closed"
    assert [p["model_version"] for p in detail["predictions"]] == ["1"]
    served = lived["created"]["triage"]["priority"]
    history = [
        (label["category"], label["priority"], label["label_source"]) for label in detail["labels"]
    ]
    assert history == [
        (corrected_to, None, "agent-corrected"),
        (corrected_to, served, "agent-corrected"),
    ]
    assert detail["labels"][0]["agent_id"] == AGENT
    assert detail["labels"][0]["model_version"] == "1"
    assert detail["labels"][0]["reason"] == "misrouted"
    kinds = [event["kind"] for event in detail["events"]]
    assert kinds == ["created", "corrected", "status", "status", "status", "closed"], kinds
    moves = [(e["from_status"], e["to_status"]) for e in detail["events"][2:]]
    assert moves == [
        ("new", "open"),
        ("open", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "closed"),
    ]
    assert detail["events"][0]["to_status"] == "new"
    times = [at(e["at"]) for e in detail["events"]]
    assert times == sorted(times)


def test_an_agents_priority_change_moves_the_sla_due_time(api: Api, lived: dict[str, Any]) -> None:
    created, moved, moved_to = lived["moved_created"], lived["moved"], lived["moved_to"]
    settings = api.settings()
    assert moved["priority"] == moved_to and moved["status"] == "new"
    assert at(moved["sla_due_at"]) == at(created["created_at"]) + timedelta(
        hours=settings.sla_hours_for(moved_to)
    )
    assert moved["sla_due_at"] != created["sla_due_at"]
    (state,) = rows(api, tables.ticket_state, lived["ids"][1])
    assert (state["priority"], state["priority_source"]) == (moved_to, "agent")
    (row,) = rows(api, tables.feedback, lived["ids"][1])
    assert (row["corrected_priority"], row["label_source"]) == (moved_to, "agent-corrected")


def test_a_close_without_labels_keeps_the_answer_with_its_provenance(
    api: Api, lived: dict[str, Any]
) -> None:
    created, closed = lived["plain_created"], lived["plain_closed"]
    assert closed["status"] == "closed" and closed["category"] == created["triage"]["category"]
    (row,) = rows(api, tables.feedback, lived["ids"][2])
    expected = "auto-applied" if created["tier"] == "auto" else "agent-confirmed"
    assert (row["corrected_category"], row["label_source"]) == (closed["category"], expected)


def page_through(http: httpx.Client, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of ``GET /v1/tickets`` with ``params``, following ``next_cursor``."""
    items, cursor = [], None
    for _ in range(50):
        page = answer(
            http.get("/v1/tickets", params={**params, **({"cursor": cursor} if cursor else {})}),
            200,
        )
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


def test_the_list_filters_and_pages_by_cursor_newest_first(api: Api, lived: dict[str, Any]) -> None:
    life, moved, plain = lived["ids"]
    since = lived["window"]
    with api.client("reader") as http:
        ours = page_through(http, {**since, "limit": 1})
        assert [item["ticket_id"] for item in ours] == [plain, moved, life]
        closed = page_through(http, {**since, "status": "closed"})
        assert {item["ticket_id"] for item in closed} == {life, plain}
        corrected = page_through(http, {**since, "category": lived["corrected_to"]})
        assert life in {item["ticket_id"] for item in corrected}
        assert all(item["category"] == lived["corrected_to"] for item in corrected)
        tier = lived["created"]["tier"]
        assert life in {i["ticket_id"] for i in page_through(http, {**since, "tier": tier})}
        batch_ones = answer(http.get("/v1/tickets", params={"limit": 5}), 200)
        assert len(batch_ones["items"]) == 5 and batch_ones["next_cursor"]
        bad = base64.urlsafe_b64encode(b"not a cursor").decode()
        refused(http.get("/v1/tickets", params={"cursor": bad}), 422, "cursor")


def test_concurrent_creates_lose_nothing_and_a_key_makes_one_ticket(api: Api) -> None:
    burst = [new_ticket(f"{api.store_kind}-burst-{i}", 3, LOGIN) for i in range(16)]
    same = new_ticket(f"{api.store_kind}-burst-same", 3, BILLING)
    key = {"Idempotency-Key": f"burst-{api.store_kind}"}

    def create(ticket: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        with api.client() as http:
            return http.post("/v1/tickets", json=ticket, headers=headers)

    before = counts(api)
    with ThreadPoolExecutor(max_workers=8) as pool:
        distinct = list(pool.map(create, burst))
        repeated = list(pool.map(lambda _: create(same, key), range(8)))
    assert [one.status_code for one in distinct] == [201] * 16, [r.text for r in distinct]
    statuses = sorted(one.status_code for one in repeated)
    # One first answer; the others replay it, or hear that it is still being written.
    assert statuses.count(201) == 1 and set(statuses) <= {200, 201, 409}, statuses
    after = counts(api)
    grown = {name: after[name] - before[name] for name in after}
    assert grown == {
        "tickets": 17,
        "feedback": 0,
        "predictions": 17,
        "shadow_predictions": 17,
        "ticket_state": 17,
        "ticket_events": 17,
        "batches": 17,
        "idempotency_keys": 1,
    }, grown


# ---- a monitor run and a retraining see the correction ---------------------------------


def flow_settings(api: Api, patch: pytest.MonkeyPatch) -> Settings:
    """The workspace's settings in this process's environment, for the flows run here."""
    # One label is enough for a window's figures: the life labels three tickets.
    extra = {"TRIAGE_MONITOR__MIN_LABELS": "1", "TRIAGE_MONITOR__TRIGGER": "off"}
    return settings_of({**api.env, **extra}, patch)


def test_the_monitor_counts_the_correction_against_the_answer_served(
    api: Api, lived: dict[str, Any]
) -> None:
    from triage_ml.flows.monitor import monitor

    with pytest.MonkeyPatch.context() as patch:
        result = monitor(settings=flow_settings(api, patch))
    served = [row for row in result["live"] if str(row["version"]) == "1"]
    assert served, result["live"]
    labeled = sum(row["labeled"] for row in served)
    # The life's category correction, and the plain ticket when an agent confirmed it.
    expected = 1 + (lived["plain_created"]["tier"] != "auto")
    # At least: the file's later tests add tickets when it runs in another order.
    assert sum(row["predictions"] for row in served) >= 3 and labeled >= expected, served
    assert any((row["override"] or 0) > 0 for row in served), served
    assert result["retrain"]["triggered"] is False


def test_a_retrain_learns_from_the_correction_and_the_server_follows_the_champion(
    api: Api, lived: dict[str, Any]
) -> None:
    from triage_ml.flows.promotion import force_promote
    from triage_ml.flows.retrain import monthly_retrain

    life, corrected_to = lived["ids"][0], lived["corrected_to"]
    with pytest.MonkeyPatch.context() as patch:
        settings = flow_settings(api, patch)
        record = monthly_retrain(settings=settings)
    with store.opened(settings.store_url) as engine:
        snapshot = dataset.load_snapshot(engine)
    learned = snapshot.frame.set_index("ticket_id")
    assert learned.loc[life, "category"] == corrected_to
    assert learned.loc[life, "category_source"] == "agent-corrected"
    params = registry.client(settings).get_run(record["run_id"]).data.params
    assert int(params["labels.agent-corrected"]) >= 1, params
    # The running server answers with the new champion within its refresh (1 s here),
    # whether the gate promoted the retrained version or an operator forces it.
    newest = record["challenger_version"]
    if record["champion_after"] != newest:
        with pytest.MonkeyPatch.context() as patch:
            force_promote(
                newest, "itest: the server follows the alias", settings=flow_settings(api, patch)
            )
    with api.client() as http:
        created = created_by(http, newest, f"{life}-after")
        assert created is not None, tail(api.log)
        assert answer(http.get("/v1/health"), 200)["champion"] == newest


def created_by(http: httpx.Client, version: str, prefix: str, seconds: float = 20) -> dict | None:
    """The first ticket created (``<prefix>-<n>``) that ``version`` triaged within ``seconds``.

    The server re-reads the aliases at most every ``api.model_refresh_seconds`` (1 s here), and
    may answer with the old champion while the new one loads.
    """
    deadline, number = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        time.sleep(0.5)
        number += 1
        ticket = new_ticket(f"{prefix}-{number}", 1, BILLING)
        created = answer(http.post("/v1/tickets", json=ticket), 201)
        if created["triage"]["model_version"] == version:
            return created
    return None


def champion(api: Api) -> str:
    """The version the server answers with now."""
    with api.client(None) as http:
        return answer(http.get("/v1/health"), 200)["champion"]


# ---- bad input: its status and message, and the store unchanged ------------------------


def test_an_unknown_ticket_is_404_and_changes_nothing(api: Api) -> None:
    with api.client() as http, unchanged(api):
        error = refused(http.get("/v1/tickets/no-such-ticket"), 404)
        assert "no-such-ticket" in error["message"]
        refused(http.put("/v1/tickets/no-such-ticket", json={"status": "open"}), 404)
        refused(http.put("/v1/tickets/no-such-ticket/close", json={}), 404)


def test_an_illegal_transition_is_409_naming_the_allowed_ones(api: Api) -> None:
    ticket_id = f"{api.store_kind}-illegal"
    with api.client() as http:
        answer(http.post("/v1/tickets", json=new_ticket(ticket_id, 5, LOGIN)), 201)
        with unchanged(api):
            error = refused(
                http.put(f"/v1/tickets/{ticket_id}", json={"status": "reopened"}), 409, "status"
            )
            assert error["message"].startswith("illegal transition: new -> reopened (allowed: ")
            error = refused(
                http.put(f"/v1/tickets/{ticket_id}", json={"status": "closed"}), 422, "status"
            )
            assert "/close" in error["message"]
            refused(http.post("/v1/tickets", json=new_ticket(ticket_id, 5, LOGIN)), 409)
            refused(http.put(f"/v1/tickets/{ticket_id}", json={}), 422)
            refused(
                http.put(f"/v1/tickets/{ticket_id}", json={"category": "Astrology"}),
                422,
                "category",
            )
            refused(http.put(f"/v1/tickets/{ticket_id}", json={"priority": "P9"}), 422, "priority")
        answer(http.put(f"/v1/tickets/{ticket_id}/close", json={}), 200)
        with unchanged(api):
            refused(http.put(f"/v1/tickets/{ticket_id}/close", json={}), 409)


def test_an_idempotency_key_reused_with_another_body_is_422(api: Api) -> None:
    key = {"Idempotency-Key": f"reused-{api.store_kind}"}
    ticket_id = f"{api.store_kind}-idem"
    with api.client() as http:
        answer(http.post("/v1/tickets", json=new_ticket(ticket_id, 5, BILLING), headers=key), 201)
        with unchanged(api):
            other = new_ticket(f"{ticket_id}-other", 5, LOGIN)
            refused(http.post("/v1/tickets", json=other, headers=key), 422, "Idempotency-Key")


def test_a_missing_or_invalid_token_is_401_and_a_read_token_cannot_write(api: Api) -> None:
    ticket = new_ticket(f"{api.store_kind}-unauthorized", 5, BILLING)
    with unchanged(api):
        with api.client(None) as http:
            refused(http.post("/v1/tickets", json=ticket), 401)
            refused(http.get("/v1/tickets"), 401)
        with api.client("tml_0000_not-a-secret") as http:
            refused(http.post("/v1/tickets", json=ticket), 401)
        with api.client("reader") as http:
            refused(http.post("/v1/tickets", json=ticket), 403)


def test_an_oversized_body_is_413_announced_or_streamed(api: Api) -> None:
    limit = api.settings().api.max_request_bytes
    ticket = new_ticket(f"{api.store_kind}-huge", 5, "x" * (limit + 10))
    payload = json.dumps(ticket).encode()
    headers = {"Content-Type": "application/json"}

    def chunks() -> Iterator[bytes]:
        # No Content-Length: the server must count the bytes as they arrive.
        for start in range(0, len(payload), 16_384):
            yield payload[start : start + 16_384]

    with api.client() as http, unchanged(api):
        refused(http.post("/v1/tickets", content=payload, headers=headers), 413)
        refused(http.post("/v1/tickets", content=chunks(), headers=headers), 413)


def test_an_empty_text_is_422_naming_body(api: Api) -> None:
    with api.client() as http, unchanged(api):
        for text in ("", "   "):
            ticket = new_ticket(f"{api.store_kind}-empty", 5, text)
            refused(http.post("/v1/tickets", json=ticket), 422, "body")
        unknown = {**new_ticket(f"{api.store_kind}-empty", 5, BILLING), "categroy": "Billing"}
        refused(http.post("/v1/tickets", json=unknown), 422, "categroy")


def test_an_unknown_webhook_provider_is_404_and_a_malformed_payload_422(api: Api) -> None:
    with api.client() as http, unchanged(api):
        error = refused(http.post("/v1/webhooks/intercom", json={"id": 1}), 404)
        assert "unknown webhook provider 'intercom'" in error["message"]
        malformed = {"freshdesk_webhook": {"ticket_id": None}}
        assert refused(http.post("/v1/webhooks/freshdesk", json=malformed), 422)["field"]
        garbled = http.post(
            "/v1/webhooks/zendesk",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        refused(garbled, 422)


# Once: the limits are counted in the server's memory, whatever the store.
@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
def test_a_caller_over_the_rate_limit_gets_429_with_retry_after(api: Api, tmp_path: Path) -> None:
    # A second server on the same store, with a limit a test reaches in a few requests.
    env = {**api.env, "TRIAGE_API__RATE_LIMIT": "3/minute"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(VENV_BIN / "triage-ml"), "api", "serve", "--host", "127.0.0.1"]
    with running(
        [*command, "--port", str(port)], env, tmp_path / "limited.log", f"{base}/v1/health"
    ):
        limited = Api(base, api.store_kind, env, tmp_path / "limited.log", api.writer, api.reader)
        with unchanged(api), limited.client("reader") as http:
            answers = [http.get("/v1/tickets", params={"limit": 1}) for _ in range(4)]
            assert [one.status_code for one in answers[:3]] == [200, 200, 200]
            refused(answers[3], 429)
            assert 0 < int(answers[3].headers["Retry-After"]) <= 60
            with limited.client("writer") as other:  # counted per token
                answer(other.get("/v1/tickets", params={"limit": 1}), 200)
            with limited.client(None) as anonymous:  # per address without a valid token
                statuses = [anonymous.get("/v1/tickets").status_code for _ in range(4)]
            # Health probes are counted apart, so the address had its three tries left.
            assert statuses == [401, 401, 401, 429], statuses


# Once: the workers share the store like any two clients (the store's side runs on both).
@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
def test_two_worker_processes_share_the_port_and_stop_on_sigterm(api: Api, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "workers.log"
    command = [str(VENV_BIN / "triage-ml"), "api", "serve", "--port", str(port), "--workers", "2"]
    # Each answer closes its connection, so each create may go to either worker.
    env = {**api.env, "TRIAGE_API__KEEPALIVE_REQUESTS": "1"}
    with log.open("w") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "listening on" not in log.read_text() and time.monotonic() < deadline:
            assert server.poll() is None, tail(log)
            time.sleep(0.2)
        assert "listening on" in log.read_text(), tail(log)
        workers = psutil.Process(server.pid).children(recursive=True)
        served = [p for p in workers if "spawn" in " ".join(p.cmdline())]
        assert len(served) == 2, [p.cmdline() for p in workers]
        workers_api = Api(base, api.store_kind, env, log, api.writer, api.reader)
        with unchanged_except_creates(api, 6), workers_api.client() as http:
            for i in range(6):
                made = http.post(
                    "/v1/tickets", json=new_ticket(f"workers-{api.store_kind}-{i}", 1, BILLING)
                )
                assert made.status_code == 201 and made.headers.get("connection") == "close"
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0, tail(log)
        assert not [p for p in served if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(30)


@contextmanager
def unchanged_except_creates(api: Api, creates: int) -> Iterator[None]:
    """Exactly ``creates`` new tickets (and their answers) and nothing else lost or doubled."""
    before = counts(api)
    yield
    after = counts(api)
    assert after[tables.tickets.name] - before[tables.tickets.name] == creates
    assert after[tables.predictions.name] - before[tables.predictions.name] == creates


SAMPLES = REPO / "docs" / "api" / "webhooks"
ZENDESK_LIFE = (
    "zendesk-ticket-created",
    "zendesk-status-changed",
    "zendesk-priority-changed",
    "zendesk-ticket-solved",
    "zendesk-ticket-closed",
)


def sample(name: str) -> dict[str, Any]:
    """A checked-in sample payload of docs/api/webhooks."""
    return json.loads((SAMPLES / f"{name}.json").read_text())


def test_a_zendesk_ticket_lives_its_life_through_webhooks(api: Api) -> None:
    with api.client() as http:
        answers = [
            answer(http.post("/v1/webhooks/zendesk", json=sample(name)), 200)
            for name in ZENDESK_LIFE
        ]
        with unchanged(api):
            again = answer(http.post("/v1/webhooks/zendesk", json=sample(ZENDESK_LIFE[0])), 200)
        detail = answer(http.get("/v1/tickets/zendesk-5158"), 200)
    assert {one["ticket_id"] for one in answers} == {"zendesk-5158"}
    assert all(one["applied"] for one in answers) and not again["applied"]
    assert answers[0]["write_back"]["ticket"]["priority"]
    assert (detail["status"], detail["priority"]) == ("closed", "urgent")
    assert detail["triage"]["model_version"] == champion(api)
    assert detail["body"] == sample(ZENDESK_LIFE[0])["detail"]["description"]
    visited = [event["to_status"] for event in detail["events"]]
    assert visited[0] == "new" and visited[-1] == "closed"
    assert {"waiting_on_customer", "resolved"} <= set(visited), visited
    corrected = [label for label in detail["labels"] if label["priority"] == "urgent"]
    assert corrected and corrected[0]["label_source"] == "agent-corrected"
    (state,) = rows(api, tables.ticket_state, "zendesk-5158")
    assert (state["priority"], state["priority_source"]) == ("urgent", "agent")


def test_a_freshdesk_ticket_is_created_and_closed_through_webhooks(api: Api) -> None:
    with api.client() as http:
        created = answer(
            http.post("/v1/webhooks/freshdesk", json=sample("freshdesk-ticket-created")), 200
        )
        closed = answer(
            http.post("/v1/webhooks/freshdesk", json=sample("freshdesk-ticket-closed")), 200
        )
        detail = answer(http.get("/v1/tickets/freshdesk-11"), 200)
    assert created["ticket_id"] == closed["ticket_id"] == "freshdesk-11"
    assert created["applied"] and closed["applied"] and created["write_back"]
    assert detail["status"] == "closed" and detail["labels"] and detail["predictions"]
    (prediction,) = rows(api, tables.predictions, "freshdesk-11")
    assert prediction["model_version"] == champion(api)


def test_no_ticket_text_or_personal_id_reaches_the_server_log(
    api: Api, lived: dict[str, Any]
) -> None:
    logged = api.log.read_text(errors="replace")
    listening = f"triage-ml api listening on {api.base} (champion version 1)"
    assert listening in logged, tail(api.log)
    zendesk = sample(ZENDESK_LIFE[0])["detail"]
    freshdesk = sample("freshdesk-ticket-created")["freshdesk_webhook"]
    webhooks = (
        zendesk["description"][:30],
        zendesk["requester_id"],
        freshdesk["requester_email"],
        freshdesk["ticket_subject"],
    )
    for secret in (BILLING[:30], LOGIN[:30], CUSTOMER, AGENT, api.writer, *webhooks):
        assert secret not in logged
