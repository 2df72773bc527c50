"""What a scoring request may hold, checked before MLflow's scoring server sees it.

MLflow's server coerces what it is given: a number or a list becomes a
ticket body, an empty ticket gets a confident category, and JSON nested
thousands of levels deep crashes it with a 500. Each check here refuses such
a request with a status and a message that names the row and field, never a
ticket's text, so a refusal can be logged as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

# MLflow's JSON request formats (``mlflow.pyfunc.scoring_server``).
RECORDS, SPLIT, INSTANCES, INPUTS = "dataframe_records", "dataframe_split", "instances", "inputs"
FORMATS: tuple[str, ...] = (RECORDS, SPLIT, INSTANCES, INPUTS)
# The fields that carry a ticket's text: at least one must hold some.
TEXT_FIELDS: tuple[str, ...] = ("subject", "body")
# {"dataframe_split": {"data": [[...]]}} is four levels; the margin is for MLflow's "params".
MAX_JSON_DEPTH = 8
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})


class RequestRefusedError(Exception):
    """A request refused before the model sees it: the HTTP status, an error code, a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def bad_request(message: str) -> RequestRefusedError:
    """A 400 refusal with MLflow's error code for bad input."""
    return RequestRefusedError(400, "BAD_REQUEST", message)


def json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _reject_constant(name: str) -> Any:
    raise bad_request(f"'{name}' is not a JSON number")


