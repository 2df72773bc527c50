"""The scoring server facing bad clients: limits, types, empty tickets, a token (issue 22, #6).

One real server (``python -m triage_ml.scoring.app``, as ``triage-ml serve``
starts it) on a free loopback port serves the whole module, with the default
size and ticket limits, a short request timeout and a token file.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servers import free_port, running, tail
from triage_ml import cli
from triage_ml.scoring import serving
from triage_ml.settings import Settings

pytestmark = [pytest.mark.flows, pytest.mark.slow]

TOKEN = "test-token-0123456789abcdef"
TIMEOUT = 3
TICKET = {
    "subject": "Charged twice",
    "body": "I was charged twice for my subscription this month, please refund one.",
    "channel": "email",
}


class Server:
    """Where the module's server listens, and a client for it."""

    def __init__(self, port: int) -> None:
        self.port = port

    def call(
        self,
        body: Any,
        token: str | None = TOKEN,
        path: str = "/invocations",
        content_type: str = "application/json",
    ) -> tuple[int, dict[str, Any]]:
        """POST ``body`` (JSON unless bytes or an iterator of chunks); the status and answer."""
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if not isinstance(body, bytes | Iterator):
            body = json.dumps(body).encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            chunked = isinstance(body, Iterator)
            connection.request("POST", path, body, headers, encode_chunked=chunked)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def get(self, path: str, token: str | None = None) -> int:
        """GET ``path``; the status."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()


@pytest.fixture(scope="module")
def server(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The guarded server on the shared champion, with a token file and a 3 s request timeout."""
    root = tmp_path_factory.mktemp("serving-limits")
    token_file = root / "token"
    token_file.write_text(f"{TOKEN}\n")
    settings = Settings(home=trained_home)
    port = free_port()
    command = serving.serve_command(
        serving.model_uri(settings, "champion"),
        "127.0.0.1",
        port,
        1,
        serving.ServeLimits(request_timeout=TIMEOUT),
        token_file,
    )
    environment = {
        k: v for k, v in serving.serve_environment(settings).items() if k != serving.TOKEN_ENV
    }
    with running(command, environment, root / "server.log", f"http://127.0.0.1:{port}/ping"):
        yield Server(port)


def test_a_good_ticket_is_answered_with_the_token_and_refused_without(server: Server) -> None:
    status, answer = server.call({"dataframe_records": [TICKET]})
    assert status == 200, answer
    assert answer["predictions"][0]["category"] == "Billing"

    for token in (None, "wrong-token-0123456789", TOKEN + "x"):
        status, answer = server.call({"dataframe_records": [TICKET]}, token=token)
        assert (status, answer["error_code"]) == (401, "UNAUTHENTICATED")
        assert "Authorization: Bearer" in answer["message"]
    assert server.get("/version") == 401 and server.get("/version", TOKEN) == 200
    assert server.get("/ping") == 200 and server.get("/health") == 200


@pytest.mark.parametrize(
    "ticket",
    [
        {"subject": "", "body": ""},
        {"subject": None, "body": None},
        {"subject": "  \t", "body": " \n "},
        {"body": ""},
        {"channel": "email"},
    ],
)
def test_a_ticket_with_no_text_is_refused_never_routed(
    server: Server, ticket: dict[str, Any]
) -> None:
    status, answer = server.call({"dataframe_records": [TICKET, ticket]})
    assert status == 400, answer
    assert "predictions" not in answer
    assert answer["message"].startswith("row 1 has no text (subject and body")


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("body", 12345, "number"),
        ("body", ["refund"], "array"),
        ("body", {"text": "refund"}, "object"),
        ("body", True, "boolean"),
        ("subject", 3.5, "number"),
        ("customer_ltv", "a lot", "string"),
        ("customer_ltv", False, "boolean"),
    ],
)
def test_a_mistyped_field_is_a_400_naming_it(
    server: Server, field: str, value: Any, kind: str
) -> None:
    status, answer = server.call({"dataframe_records": [{**TICKET, field: value}]})
    assert status == 400, answer
    assert f"row 0: '{field}' must be" in answer["message"] and f"not {kind}" in answer["message"]


def test_the_other_json_formats_are_checked_too(server: Server) -> None:
    split = {"dataframe_split": {"columns": ["subject", "body"], "data": [["Refund", 7]]}}
    assert server.call(split)[0] == 400
    assert server.call({"inputs": {"subject": [""], "body": [None]}})[0] == 400
    good = {"dataframe_split": {"columns": ["subject", "body"], "data": [["Refund", "twice"]]}}
    assert server.call(good)[0] == 200
    assert server.call({"instances": [TICKET]})[0] == 200


@pytest.mark.parametrize("depth", [9, 5000])
def test_deeply_nested_json_is_a_400_not_a_500(server: Server, depth: int) -> None:
    body = b'{"dataframe_records": ' + b"[" * depth + b"]" * depth + b"}"
    status, answer = server.call(body)
    assert (status, answer["error_code"]) == (400, "BAD_REQUEST")
    assert "nested deeper than" in answer["message"]


