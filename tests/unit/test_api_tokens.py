"""API tokens: made once by the CLI, stored as digests, checked on every request, revoked."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from triage_ml import cli, store
from triage_ml.api import auth
from triage_ml.api.errors import UnauthorizedError
from triage_ml.errors import TriageError
from triage_ml.settings import Settings

pytestmark = pytest.mark.unit


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def token_store(engine: sa.Engine) -> sa.Engine:
    """An empty store, once on SQLite and once on PostgreSQL (conftest's ``engine``)."""
    return engine


def test_cli_creates_lists_and_revokes(workspace: Settings, capsys) -> None:
    code, out, err = run(capsys, "api", "token", "create", "--name", "zendesk", "--json")
    assert code == 0, err
    made = json.loads(out)
    assert made["name"] == "zendesk" and made["scope"] == "write"
    assert made["token"].startswith("tml_")

    code, out, _ = run(capsys, "api", "token", "create", "--name", "reports", "--scope", "read")
    assert code == 0
    assert out.strip().startswith("tml_") and len(out.strip().splitlines()) == 1

    code, out, _ = run(capsys, "api", "token", "list", "--json")
    listed = {t["name"]: t for t in json.loads(out)["tokens"]}
    assert listed["reports"]["scope"] == "read" and listed["zendesk"]["revoked_at"] is None
    assert all("secret_hash" not in t for t in listed.values())
    assert made["token"] not in out and made["token"].split("_", 2)[2] not in out

    assert run(capsys, "api", "token", "revoke", "zendesk")[0] == 0
    code, out, _ = run(capsys, "api", "token", "list", "--json")
    assert {t["name"]: t for t in json.loads(out)["tokens"]}["zendesk"]["revoked_at"]


def test_the_store_keeps_only_a_digest(workspace: Settings, capsys) -> None:
    _, out, _ = run(capsys, "api", "token", "create", "--name", "ci", "--json")
    secret = json.loads(out)["token"].split("_", 2)[2]
    with store.opened(workspace.store_url) as engine, engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT * FROM api_tokens")).mappings().all()
    assert len(rows) == 1
    assert secret not in json.dumps([dict(r) for r in rows], default=str)
    assert rows[0]["secret_hash"] == auth.digest(secret)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["create", "--name", "ci", "--scope", "admin"], "scope 'admin' is unknown"),
        (["create", "--name", " "], "is not 1-128"),
        (["revoke", "nobody"], "no token named 'nobody'"),
    ],
)
def test_cli_refuses_bad_input_with_one_line(workspace, capsys, argv, needle) -> None:
    code, _, err = run(capsys, "api", "token", *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]


def test_cli_refuses_a_taken_name_and_a_second_revoke(workspace, capsys) -> None:
    assert run(capsys, "api", "token", "create", "--name", "ci")[0] == 0
    code, _, err = run(capsys, "api", "token", "create", "--name", "ci")
    assert code == 2 and "already exists" in err
    assert run(capsys, "api", "token", "revoke", "ci")[0] == 0
    code, _, err = run(capsys, "api", "token", "revoke", "ci")
    assert code == 2 and "already revoked" in err


def test_authenticate_accepts_only_the_exact_active_token(token_store) -> None:
    now = store.utcnow()
    made = auth.create_token(token_store, "zendesk", "write", now)
    caller = auth.authenticate(token_store, made.token, now)
    assert (caller.name, caller.scope) == ("zendesk", "write")

    token_id = made.token.split("_")[1]
    wrong_secret = f"tml_{token_id}_{'A' * 43}"
    cases = {
        None: "needs the header",
        "": "needs the header",
        "not-a-token": "not a triage-ml API token",
        wrong_secret: "unknown",
        f"tml_{'0' * 16}_{'A' * 43}": "unknown",
    }
    for text, needle in cases.items():
        with pytest.raises(UnauthorizedError, match=needle):
            auth.authenticate(token_store, text, now)

    auth.revoke_token(token_store, "zendesk", now)
    with pytest.raises(UnauthorizedError, match="revoked"):
        auth.authenticate(token_store, made.token, now)


def test_last_use_is_written_at_most_once_a_minute(token_store) -> None:
    start = store.utcnow()
    made = auth.create_token(token_store, "reports", "read", start)

    def last_used():
        return auth.list_tokens(token_store)[0]["last_used_at"]

    auth.authenticate(token_store, made.token, start)
    assert last_used() == start
    auth.authenticate(token_store, made.token, start + timedelta(seconds=30))
    assert last_used() == start
    later = start + timedelta(seconds=61)
    auth.authenticate(token_store, made.token, later)
    assert last_used() == later


def test_create_token_refuses_a_bad_scope_before_storing(token_store) -> None:
    with pytest.raises(TriageError, match="scope"):
        auth.create_token(token_store, "x", "admin", store.utcnow())
    assert auth.list_tokens(token_store) == []
