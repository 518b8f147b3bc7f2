"""The command line's --json contract (schemas/cli-output.schema.json), for every test that reads it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "cli-output.schema.json"


@cache
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def violations(document: Any) -> list[str]:
    """Each way `document` breaks the schema, with where: empty when it is valid."""
    return sorted(
        f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator().iter_errors(document)
    )


def valid(output: str) -> dict[str, Any]:
    """A command's stdout, parsed and checked against the schema; the document for more asserts."""
    document = json.loads(output)
    assert violations(document) == []
    assert isinstance(document, dict)
    return document
