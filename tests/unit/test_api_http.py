"""The API's HTTP edge: tokens, scopes, limits, idempotency, the error envelope, OpenAPI.

The routes run through the real service on a SQLite store with FastAPI's TestClient; the
model is a stand-in answering every ticket with one fixed prediction row.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from triage_ml import cli, store
from triage_ml.api import auth, idempotency
from triage_ml.api.app import create_app
from triage_ml.api.errors import ConflictError
from triage_ml.api.limits import BodyLimit, ConnectionTurns
from triage_ml.api.schemas import TicketOut
from triage_ml.api.triage import Answer
from triage_ml.scoring import batch
from triage_ml.settings import ApiSettings, DuplicateSettings, Settings

pytestmark = pytest.mark.unit

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.json"
TICKET = {"ticket_id": "T-1", "subject": "Refund", "body": "I was charged twice for my order."}


PARTS = {"model": 50.0, "value": 80.0, "sentiment": None, "weights": {"model": 0.6, "value": 0.4}}
ANSWERS_OF_ISSUE_27 = {
    "subcategory": "Duplicate charge",
    "subcategory_proba": 0.7,
    "type": "Incident",
    "type_proba": 0.6,
    "team": None,
    "team_proba": float("nan"),
    "language": "en",
    "sentiment_reason": None,
    "escalation": json.dumps(["legal", "repeat_contact"]),
    "priority_score": 62.0,
    "priority_parts": json.dumps(PARTS),
    "priority_review": True,
}


class StandInTriager:
    """The Triager contract with a fixed answer: Billing, P3, tier auto."""

    champion_version = "7"

    def load(self) -> None:
        """Nothing to load."""

    def refresh_if_due(self) -> None:
        """Nothing to refresh."""

    def categories(self) -> frozenset[str]:
        return frozenset({"Billing", "Technical"})

    def answer(self, conn: sa.Connection, ticket: pd.DataFrame) -> Answer:
        if "crash" in ticket["body"].iloc[0]:
            # A library's message quoting the ticket, as pandas' and pydantic's can.
            raise ValueError(f"cannot read {ticket['body'].iloc[0]!r}")
        top3 = [{"category": "Billing", "proba": 0.9}, {"category": "Technical", "proba": 0.1}]
        row = {
            "ticket_id": ticket["ticket_id"].iloc[0],
            "category": "Billing",
            "category_proba": 0.9,
            "top3": json.dumps(top3),
            "priority": "medium",
            "priority_proba": 0.8,
            "sentiment": -0.2,
            "route": "billing-team",
            "needs_review": False,
            "tier": "auto",
            **ANSWERS_OF_ISSUE_27,
            "model_version": self.champion_version,
            "scored_at": pd.Timestamp.now(tz="UTC"),
        }
        # As the real Triager: the champion's answer carries the store's duplicate suggestions.
        champion = batch.with_duplicates(conn, pd.DataFrame([row]), ticket, DuplicateSettings())
        return Answer(champion=champion, shadow=None)


def settings_for(tmp_path: Path, **api: object) -> Settings:
    return Settings(home=tmp_path / "home", api=ApiSettings(**api))


@pytest.fixture
def api_store(tmp_path: Path) -> Iterator[sa.Engine]:
    eng = store.connect(f"sqlite:///{tmp_path / 'api.db'}")
    yield eng
    eng.dispose()


@pytest.fixture
def tokens(api_store: sa.Engine) -> dict[str, str]:
    now = store.utcnow()
    made = {
        name: auth.create_token(api_store, name, scope, now).token
        for name, scope in [("writer", "write"), ("reader", "read"), ("gone", "write")]
    }
    auth.revoke_token(api_store, "gone", now)
    return made


@pytest.fixture
def client(tmp_path: Path, api_store: sa.Engine) -> Iterator[TestClient]:
    app = create_app(settings_for(tmp_path, max_request_bytes=4096), api_store, StandInTriager())
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_of(response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    return body["error"]


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_a_ticket_lives_through_the_routes(client, tokens, api_store) -> None:
    auth_w, auth_r = bearer(tokens["writer"]), bearer(tokens["reader"])
    created = client.post("/v1/tickets", json=TICKET, headers=auth_w)
    assert created.status_code == 201, created.text
    out = TicketOut.model_validate(created.json())
    assert (out.status, out.category, out.triage.model_version) == ("new", "Billing", "7")
    assert out.sla_due_at is not None

    changed = client.put(
        "/v1/tickets/T-1", json={"category": "Technical", "status": "open"}, headers=auth_w
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["category"] == "Technical"
    closed = client.put("/v1/tickets/T-1/close", json={"resolution": "refunded"}, headers=auth_w)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"

    detail = client.get("/v1/tickets/T-1", headers=auth_r)
    assert detail.status_code == 200 and detail.json()["body"] == TICKET["body"]
    page = client.get("/v1/tickets", params={"status": "closed"}, headers=auth_r)
    assert [t["ticket_id"] for t in page.json()["items"]] == ["T-1"]
    assert count(api_store, "feedback") >= 1


def test_create_and_detail_return_every_answer_and_the_duplicate_suggestions(
    client, tokens
) -> None:
    auth_w, auth_r = bearer(tokens["writer"]), bearer(tokens["reader"])
    first = {
        "ticket_id": "D-1",
        "customer_id": "c-9",
        "subject": "Refund",
        "body": "I was charged twice for my order 1234 last week, please refund one payment.",
        "created_at": "2026-11-02T09:00:00Z",
    }
    again = first | {
        "ticket_id": "D-2",
        "body": "Following up: " + first["body"],
        "created_at": "2026-11-04T09:00:00Z",
    }
    assert client.post("/v1/tickets", json=first, headers=auth_w).status_code == 201
    created = client.post("/v1/tickets", json=again, headers=auth_w)
    assert created.status_code == 201, created.text
    triage = created.json()["triage"]
    assert triage["subcategory"] == "Duplicate charge" and triage["type"] == "Incident"
    assert (triage["team"], triage["team_proba"], triage["language"]) == (None, None, "en")
    assert triage["escalation"] == ["legal", "repeat_contact"]
    assert triage["priority_parts"] == PARTS and triage["priority_score"] == 62.0
    assert triage["priority_review"] is True and triage["sentiment_reason"] is None
    [suggested] = triage["possible_duplicates"]
    assert suggested["ticket_id"] == "D-1" and suggested["same_customer"] is True
    assert DuplicateSettings().threshold <= suggested["similarity"] < 1
    shown = client.get("/v1/tickets/D-2", headers=auth_r).json()
    assert shown["predictions"][0]["possible_duplicates"] == [suggested]
    assert shown["triage"]["escalation"] == ["legal", "repeat_contact"]
    escalated = client.get(
        "/v1/tickets", params={"escalated": True, "language": "en"}, headers=auth_r
    )
    assert [t["ticket_id"] for t in escalated.json()["items"]] == ["D-2", "D-1"]


def test_health_needs_no_token(client) -> None:
    answer = client.get("/v1/health")
    assert answer.status_code == 200 and answer.json() == {"status": "ok", "champion": "7"}


@pytest.mark.parametrize(
    ("headers", "needle"),
    [
        ({}, "needs the header"),
        ({"Authorization": "Bearer tml_0123456789abcdef_" + "x" * 43}, "unknown"),
        ({"Authorization": "Bearer nonsense"}, "not a triage-ml API token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "needs the header"),
    ],
)
def test_401_without_a_valid_token(client, api_store, tokens, headers, needle) -> None:
    answer = client.post("/v1/tickets", json=TICKET, headers=headers)
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
    error = error_of(answer)
    assert error["code"] == "unauthorized" and needle in error["message"]
    assert client.get("/v1/tickets", headers=headers).status_code == 401
    assert count(api_store, "tickets") == 0


def test_401_for_a_revoked_token(client, tokens) -> None:
    answer = client.get("/v1/tickets/T-1", headers=bearer(tokens["gone"]))
    assert answer.status_code == 401 and "revoked" in error_of(answer)["message"]


def test_403_for_a_read_token_on_a_write(client, api_store, tokens) -> None:
    answer = client.post("/v1/tickets", json=TICKET, headers=bearer(tokens["reader"]))
    assert answer.status_code == 403 and error_of(answer)["code"] == "forbidden"
    assert client.get("/v1/tickets", headers=bearer(tokens["reader"])).status_code == 200
    assert count(api_store, "tickets") == 0


def test_413_by_content_length_and_while_streaming(client, api_store, tokens) -> None:
    big = {**TICKET, "body": "x" * 5000}
    declared = client.post("/v1/tickets", json=big, headers=bearer(tokens["writer"]))
    assert declared.status_code == 413 and error_of(declared)["code"] == "too_large"

    def chunks() -> Iterator[bytes]:
        text = json.dumps(big).encode()
        yield from (text[i : i + 1000] for i in range(0, len(text), 1000))

    streamed = client.post(
        "/v1/tickets",
        content=chunks(),
        headers={**bearer(tokens["writer"]), "Content-Type": "application/json"},
    )
    assert "content-length" not in {k.lower() for k in streamed.request.headers}
    assert streamed.status_code == 413
    assert count(api_store, "tickets") == 0


def test_the_body_limit_stops_reading_a_chunked_body_at_the_limit() -> None:
    received: list[int] = []
    sent: list[dict] = []

    async def receive() -> dict:
        received.append(1)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    async def never(scope, receive, send) -> None:
        raise AssertionError("the app must not see an oversized request")

    scope = {"type": "http", "method": "POST", "path": "/v1/tickets", "headers": []}
    asyncio.run(BodyLimit(never, max_bytes=4096, timeout=5)(scope, receive, send))
    assert len(received) == 5 and sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "too_large"


def test_429_over_the_rate_with_retry_after(tmp_path, api_store, tokens) -> None:
    app = create_app(settings_for(tmp_path, rate_limit="3/minute"), api_store, StandInTriager())
    with TestClient(app) as limited:
        answers = [limited.get("/v1/tickets", headers=bearer(tokens["reader"])) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
        assert error_of(answers[-1])["code"] == "rate_limited"
        # Counted per token: another token still has its own three.
        assert limited.get("/v1/tickets", headers=bearer(tokens["writer"])).status_code == 200
        # Without a valid token, per address: bad guesses are bounded too.
        guesses = [limited.get("/v1/tickets").status_code for _ in range(4)]
        assert guesses == [401, 401, 401, 429]


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ({**TICKET, "body": ""}, "body", "at least 1 character"),
        ({**TICKET, "categroy": "Billing"}, "categroy", "unknown field"),
        ({**TICKET, "customer_ltv": -1}, "customer_ltv", "greater than or equal"),
        ({"subject": "no body"}, "body", "required"),
    ],
)
def test_422_names_the_field(client, api_store, tokens, body, field, needle) -> None:
    answer = client.post("/v1/tickets", json=body, headers=bearer(tokens["writer"]))
    assert answer.status_code == 422
    error = error_of(answer)
    assert error["field"] == field and needle in error["message"].lower()
    assert count(api_store, "tickets") == 0


def test_422_for_a_body_that_is_not_json_and_a_bad_query(client, tokens) -> None:
    answer = client.post(
        "/v1/tickets",
        content=b"{not json",
        headers={**bearer(tokens["writer"]), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422 and "not valid JSON" in error_of(answer)["message"]
    listed = client.get("/v1/tickets", params={"limit": 0}, headers=bearer(tokens["reader"]))
    assert listed.status_code == 422 and error_of(listed)["field"] == "limit"


def test_idempotent_replay_and_another_body(client, api_store, tokens) -> None:
    headers = {**bearer(tokens["writer"]), "Idempotency-Key": "create-T-1"}
    first = client.post("/v1/tickets", json=TICKET, headers=headers)
    again = client.post("/v1/tickets", json=TICKET, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.json() == first.json()
    assert (count(api_store, "tickets"), count(api_store, "predictions")) == (1, 1)

    other = client.post("/v1/tickets", json={**TICKET, "subject": "other"}, headers=headers)
    assert other.status_code == 422 and error_of(other)["field"] == "Idempotency-Key"
    assert (count(api_store, "tickets"), count(api_store, "idempotency_keys")) == (1, 1)

    bad_key = client.post(
        "/v1/tickets", json=TICKET, headers={**headers, "Idempotency-Key": "k" * 256}
    )
    assert bad_key.status_code == 422 and error_of(bad_key)["field"] == "Idempotency-Key"


def test_a_refused_write_stores_no_answer(client, api_store, tokens) -> None:
    headers = {**bearer(tokens["writer"]), "Idempotency-Key": "update-1"}
    answer = client.put("/v1/tickets/T-404", json={"status": "open"}, headers=headers)
    assert answer.status_code == 404 and error_of(answer)["code"] == "not_found"
    assert count(api_store, "idempotency_keys") == 0


def test_a_concurrent_first_use_is_409_and_rolls_back(engine) -> None:
    request = idempotency.Request("tok", "POST", "/v1/tickets", "k", None)
    now = store.utcnow()

    def racing_write(conn: sa.Connection) -> TicketOut:
        # Another request's answer under the same key lands before this one's.
        conn.execute(sa.text("INSERT INTO batches_probe VALUES (1)"))
        digest = idempotency.fingerprint(request)
        idempotency.store(conn, request, digest, idempotency.Outcome(201, {}), now)
        return TicketOut.model_validate(
            dict.fromkeys(TicketOut.model_fields) | {"ticket_id": "T-9"}
        )

    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE batches_probe (x INTEGER)"))
    with pytest.raises(ConflictError) as refused:
        idempotency.run_once(engine, request, racing_write, 201, now, keep=timedelta(hours=1))
    assert refused.value.field == "Idempotency-Key"
    assert count(engine, "batches_probe") == 0 and count(engine, "idempotency_keys") == 0


def test_unknown_route_and_method_use_the_envelope(client) -> None:
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    wrong = client.delete("/v1/tickets")
    assert wrong.status_code == 405 and error_of(wrong)["code"] == "method_not_allowed"


def test_openapi_is_served_and_checked_in(client, capsys) -> None:
    served = client.get("/openapi.json").json()
    assert served["info"]["title"] == "triage-ml ticket events API"
    assert served["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    create = served["paths"]["/v1/tickets"]["post"]
    for status in ("401", "403", "409", "413", "422", "429"):
        assert create["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorOut"
        }
    assert "HTTPValidationError" not in served["components"]["schemas"]
    checked = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    assert served == checked, (
        "docs/api/openapi.json is stale: run `triage-ml api openapi --out docs/api/openapi.json`"
    )
    assert cli.main(["api", "openapi", "--check", str(OPENAPI_FILE)]) == 0


def test_openapi_check_fails_on_a_stale_copy(workspace, capsys, tmp_path) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n", encoding="utf-8")
    assert cli.main(["api", "openapi", "--check", str(stale)]) == 2
    assert "triage-ml api openapi --out" in capsys.readouterr().err
    assert cli.main(["api", "openapi", "--out", str(stale)]) == 0
    assert cli.main(["api", "openapi", "--check", str(stale)]) == 0


def test_a_bug_is_a_500_whose_log_quotes_nothing(client, api_store, tokens, caplog) -> None:
    secret = "crash: my card 4111 was charged"
    answer = client.post(
        "/v1/tickets", json={**TICKET, "body": secret}, headers=bearer(tokens["writer"])
    )
    assert answer.status_code == 500 and error_of(answer)["code"] == "internal"
    assert "ValueError" in caplog.text and "4111" not in caplog.text
    assert count(api_store, "tickets") == 0


def test_an_expired_answer_is_forgotten_and_the_write_runs_again(engine) -> None:
    request = idempotency.Request("tok", "PUT", "/v1/tickets/T-1", "k", None)
    then = store.utcnow()
    runs: list[int] = []

    def write(conn: sa.Connection) -> TicketOut:
        runs.append(1)
        return TicketOut.model_validate(
            dict.fromkeys(TicketOut.model_fields) | {"ticket_id": "T-1"}
        )

    keep = timedelta(hours=24)
    first = idempotency.run_once(engine, request, write, 200, then, keep)
    again = idempotency.run_once(engine, request, write, 200, then + keep / 2, keep)
    assert (first.replayed, again.replayed, len(runs)) == (False, True, 1)
    later = idempotency.run_once(engine, request, write, 200, then + keep * 2, keep)
    assert (later.replayed, len(runs)) == (False, 2)
    assert count(engine, "idempotency_keys") == 1


def test_serve_refuses_a_network_address_without_allow_remote(workspace, capsys) -> None:
    assert cli.main(["api", "serve", "--host", "0.0.0.0"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--allow-remote" in lines[0]


def test_a_connection_is_closed_after_its_turns_so_the_next_goes_to_a_free_worker() -> None:
    async def ok(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    turns = ConnectionTurns(ok, max_requests=3)
    sent: list[list[tuple[bytes, bytes]]] = []

    async def send(message) -> None:
        if message["type"] == "http.response.start":
            sent.append(message["headers"])

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "client": ("127.0.0.1", 50123)}
    other = {"type": "http", "client": ("127.0.0.1", 50124)}
    for _ in range(3):
        asyncio.run(turns(scope, receive, send))
    asyncio.run(turns(other, receive, send))
    closing = [(b"connection", b"close") in headers for headers in sent]
    assert closing == [False, False, True, False]
    # The count starts over on the connection's successor (same address and port).
    asyncio.run(turns(scope, receive, send))
    assert (b"connection", b"close") not in sent[-1]
