"""Crafted skops files, written by hand as an attacker would: each calls a library function.

Shared by tests/unit/test_model_integrity.py and
tests/flows/test_model_integrity_registry.py. Every payload, if it ever runs,
creates a marker file, so a test can assert that nothing ran.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import skops


def json_node(value: str) -> dict[str, Any]:
    """A skops node for one string."""
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True}  # fmt: skip


def call_node(module: str, function: str, *args: dict[str, Any]) -> dict[str, Any]:
    """A node skops constructs by calling ``module.function(*args)``, as an attacker writes it."""
    arguments = {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                 "content": list(args)}  # fmt: skip
    return {"__class__": function, "__module__": module,
            "__loader__": "ConstructorFromReduceNode", "content": arguments}  # fmt: skip


def empty_dict_node() -> dict[str, Any]:
    """A skops node for ``{}``."""
    keys = {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": []}
    return {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
            "content": {}, "key_types": keys}  # fmt: skip


def crafted_file(path: Path, root: dict[str, Any]) -> Path:
    """A skops file written by hand: a zip whose schema.json is ``root``."""
    schema = {**root, "protocol": 2, "_skops_version": skops.__version__}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return path


def payloads(marker: Path) -> dict[str, dict[str, Any]]:
    """Root nodes that, constructed, create ``marker``: each through another library's function."""
    code = f"open({str(marker)!r}, 'w').write('ran')"
    return {
        "numpy-runstring": call_node(
            "numpy.testing._private.utils", "runstring", json_node(code), empty_dict_node()
        ),
        "builtins-eval": call_node("builtins", "eval", json_node(code)),
        "scipy-savemat": call_node(
            "scipy.io", "savemat", json_node(str(marker)), empty_dict_node()
        ),
        "sklearn-testing-script": call_node(
            "sklearn.utils._testing", "assert_run_python_script_without_output", json_node(code)
        ),
    }


PAYLOADS = ["numpy-runstring", "builtins-eval", "scipy-savemat", "sklearn-testing-script"]
CALLED = {
    "numpy-runstring": "numpy.testing._private.utils.runstring",
    "builtins-eval": "builtins.eval",
    "scipy-savemat": "scipy.io.savemat",
    "sklearn-testing-script": "sklearn.utils._testing.assert_run_python_script_without_output",
}