def test_invalid_json_and_other_content_types_are_refused(server: Server) -> None:
    assert server.call(b'{"dataframe_records": [')[0] == 400
    assert server.call(b'{"dataframe_records": [{"body": NaN}]}')[0] == 400
    status, answer = server.call(b"subject,body\nhi,there\n", content_type="text/csv")
    assert status == 415 and "application/json" in answer["message"]


def test_more_tickets_than_the_limit_is_a_413(server: Server) -> None:
    limit = serving.DEFAULT_MAX_ROWS
    status, answer = server.call({"dataframe_records": [TICKET] * (limit + 1)})
    assert (status, answer["error_code"]) == (413, "REQUEST_TOO_LARGE")
    assert f"the limit is {limit}" in answer["message"]
    status, answer = server.call({"dataframe_records": [TICKET] * limit})
    assert status == 200 and len(answer["predictions"]) == limit


def oversized_ticket() -> bytes:
    """A 16 MB request: one ticket whose body is 16 million characters."""
    return json.dumps({"dataframe_records": [{"body": "refund " * 2_300_000}]}).encode()


def test_an_oversized_body_is_a_413_and_does_not_stall_small_requests(server: Server) -> None:
    big = oversized_ticket()
    outcome: dict[str, Any] = {}

    def send_big() -> None:
        started = time.perf_counter()
        outcome["answer"] = server.call(big)
        outcome["seconds"] = time.perf_counter() - started

    sender = threading.Thread(target=send_big)
    latencies = []
    sender.start()
    while sender.is_alive() or len(latencies) < 5:
        started = time.perf_counter()
        assert server.call({"dataframe_records": [TICKET]})[0] == 200
        latencies.append(time.perf_counter() - started)
    sender.join()
    status, answer = outcome["answer"]
    assert (status, answer["error_code"]) == (413, "REQUEST_TOO_LARGE")
    assert f"the limit is {serving.DEFAULT_MAX_REQUEST_BYTES} bytes" in answer["message"]
    assert f"is {len(big)} bytes" in answer["message"]  # refused from its Content-Length
    # Generous bounds for two shared cores: the old server stalled everything for 30 s.
    assert outcome["seconds"] < 10 and max(latencies) < 5, (outcome, latencies)


def test_an_oversized_body_without_a_length_is_refused_as_it_streams(server: Server) -> None:
    chunk = b" " * 65536

    def chunks() -> Iterator[bytes]:
        yield b'{"dataframe_records": [{"body": "'
        for _ in range(256):  # 16 MiB of spaces, sent chunked
            yield chunk
        yield b'"}]}'

    status, answer = server.call(chunks())
    assert (status, answer["error_code"]) == (413, "REQUEST_TOO_LARGE")
    assert "more than" in answer["message"]
    assert server.call({"dataframe_records": [TICKET]})[0] == 200


def test_a_body_that_never_arrives_times_out_with_408(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        started = time.perf_counter()
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n" + b'{"dataframe_rec'
        )
        # Parsed by http.client: the headers and the body may arrive in separate reads.
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        waited = time.perf_counter() - started
        body = reply.read()
    assert reply.status == 408, body
    assert b"REQUEST_TIMEOUT" in body and TIMEOUT - 0.5 < waited < TIMEOUT + 10


# ---- binding -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "token", "message"),
    [
        (["--host", "0.0.0.0"], None, "pass --allow-remote"),
        (["--host", "0.0.0.0", "--allow-remote"], None, "needs a token"),
        (["--host", "0.0.0.0", "--allow-remote"], "short", "shorter than 16"),
        (["--token-file", "{tmp}/missing"], None, "cannot read the token file"),
    ],
)
def test_serving_the_network_needs_allow_remote_and_a_token(
    trained_workspace: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    token: str | None,
    message: str,
) -> None:
    monkeypatch.delenv(serving.TOKEN_ENV, raising=False)
    if token:
        monkeypatch.setenv(serving.TOKEN_ENV, token)
    args = [a.format(tmp=tmp_path) for a in argv]
    assert cli.main(["serve", *args, "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err


def test_allow_remote_serves_every_address_with_a_warning_and_the_token(
    trained_workspace: Settings, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    port = free_port()
    log = tmp_path / "serve.log"
    argv = ["serve", "--host", "0.0.0.0", "--allow-remote", "--token-file", str(token_file)]
    environment = {k: v for k, v in os.environ.items() if k != serving.TOKEN_ENV}
    command = [str(Path(sys.executable).with_name("triage-ml")), *argv, "--port", str(port)]
    with running(command, environment, log, f"http://127.0.0.1:{port}/ping"):
        local = Server(port)
        assert local.call({"dataframe_records": [TICKET]}, token=None)[0] == 401
        assert local.call({"dataframe_records": [TICKET]})[0] == 200
    text = tail(log, 200)
    assert "warning: serving the network on 0.0.0.0" in text and TOKEN not in text