def parse(raw: bytes) -> Any:
    """The request body as JSON, refused if it is not strict UTF-8 JSON or is nested too deeply.

    Raises:
        RequestRefusedError: 400 for invalid JSON, NaN/Infinity, or nesting past ``MAX_JSON_DEPTH``.
    """
    try:
        payload = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise bad_request(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as error:
        # The decoder's position only: its message never quotes the body.
        raise bad_request(f"the request is not valid UTF-8 JSON ({error})") from None
    if too_deep(payload, MAX_JSON_DEPTH):
        raise bad_request(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    return payload


def too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests arrays or objects deeper than ``limit`` (walked, not recursed)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def rows_of(payload: Any) -> list[Any]:
    """The tickets of a request in any of MLflow's JSON formats, one mapping (or not) per ticket.

    Raises:
        RequestRefusedError: 400 when the payload is not one of the formats.
    """
    named = [key for key in FORMATS if isinstance(payload, dict) and key in payload]
    if len(named) != 1:
        raise bad_request(
            f"the request must be a JSON object with exactly one of {', '.join(FORMATS)}"
        )
    data = payload[named[0]]
    if named[0] == SPLIT:
        return split_rows(data)
    if named[0] != RECORDS and isinstance(data, dict):
        return column_rows(data, named[0])
    if not isinstance(data, list):
        raise bad_request(f"'{named[0]}' must be an array of tickets, not {json_kind(data)}")
    return data


def split_rows(data: Any) -> list[Any]:
    """The rows of a ``dataframe_split`` payload (``columns`` and ``data``)."""
    if not isinstance(data, dict):
        raise bad_request(f"'{SPLIT}' must be an object, not {json_kind(data)}")
    columns, values = data.get("columns"), data.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise bad_request(f"'{SPLIT}.columns' must be an array of column names")
    if not isinstance(values, list) or not all(isinstance(row, list) for row in values):
        raise bad_request(f"'{SPLIT}.data' must be an array of arrays")
    for number, row in enumerate(values):
        if len(row) != len(columns):
            raise bad_request(f"row {number} has {len(row)} values for {len(columns)} columns")
    return [dict(zip(columns, row)) for row in values]


def column_rows(data: Mapping[str, Any], key: str) -> list[Any]:
    """The rows of a columnar ``instances``/``inputs`` payload (a column name -> values object)."""
    if not all(isinstance(values, list) for values in data.values()):
        raise bad_request(f"'{key}' as an object must map each column to an array of values")
    lengths = {len(values) for values in data.values()}
    if len(lengths) > 1:
        raise bad_request(f"the columns of '{key}' have different lengths")
    count = lengths.pop() if lengths else 0
    return [{name: values[i] for name, values in data.items()} for i in range(count)]


def check_rows(rows: Sequence[Any], fields: Mapping[str, str], max_rows: int) -> None:
    """Refuse a request whose tickets are too many, mistyped, or have no text at all.

    Args:
        rows: the tickets, from :func:`rows_of`.
        fields: the model's input columns and their MLflow types (``"string"``, ``"double"``...).
        max_rows: the most tickets one request may hold.

    Raises:
        RequestRefusedError: 413 past ``max_rows``; 400 for no tickets, a ticket that is not an
            object, a value of the wrong type (naming the row and field), or a ticket whose text
            fields are all empty, blank or null.
    """
    if len(rows) > max_rows:
        raise RequestRefusedError(
            413,
            "REQUEST_TOO_LARGE",
            f"{len(rows)} tickets in one request; the limit is {max_rows}: split the request",
        )
    if not rows:
        raise bad_request("the request holds no tickets")
    text_fields = [name for name in TEXT_FIELDS if name in fields]
    for number, row in enumerate(rows):
        if not isinstance(row, dict):
            raise bad_request(f"row {number} must be an object, not {json_kind(row)}")
        for name, kind in fields.items():
            check_value(number, name, kind, row.get(name))
        if text_fields and not any(has_text(row.get(name)) for name in text_fields):
            raise bad_request(
                f"row {number} has no text ({' and '.join(text_fields)}: empty, blank or null); "
                "a ticket with no text cannot be triaged"
            )


def check_value(number: int, name: str, kind: str, value: Any) -> None:
    """Refuse the ``value`` of ``name`` in row ``number`` unless null or of MLflow type ``kind``."""
    if value is None:
        return
    if kind == "string":
        ok, wanted = isinstance(value, str), "a string"
    elif kind in NUMERIC_TYPES:
        ok, wanted = isinstance(value, int | float) and not isinstance(value, bool), "a number"
    elif kind == "boolean":
        ok, wanted = isinstance(value, bool), "a boolean"
    else:
        ok, wanted = not isinstance(value, dict | list), "a single value"
    if not ok:
        raise bad_request(
            f"row {number}: '{name}' must be {wanted} or null, not {json_kind(value)}"
        )


def has_text(value: Any) -> bool:
    """Whether ``value`` is a string with something other than whitespace in it."""
    return isinstance(value, str) and bool(value.strip())


def check_request(raw: bytes, fields: Mapping[str, str], max_rows: int) -> int:
    """Check a whole JSON scoring request; the number of tickets in it.

    Raises:
        RequestRefusedError: as :func:`parse`, :func:`rows_of` and :func:`check_rows` do.
    """
    rows = rows_of(parse(raw))
    check_rows(rows, fields, max_rows)
    return len(rows)


def input_fields_only(payload: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, Any]:
    """A checked ``payload`` in the same format, without the ticket fields the model does not read.

    Raises:
        RequestRefusedError: as :func:`rows_of` does, for a payload in none of the formats.
    """
    rows_of(payload)  # the one format it is in, refused otherwise
    key = next(name for name in FORMATS if name in payload)
    data = payload[key]
    if key == SPLIT:
        kept = [i for i, name in enumerate(data["columns"]) if name in fields]
        data = {
            **data,
            "columns": [data["columns"][i] for i in kept],
            "data": [[row[i] for i in kept] for row in data["data"]],
        }
    elif isinstance(data, dict):
        data = {name: values for name, values in data.items() if name in fields}
    else:
        data = [{name: value for name, value in row.items() if name in fields} for row in data]
    return {**payload, key: data}


def passed_on(raw: bytes, fields: Mapping[str, str], max_rows: int) -> bytes:
    """Check a scoring request (as :func:`check_request`); the body to give the model's server.

    Fields the model does not read (a client's own ``ticket_id``, say) are
    left out of it: MLflow would ignore them, but warn "Found extra inputs"
    on every request. A body with none is passed on as it came.

    Raises:
        RequestRefusedError: as :func:`check_request` does.
    """
    parsed = parse(raw)
    rows = rows_of(parsed)
    check_rows(rows, fields, max_rows)
    if not fields or all(name in fields for row in rows for name in row):
        return raw
    return json.dumps(input_fields_only(parsed, fields)).encode()
