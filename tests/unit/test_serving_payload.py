"""The scoring server's request checks and bind rules, as plain functions (issue 22, #6).

tests/flows/test_serving_limits.py checks the same through a real server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from triage_ml.errors import TriageError
from triage_ml.scoring import payload, serving
from triage_ml.scoring.payload import RequestRefusedError

pytestmark = pytest.mark.unit

FIELDS = {"subject": "string", "body": "string", "channel": "string", "customer_ltv": "double"}


def check(body: Any, max_rows: int = 10) -> int:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return payload.check_request(raw, FIELDS, max_rows)


def refusal(body: Any, max_rows: int = 10) -> RequestRefusedError:
    with pytest.raises(RequestRefusedError) as caught:
        check(body, max_rows)
    return caught.value


def test_every_mlflow_json_format_is_read_as_rows() -> None:
    ticket = {"subject": "Refund", "body": "twice", "customer_ltv": 3}
    assert check({"dataframe_records": [ticket, ticket]}) == 2
    assert check({"dataframe_split": {"columns": ["body"], "data": [["a"], ["b"], ["c"]]}}) == 3
    assert check({"instances": [ticket]}) == 1
    assert check({"inputs": {"body": ["a", "b"], "customer_ltv": [1.5, None]}}) == 2
    assert check({"dataframe_records": [ticket], "params": {"k": 1}}) == 1


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"dataframe_records": [{"body": "x"}] * 11}, 413, "11 tickets in one request"),
        ({"dataframe_records": []}, 400, "no tickets"),
        ({"dataframe_records": ["text"]}, 400, "row 0 must be an object, not string"),
        ({"dataframe_records": [{"body": "x"}, {"body": ""}]}, 400, "row 1 has no text"),
        ({"dataframe_records": [{"subject": None}]}, 400, "row 0 has no text"),
        ({"dataframe_records": [{"body": 1}]}, 400, "'body' must be a string or null, not number"),
        ({"dataframe_records": [{"body": "x", "customer_ltv": True}]}, 400, "not boolean"),
        ({"dataframe_split": {"columns": ["body"], "data": [["a", "b"]]}}, 400, "2 values for 1"),
        ({"inputs": {"body": ["a"], "subject": ["a", "b"]}}, 400, "different lengths"),
        ({"body": "no format"}, 400, "exactly one of"),
        ({"instances": [], "inputs": []}, 400, "exactly one of"),
        ([{"body": "x"}], 400, "exactly one of"),
        (b'{"dataframe_records": [{"body": Infinity}]}', 400, "not a JSON number"),
        (b'{"dataframe_records": [{"body": "\xff"}]}', 400, "not valid UTF-8 JSON"),
        (b'{"dataframe_records": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "nested deeper"),
        ({"dataframe_records": [{"body": "x", "extra": [[[[[[[[1]]]]]]]]}]}, 400, "nested"),
    ],
)
def test_bad_requests_are_refused_with_a_status_and_a_reason(
    body: Any, status: int, words: str
) -> None:
    refused = refusal(body)
    assert refused.status == status and words in refused.message, refused


def test_a_refusal_never_quotes_the_tickets_text() -> None:
    secret = "jane.doe@example.com 4111 1111 1111 1111"
    for body in (
        {"dataframe_records": [{"subject": secret, "body": 5}]},
        {"dataframe_records": [{"body": secret}] * 11},
        b'{"dataframe_records": [{"body": "' + secret.encode() + b'"',
    ):
        assert secret not in str(refusal(body))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
    ],
)
def test_loopback_addresses_are_told_apart(host: str, loopback: bool) -> None:
    assert serving.is_loopback(host) is loopback
    if loopback:
        assert serving.check_bind(host, allow_remote=False, has_token=False) is None


def test_a_remote_bind_needs_the_flag_and_a_token_and_warns() -> None:
    with pytest.raises(TriageError, match="pass --allow-remote"):
        serving.check_bind("0.0.0.0", allow_remote=False, has_token=True)
    with pytest.raises(TriageError, match="needs a token"):
        serving.check_bind("0.0.0.0", allow_remote=True, has_token=False)
    warning = serving.check_bind("0.0.0.0", allow_remote=True, has_token=True)
    assert warning and "TLS" in warning


def test_the_token_comes_from_the_file_then_the_environment(tmp_path: Path) -> None:
    token = "a" * serving.MIN_TOKEN_LENGTH
    (tmp_path / "token").write_text(f"{token}\n")
    environment = {serving.TOKEN_ENV: "b" * 20}
    assert serving.read_token(tmp_path / "token", environment) == token
    assert serving.read_token(None, environment) == "b" * 20
    assert serving.read_token(None, {}) is None
    assert serving.read_token(None, {serving.TOKEN_ENV: "  "}) is None
    for bad, words in [("short", "shorter than"), ("x" * 10 + " y" * 5, "one word")]:
        with pytest.raises(TriageError, match=words):
            serving.read_token(None, {serving.TOKEN_ENV: bad})
    with pytest.raises(TriageError, match="cannot read the token file"):
        serving.read_token(tmp_path / "missing", environment)
    with pytest.raises(TriageError, match="cannot read the token file"):
        serving.read_token(tmp_path, environment)


def test_the_server_command_carries_the_limits_but_never_the_token(tmp_path: Path) -> None:
    limits = serving.ServeLimits(max_request_bytes=2048, max_rows=5, request_timeout=7)
    command = serving.serve_command(
        "models:/m@champion", "127.0.0.1", 5001, 2, limits, tmp_path / "token", True
    )
    assert command[1:3] == ["-m", "triage_ml.scoring.app"]
    flags = dict(zip(command[3::2], command[4::2]))
    assert flags["--max-request-bytes"] == "2048" and flags["--max-rows"] == "5"
    assert flags["--request-timeout"] == "7" and flags["--token-file"] == str(tmp_path / "token")
    assert command[-1] == "--allow-remote"
