"""The scoring server passes the model only the fields it reads, so MLflow never warns of extras."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pandas as pd
import pytest
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from triage_ml.scoring import app, payload
from triage_ml.scoring.serving import ServeLimits

pytestmark = pytest.mark.unit

FIELDS = {"subject": "string", "body": "string"}
EXTRA_WARNING = "Found extra inputs"


def test_every_format_loses_only_the_fields_the_model_does_not_read() -> None:
    row = {"ticket_id": "T-1", "subject": "s", "body": "b"}
    records = {"dataframe_records": [row], "params": {"k": 1}}
    assert payload.input_fields_only(records, FIELDS) == {
        "dataframe_records": [{"subject": "s", "body": "b"}],
        "params": {"k": 1},
    }
    split = {"dataframe_split": {"columns": ["ticket_id", "body"], "data": [["T-1", "b"]]}}
    assert payload.input_fields_only(split, FIELDS) == {
        "dataframe_split": {"columns": ["body"], "data": [["b"]]}
    }
    columns = {"inputs": {"ticket_id": ["T-1"], "body": ["b"]}}
    assert payload.input_fields_only(columns, FIELDS) == {"inputs": {"body": ["b"]}}
    instances = {"instances": [row]}
    assert payload.input_fields_only(instances, FIELDS)["instances"] == [
        {"subject": "s", "body": "b"}
    ]


def test_a_body_without_extra_fields_is_passed_on_byte_for_byte() -> None:
    raw = b'{"dataframe_records": [{"subject": "s",   "body": "b"}]}'
    assert payload.passed_on(raw, FIELDS, 10) is raw


def test_a_body_with_extra_fields_is_still_checked_first() -> None:
    raw = json.dumps({"dataframe_records": [{"ticket_id": "T-1", "body": 3}]}).encode()
    with pytest.raises(payload.RequestRefusedError, match="'body' must be a string"):
        payload.passed_on(raw, FIELDS, 10)


class CountColumns(mlflow.pyfunc.PythonModel):
    """Answers, per ticket, how many columns the model was given."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return pd.DataFrame({"columns": [len(model_input.columns)] * len(model_input)})


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real pyfunc model whose signature reads ``subject`` and ``body``."""
    path = tmp_path_factory.mktemp("model") / "count-columns"
    signature = ModelSignature(inputs=Schema([ColSpec("string", name) for name in FIELDS]))
    mlflow.pyfunc.save_model(
        path,
        python_model=CountColumns(),
        signature=signature,
        input_example=pd.DataFrame({"subject": ["s"], "body": ["b"]}),
        pip_requirements=[],
    )
    return mlflow.pyfunc.load_model(str(Path(path)))


def post(asgi: Any, body: dict) -> tuple[int, Any]:
    """POST ``body`` to ``/invocations`` of the ASGI app ``asgi``, in this process."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/invocations", json=body)

    response = asyncio.run(send())
    return response.status_code, response.json()


def test_the_guarded_server_never_warns_of_a_clients_ticket_id(model, caplog) -> None:
    body = {"dataframe_records": [{"ticket_id": "T-1", "subject": "s", "body": "help me"}]}
    guarded = app.create_app(model, ServeLimits(), token=None)
    with caplog.at_level(logging.WARNING):
        status, answer = post(guarded, body)
    assert status == 200, answer
    assert answer["predictions"] == [{"columns": 2}]
    assert EXTRA_WARNING not in caplog.text


def test_mlflows_own_server_would_warn(model, caplog) -> None:
    # The control: without the guard the same request makes MLflow warn.
    from mlflow.pyfunc import scoring_server

    body = {"dataframe_records": [{"ticket_id": "T-1", "subject": "s", "body": "help me"}]}
    with caplog.at_level(logging.WARNING):
        status, _ = post(scoring_server.init(model), body)
    assert status == 200 and EXTRA_WARNING in caplog.text
